"""Data-parallel training over MPI: N processes ("ranks") train one model together.

The idea, as ChainerMN and PyTorch's DistributedDataParallel do it:

* every rank holds a whole copy of G and D, and all copies start from rank 0's weights
  (``World.broadcast_module``);
* the batch of one step, N*B images, is cut into N slices of B (``ShardedLoader``,
  ``World.shard``); rank r runs the forward and backward passes of slice r only;
* before every optimizer step the ranks add up their gradients and divide by N
  (``World.average_gradients``: one allreduce per network, over all its gradients packed into
  one flat buffer). The loss of the whole batch is the mean of the slices' mean losses,

      L = (1/N) sum_r L_r,    so    dL/dw = (1/N) sum_r dL_r/dw,

  which is what every rank now holds: the gradient one process would have computed on all N*B
  images;
* every rank then makes the same Adam update of the same weights with the same gradient, so the
  copies stay identical without any weights being sent again.

Batch norm is the one layer whose slices are not independent: its mean and variance are taken
over the batch. ``SyncBatchNorm2d`` adds up the per-channel sums across the ranks, so that N
ranks with B images each normalise exactly as one process with N*B images does.

Rank 0 alone writes files (samples, logs, checkpoints); the trainer asks ``World.is_root``.
MPI is reached through mpi4py (``pip install -e ".[mpi]"``); without it, ``SINGLE_PROCESS``
is a world of one whose methods do nothing, and the trainer runs as it always did.

Run with, e.g., ``mpiexec -n 2 python examples/train_svhn.py --distributed``.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy

from minigan.backend import get_array_module, is_cupy_array, to_device
from minigan.data.loader import DataLoader, scale_images
from minigan.nn.batchnorm import BatchNorm2d
from minigan.nn.dropout import Dropout
from minigan.nn.module import Module, Parameter
from minigan.ops.batchnorm import (
    BatchNormCache,
    as_rows,
    from_rows,
    input_grad_from_sums,
    normalize_scale_shift,
    update_running_stats,
)
from minigan.ops.layout import column_sums

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
        self._nccl: Any = None

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
        directly. CuPy arrays go through NCCL when the world has set it up (``use_nccl``), else
        through host memory (a copy each way).
        """
        if self.size == 1:
            return a
        if not is_cupy_array(a):
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
            return a
        if self._nccl is not None:  # pragma: no cover - needs several GPUs
            return self._nccl_allreduce_sum(a)
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

    # ------------------------------------------------------------------ GPUs (untested here)
    def use_nccl(self) -> None:  # pragma: no cover - needs CuPy and one GPU per rank
        """Sum CuPy arrays with NCCL, GPU to GPU, instead of through host memory.

        UNTESTED: written for one GPU per rank (rank r uses GPU r modulo the GPUs visible);
        the machine this was written on has no GPU. Rank 0 makes NCCL's unique id and MPI
        broadcasts it, the one thing NCCL needs from outside.
        """
        if self.size == 1:
            return
        import cupy
        from cupy.cuda import nccl

        cupy.cuda.Device(self.rank % cupy.cuda.runtime.getDeviceCount()).use()
        uid = nccl.get_unique_id() if self.is_root else None
        uid = self.comm.bcast(uid, root=0)
        self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _nccl_allreduce_sum(self, a: Array) -> Array:  # pragma: no cover - needs GPUs
        import cupy
        from cupy.cuda import nccl

        types = {numpy.dtype(numpy.float32): nccl.NCCL_FLOAT32,
                 numpy.dtype(numpy.float64): nccl.NCCL_FLOAT64,
                 numpy.dtype(numpy.int64): nccl.NCCL_INT64}
        stream = cupy.cuda.get_current_stream().ptr
        self._nccl.allReduce(a.data.ptr, a.data.ptr, a.size, types[a.dtype], nccl.NCCL_SUM,
                             stream)
        return a


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
    if world.size > 1:
        def abort_on_uncaught(kind: type, error: BaseException, tb: Any) -> None:
            traceback.print_exception(kind, error, tb)
            world.abort(1)

        sys.excepthook = abort_on_uncaught
    return world


def abort_other_ranks(code: int) -> None:
    """After a rank has reported an error: stop the whole MPI job if there is one (the other
    ranks may be waiting for this one). Does nothing when MPI was never started."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        World(mpi.COMM_WORLD).abort(code)


class ShardedLoader(DataLoader):
    """The DataLoader of one rank: together the ranks cover each epoch once.

    ``batch_size`` is the whole step's batch, all ranks together (N*B); it must divide by N.
    Every rank shuffles epoch e with the same seeded generator as ``DataLoader`` does, so the
    step's N*B images are exactly those of a one-process ``DataLoader(batch_size=N*B)``; rank r
    keeps slice r of them (B images). ``len(loader)`` is the number of steps per epoch, the same
    on every rank; the last images that do not fill a whole step are dropped, as with
    ``drop_last``.
    """

    def __init__(self, images: numpy.ndarray, labels: numpy.ndarray | None = None,
                 batch_size: int = 128, world: World = SINGLE_PROCESS, shuffle: bool = True,
                 seed: int = 0) -> None:
        super().__init__(images, labels, batch_size=batch_size, shuffle=shuffle,
                         drop_last=True, seed=seed)
        if batch_size % world.size:
            raise DistributedError(f"--batch-size {batch_size} must be a multiple of the "
                                   f"number of ranks, {world.size}: each rank takes an equal "
                                   f"share of every batch")
        self.world = world

    def indices(self, epoch: int, batch: int, order: numpy.ndarray | None = None) -> numpy.ndarray:
        """The dataset indices of this rank's share of step ``batch`` of epoch ``epoch``
        (``order``: the epoch's ``self.order(epoch)``, if already made)."""
        order = self.order(epoch) if order is None else order
        whole = order[batch * self.batch_size:(batch + 1) * self.batch_size]  # every rank's
        return self.world.shard(whole)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Any, Any]]:
        """Yield this rank's ``(x, y)`` share of each batch of epoch ``epoch`` from
        ``start_batch`` on: x (B, C, H, W) in [-1, 1], y (B,) or None, B = batch_size / N."""
        if not 0 <= start_batch <= len(self):
            raise DistributedError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        order = self.order(epoch)                   # the same shuffle on every rank
        for b in range(start_batch, len(self)):
            index = self.indices(epoch, b, order)
            x = scale_images(to_device(self.images[index]))
            y = None if self.labels is None else to_device(self.labels[index])
            yield x, y


