"""The few MPI calls data parallelism needs, between processes of one machine, without MPI.

``minigan/distributed.py`` trains one model in N processes and needs four things of them:
``Allreduce`` (add up an array over the processes, every one getting the total), ``Bcast``
(give every process rank 0's array), ``Barrier`` (wait until all have got here) and ``Abort``.
Between processes of *one* machine all four fit in a file of shared memory, which every process
maps (``numpy.memmap``) and which ``python -m minigan.launch`` makes before it starts them:

    sequence numbers   int64[size]               how many barriers each rank has reached
    abort code         int64[1]                  0, or the exit code of a rank that stopped
    slots              float bytes[size][SLOT]   one mailbox per rank

* **Barrier.** Rank r counts its barriers and writes the count into its own sequence number;
  it may go on once every rank's number has reached its own. Each number has one writer, and
  an aligned 8-byte store is seen whole by the other processes, so no lock is needed.
* **Allreduce (sum).** Every rank copies its array into its slot; barrier; every rank adds up
  all the slots, in rank order, into its own array (so all ranks get the same bits); barrier,
  so that no rank writes its slot again before all have read it. Arrays larger than a slot go
  through in pieces.
* **Bcast.** Rank 0 writes its slot; barrier; the others copy it; barrier.
* **Abort.** The rank writes its exit code where every waiting rank looks, and leaves; the
  others leave with the same code at their next wait (and the launcher stops any that do not).

Waiting spins for a few microseconds (ranks usually arrive within microseconds of each other),
then offers its core to any other process (``os.sched_yield``: when two ranks share a core,
the other runs at once), then sleeps in short naps, so that a rank waiting for a slower one
does not take a core from it. On 2 idle cores a barrier takes a few microseconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy

Array = Any

SLOT_BYTES = 8 * 2**20            # each rank's mailbox: larger arrays go through in pieces
SPIN_SECONDS = 2e-5               # at a barrier: busy-wait this long (ranks arrive together)
YIELD_SECONDS = 2e-3              # then offer the core to others this long (sched_yield)
NAP_SECONDS = 5e-5                # then sleep in naps this short
ENV_RANK, ENV_SIZE, ENV_FILE = "MINIGAN_RANK", "MINIGAN_WORLD_SIZE", "MINIGAN_SHARED_FILE"


# os.sched_yield is not on every system (Windows): there, a zero-length sleep does the same.
_yield_core = getattr(os, "sched_yield", lambda: time.sleep(0))


class RankStopped(SystemExit):
    """Another rank stopped (with an error, or Ctrl-C) while this one waited for it."""


def shared_file_bytes(size: int) -> int:
    """Bytes of the shared file for ``size`` ranks: header (8 bytes a number) and slots."""
    return 8 * (size + 1) + size * SLOT_BYTES


def stop_every_rank(path: str, size: int, code: int) -> None:
    """Write ``code`` (1 if it is not positive) where every rank waiting at a barrier of the
    shared file ``path`` looks: they leave with it (``RankStopped``). For the launcher, whose
    ranks cannot tell that another one has died."""
    header = numpy.memmap(path, dtype=numpy.int64, mode="r+", shape=(size + 1,))
    header[size] = code if code > 0 else 1
    header.flush()


class SharedMemoryComm:
    """An mpi4py-like communicator over a shared file: ``Get_rank``, ``Get_size``, ``Barrier``,
    ``Bcast``, ``Abort`` as MPI names them, and ``sum_in_place`` for ``Allreduce`` with
    ``MPI.IN_PLACE`` and ``MPI.SUM`` (the only kind data parallelism uses)."""

    def __init__(self, path: str, rank: int, size: int):
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} is not one of 0 .. {size - 1}")
        self.rank, self.size, self.path = rank, size, path
        memory = numpy.memmap(path, dtype=numpy.uint8, mode="r+", shape=(shared_file_bytes(size),))
        memory = memory.view(numpy.ndarray)   # the same memory; plain arrays are faster to ask
        header = memory[:8 * (size + 1)].view(numpy.int64)
        self.sequence, self.abort_code = header[:size], header[size:]
        self.slots = memory[8 * (size + 1):].reshape(size, SLOT_BYTES)
        self.barriers = 0
        self.launcher = os.getppid()   # if it goes, no one is left to stop a rank waiting here

    @classmethod
    def from_environment(cls) -> SharedMemoryComm | None:
        """The communicator ``python -m minigan.launch`` set up for this process, or None."""
        if ENV_FILE not in os.environ:
            return None
        return cls(os.environ[ENV_FILE], int(os.environ[ENV_RANK]), int(os.environ[ENV_SIZE]))

    def Get_rank(self) -> int:   # noqa: N802 (MPI's names, so that World takes either)
        return self.rank

    def Get_size(self) -> int:   # noqa: N802
        return self.size

    # ------------------------------------------------------------------ waiting
    def Barrier(self) -> None:   # noqa: N802
        """Return once every rank has called this as many times as this rank has."""
        self.barriers += 1
        self.sequence[self.rank] = self.barriers
        started = time.perf_counter()
        while self.sequence.min() < self.barriers:
            if self.abort_code[0]:
                raise RankStopped(int(self.abort_code[0]))
            waited = time.perf_counter() - started
            if waited > YIELD_SECONDS:
                time.sleep(NAP_SECONDS)
                if os.getppid() != self.launcher:   # the launcher was killed: give up,
                    # removing the shared file it can no longer remove (16 MiB of memory)
                    Path(self.path).unlink(missing_ok=True)
                    raise RankStopped(1)
            elif waited > SPIN_SECONDS:   # a rank on the same core (more ranks than cores,
                _yield_core()             # or a busy machine) gets to run at once

    def Abort(self, code: int = 1) -> None:   # noqa: N802
        """Make every rank leave with ``code`` (1 if 0 is given), this one now."""
        self.abort_code[0] = code or 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 1)

    # ------------------------------------------------------------------ moving arrays
    def _pieces(self, a: Array) -> list[Array]:
        """``a`` as flat, contiguous pieces that each fit in a slot (views: no copy)."""
        if not a.flags.c_contiguous:
            raise ValueError("shared-memory collectives need a contiguous array")
        flat = a.reshape(-1)
        step = max(1, SLOT_BYTES // a.itemsize)
        return [flat[i:i + step] for i in range(0, flat.size, step)]

    def _slot(self, rank: int, piece: Array) -> Array:
        """Rank ``rank``'s slot, seen as an array like ``piece``."""
        return self.slots[rank, :piece.nbytes].view(piece.dtype)

    def sum_in_place(self, a: Array) -> Array:
        """Replace ``a`` by its sum over all ranks (the same on every rank); returns ``a``."""
        for piece in self._pieces(a):
            self._slot(self.rank, piece)[...] = piece
            self.Barrier()
            # Every rank adds the slots in the same order: the same total, bit for bit.
            piece[...] = self._slot(0, piece)
            for r in range(1, self.size):
                numpy.add(piece, self._slot(r, piece), out=piece)
            self.Barrier()
        return a

    def Bcast(self, a: Array, root: int = 0) -> None:   # noqa: N802
        """Give every rank ``root``'s values of ``a`` (in place)."""
        for piece in self._pieces(a):
            if self.rank == root:
                self._slot(root, piece)[...] = piece
            self.Barrier()
            if self.rank != root:
                piece[...] = self._slot(root, piece)
            self.Barrier()
