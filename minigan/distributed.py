"""The MPI world of data-parallel training: N processes ("ranks") train one model together.

The idea, as ChainerMN and PyTorch's DistributedDataParallel do it:

* every rank holds a whole copy of G and D, and all copies start from rank 0's weights
  (``World.broadcast_module``);
* the batch of one step, N*B images, is cut into N slices of B (the loader
  ``minigan/data/sharded.py``, and ``World.sharded_noise`` for the latent vectors); rank r
  runs the forward and backward passes of slice r only;
* before every optimizer step the ranks add up their gradients and divide by N
  (``World.wrap_optimizer``, whose ``step()`` calls ``World.average_gradients``: one allreduce
  per network, over all its gradients packed into one flat buffer). The loss of the whole batch
  is the mean of the slices' mean losses,

      L = (1/N) sum_r L_r,    so    dL/dw = (1/N) sum_r dL_r/dw,

  which is what every rank now holds: the gradient one process would have computed on all N*B
  images;
* every rank then makes the same Adam update of the same weights with the same gradient, so the
  copies stay identical without any weights being sent again.

So the training step (``minigan/gan/step.py``) is the same code in one process or many: this
world reaches it from outside, through the optimizers, the loader and the noise it is given.
Batch norm is the one layer whose slices are not independent: ``minigan/nn/sync_batchnorm.py``
runs the batch-norm kernel with its per-channel sums taken over every rank (``allreduce_sum``).

Rank 0 alone writes files (samples, logs, checkpoints); the trainer asks ``World.is_root``.
MPI is reached through mpi4py (``pip install -e ".[mpi]"``); without it, ``SINGLE_PROCESS``
is a world of one whose methods do nothing, and the trainer runs as it always did. CuPy arrays
are summed through host memory: GPU-to-GPU sums (NCCL) are left out until a machine with
several GPUs can test them.

Run with, e.g., ``mpiexec -n 2 python examples/train_svhn.py --distributed``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import numpy

from minigan.backend import get_array_module, is_cupy_array
from minigan.nn.dropout import Dropout
from minigan.nn.module import Module, Parameter
from minigan.shared_comm import ENV_FILE, SharedMemoryComm

Array = Any

ABORT_GRACE_SECONDS = 0.5   # see World.abort

INSTALL_HELP = ('install mpi4py and an MPI library: `pip install -e ".[mpi]"` in the minigan '
                'folder (mpi4py and the MPICH wheels), then start N processes with '
                '`mpiexec -n N python examples/train_svhn.py --distributed`')


class DistributedError(RuntimeError):
    """MPI is missing, or the run cannot be split across the ranks as asked."""


class World:
    """The processes of one run: ``size`` of them, this one numbered ``rank`` (0 .. size - 1).

    ``comm`` is an mpi4py communicator, or None for a single process, in which case every method
    below returns its input unchanged: the trainer calls them unconditionally.
    """

    def __init__(self, comm: Any = None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self._flat: dict[tuple[int, str, str], Array] = {}  # gradient buffers, reused each step

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size})"

    # ------------------------------------------------------------------ collectives
    def allreduce_sum(self, a: Array) -> Array:
        """Sum ``a`` over all ranks, in place; every rank gets the total. Returns ``a``.

        a: any contiguous array, the same shape and dtype on every rank. NumPy arrays go to MPI
        directly; CuPy arrays go through host memory (a copy each way).
        """
        if self.size == 1:
            return a
        if not is_cupy_array(a):
            if isinstance(self.comm, SharedMemoryComm):   # python -m minigan.launch
                return self.comm.sum_in_place(a)
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
            return a
        host = a.get()
        self.allreduce_sum(host)
        a.set(host)
        return a

    def average_gradients(self, params: Iterable[Parameter]) -> None:
        """Replace each ``p.grad`` by its mean over the ranks, with ONE allreduce.

        The gradients are copied into one flat buffer, summed across ranks in one message,
        divided by the number of ranks and copied back. One large message instead of one per
        parameter: each message pays a fixed latency, and a DCGAN has 10 to 20 parameters.
        """
        if self.size == 1:
            return
        params = list(params)
        flat = self._flat_buffer(params)
        xp = get_array_module(flat)
        xp.concatenate([p.grad.ravel() for p in params], out=flat)   # pack
        self.allreduce_sum(flat)
        flat /= flat.dtype.type(self.size)
        offset = 0
        for p in params:                                              # unpack
            p.grad[...] = flat[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    def _flat_buffer(self, params: list[Parameter]) -> Array:
        dtypes = {p.grad.dtype for p in params}
        if len(dtypes) != 1:
            raise DistributedError(f"average_gradients needs parameters of one dtype, got "
                                   f"{sorted(str(d) for d in dtypes)}")
        xp = get_array_module(params[0].grad)
        n, dtype = sum(p.size for p in params), dtypes.pop()
        key = (n, str(dtype), xp.__name__)
        if key not in self._flat:
            self._flat[key] = xp.empty(n, dtype=dtype)
        return self._flat[key]

    def broadcast_module(self, module: Module) -> None:
        """Give every rank rank 0's parameters and buffers (batch norm's running statistics).

        Called once, before training: every rank then starts from the same weights, whatever
        its own random initialisation drew. One message per array is fine for something done
        once.
        """
        if self.size == 1:
            return
        state = module.state_dict()          # host copies, contiguous, same names on all ranks
        for name in sorted(state):
            self.comm.Bcast(state[name], root=0)
        module.load_state_dict(state)

    def mean(self, values: list[Any]) -> list[Any]:
        """The mean of each number over the ranks (for losses: the whole batch's mean loss).

        One process gets its values back untouched (0-d device arrays stay on the device);
        several ranks read them to the host and get Python floats."""
        if self.size == 1:
            return list(values)
        totals = self.allreduce_sum(numpy.asarray([float(v) for v in values]))
        return [float(v) for v in totals / self.size]

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any rank (e.g. "Ctrl-C was pressed"), so
        that all ranks stop after the same step."""
        if self.size == 1:
            return bool(flag)
        return bool(self.allreduce_sum(numpy.asarray([int(bool(flag))]))[0])

    def barrier(self) -> None:
        """Wait until every rank has got here."""
        if self.size > 1:
            self.comm.Barrier()

    def root_first(self, work: Callable[[], Any]) -> Any:
        """``work()`` on rank 0, then on the other ranks: a dataset is downloaded once, by rank
        0, and the others find it in the cache. Returns what ``work`` returns on this rank."""
        if self.is_root:
            result = work()
        self.barrier()
        if not self.is_root:
            result = work()
        return result

    def abort(self, code: int = 1) -> None:
        """Stop every rank now. A rank that stops alone would leave the others waiting forever
        in their next collective call: MPI collectives have no timeout."""
        if self.size > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            # mpiexec tears every rank down at the first Abort, and may drop output it has not
            # passed on yet: give it a moment, so the error that caused this is not lost.
            time.sleep(ABORT_GRACE_SECONDS)
            self.comm.Abort(code)

    # ------------------------------------------------------------------ reaching the step
    def wrap_optimizer(self, optimizer: Any) -> Any:
        """``optimizer``, made to average the gradients over the ranks before each ``step()``
        (as PyTorch's DistributedDataParallel does in its backward hooks). One process gets
        ``optimizer`` itself back: nothing to average."""
        if self.size == 1:
            return optimizer
        return GradientAveragingOptimizer(optimizer, self)

    def sharded_noise(self, draw: Callable[[int], Array]) -> Callable[[int], Array]:
        """A noise function for the step: ``noise(n)`` gives this rank's n latent vectors.

        Every rank draws the whole step's z (n * size vectors) with ``draw``, from the same
        seeded generator, and keeps its own slice: N ranks then see the z that one process
        would, and their generators stay in step. One process gets ``draw`` itself back."""
        if self.size == 1:
            return draw
        return lambda n: self.shard(draw(n * self.size))

    # ------------------------------------------------------------------ splitting a batch
    def shard(self, batch: Array | None) -> Array | None:
        """This rank's slice of a whole step's batch: rows r*B .. (r+1)*B - 1 of N*B rows."""
        if batch is None or self.size == 1:
            return batch
        if len(batch) % self.size:
            raise DistributedError(f"a batch of {len(batch)} cannot be split evenly across "
                                   f"{self.size} ranks")
        b = len(batch) // self.size
        return batch[self.rank * b:(self.rank + 1) * b]

    def own_dropout_streams(self, layers: Iterable[Dropout]) -> None:
        """Give rank r's Dropout layers their own random masks.

        Every rank builds its layers with the same seed, so without this all ranks would drop
        the same units of their different images. Rank r jumps its generator ahead by r
        "jumps" (each 2**127 draws long), streams that never overlap. Each rank draws as many
        numbers per step as rank 0, so rank r's state is always rank 0's, jumped r times: a
        checkpoint keeps rank 0's state, and after loading it every rank calls this again.
        """
        if self.rank == 0:
            return
        for layer in layers:
            layer.rng = numpy.random.Generator(layer.rng.bit_generator.jumped(self.rank))


SINGLE_PROCESS = World()


class GradientAveragingOptimizer:
    """An optimizer whose ``step()`` first replaces every gradient by its mean over the ranks
    (``World.average_gradients``: one allreduce), then steps the optimizer it wraps; so every
    rank makes the same update. Made by ``World.wrap_optimizer``."""

    def __init__(self, optimizer: Any, world: World):
        self.optimizer, self.world = optimizer, world

    @property
    def params(self) -> list[Parameter]:
        return self.optimizer.params

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.world.average_gradients(self.optimizer.params)   # data parallel: the ranks' mean
        self.optimizer.step()


def join_world() -> World:
    """The world this process was started in: by ``python -m minigan.launch`` (processes of one
    machine, through shared memory), else by ``mpiexec`` (MPI; one process alone: a world of
    one). With more than one rank, an uncaught exception on any rank stops them all (printing
    the traceback first) instead of leaving the others waiting."""
    comm = SharedMemoryComm.from_environment()
    if comm is None:
        return join_mpi_world()
    world = World(comm)
    _abort_all_on_uncaught_exceptions(world)
    return world


def launched_on_this_machine() -> bool:
    """Was this process started by ``python -m minigan.launch`` (as one of its ranks)?"""
    return ENV_FILE in os.environ


def join_mpi_world() -> World:
    """The world of all processes started by ``mpiexec`` (one process alone: a world of one).

    Importing mpi4py starts MPI. With more than one rank, an uncaught exception on any rank
    now aborts them all (printing the traceback first) instead of leaving the others waiting.
    """
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError(f"--distributed needs mpi4py, which is not installed: "
                               f"{INSTALL_HELP}") from None
    world = World(MPI.COMM_WORLD)
    _abort_all_on_uncaught_exceptions(world)
    return world


def _abort_all_on_uncaught_exceptions(world: World) -> None:
    if world.size > 1:
        def abort_on_uncaught(kind: type, error: BaseException, tb: Any) -> None:
            traceback.print_exception(kind, error, tb)
            world.abort(1)

        sys.excepthook = abort_on_uncaught


def abort_other_ranks(code: int) -> None:
    """After a rank has reported an error: stop the whole MPI job if there is one (the other
    ranks may be waiting for this one). Does nothing when MPI was never started."""
    comm = SharedMemoryComm.from_environment()
    if comm is not None:
        comm.Abort(code)
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        World(mpi.COMM_WORLD).abort(code)