class SyncBatchNorm2d(BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the whole batch, all ranks together.

    With M = N * B * H * W values per channel over N ranks, training mode computes

        mu     = (1/M) sum of x over every rank's values          (one allreduce of C sums)
        sigma2 = (1/M) sum of (x - mu)**2 over every rank's values (one allreduce of C sums)
        y      = gamma * (x - mu) / sqrt(sigma2 + eps) + beta

    the formulas of ``minigan/ops/batchnorm.py`` with its sums taken across ranks: N ranks with
    B images each compute what one process computes with N*B images. The backward pass needs
    two more per-channel sums over the whole batch, sum(dy) and sum(dy * x_hat) (one allreduce
    of 2C numbers). The elementwise passes are the kernel's own functions; evaluation mode
    (running statistics) is BatchNorm2d's, and talks to no one.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 world: World = SINGLE_PROCESS):
        super().__init__(num_features, eps, momentum)
        self.world = world

    @classmethod
    def from_batch_norm(cls, bn: BatchNorm2d, world: World) -> SyncBatchNorm2d:
        """A SyncBatchNorm2d sharing ``bn``'s Parameters and buffers (an optimizer made for
        ``bn`` keeps working)."""
        sync = cls(bn.num_features, bn.eps, bn.momentum, world)
        sync.weight, sync.bias = bn.weight, bn.bias
        for name in bn._buffer_names:
            setattr(sync, name, getattr(bn, name))
        sync.training = bn.training
        return sync

    def forward(self, x: Array) -> Array:
        if not self.training:
            return super().forward(x)
        self.check_input(x, ("N", self.num_features, "H", "W"), self.weight.dtype)
        xp = get_array_module(x)
        gamma, beta = self.weight.data, self.bias.data
        rows = as_rows(x)                                             # (m, C) on this rank
        m = rows.shape[0] * self.world.size      # values per channel, all ranks (equal shares)
        eps = x.dtype.type(self.eps)

        mean = self.world.allreduce_sum(column_sums(rows)) / m        # mu, (C,)
        centered = rows - mean
        var = self.world.allreduce_sum(xp.einsum("mc,mc->c", centered, centered)) / m  # sigma2
        inv_std = 1 / xp.sqrt(var + eps)
        x_hat, y = normalize_scale_shift(centered, inv_std, gamma, beta)
        self._cache = BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean,
                                     var=var, m=m, training=True)
        # Every rank has the same mu and sigma2, so the running statistics stay equal too.
        self.running_mean, self.running_var = update_running_stats(
            self.running_mean, self.running_var, self._cache, self.momentum)
        self.num_batches_tracked = self.num_batches_tracked + 1
        return from_rows(y, x.shape)

    def backward(self, dy: Array) -> Array:
        if self.cache is not None and not self.cache.training:
            return super().backward(dy)          # evaluation mode: BatchNorm2d's own
        cache = self._saved_cache(dy)
        xp = get_array_module(dy)
        dy_rows = as_rows(dy)
        dbeta = column_sums(dy_rows)                                 # this rank's share
        dgamma = xp.einsum("mc,mc->c", dy_rows, cache.x_hat)
        # dx_i = (gamma s / M) (M dy_i - sum_j dy_j - x_hat_i sum_j dy_j x_hat_j): the two sums
        # run over the whole batch, every rank's values (see batch_norm_backward).
        C = len(dbeta)
        sums = self.world.allreduce_sum(xp.concatenate([dbeta, dgamma]))
        all_dbeta, all_dgamma = sums[:C], sums[C:]
        dx = input_grad_from_sums(dy_rows, cache.x_hat, cache.gamma, cache.inv_std, all_dgamma,
                                  all_dbeta, cache.x_hat.dtype.type(cache.m))
        # This rank's share only: ``average_gradients`` adds the shares up later.
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return from_rows(dx, dy.shape)


def convert_sync_batch_norm(module: Module, world: World) -> Module:
    """Replace every BatchNorm2d inside ``module`` by a SyncBatchNorm2d over ``world``, in place
    (parameters and buffers kept). Returns ``module``."""
    for name, child in list(module.named_children()):
        if type(child) is BatchNorm2d:
            setattr(module, name, SyncBatchNorm2d.from_batch_norm(child, world))
        else:
            convert_sync_batch_norm(child, world)
    return module
