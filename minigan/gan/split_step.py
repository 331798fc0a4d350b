"""The training step on both cores of a two-core CPU: each half of the batch in a thread.

NumPy runs a matrix product on every thread its BLAS library was given, but everything else in
a step (im2col's copies, batch norm's passes, the activations, Adam) on one core while the other
waits: on a two-core machine, more than half of the step. So when BLAS has two threads, the
trainer runs ``step.train_step`` twice at once, in two threads, each on half of the batch with
BLAS at one thread. This is data parallelism as ``--processes 2`` does it
(``minigan/distributed.py``), inside one process:

* each thread has its own copy of G and D, a *replica*: a layer keeps its forward pass's cache
  for the backward pass, so two threads cannot share a layer. The replicas read the trainer's
  weights, the very arrays, never a copy of them (``Replica``);
* batch norm takes its statistics over both halves: the replicas' batch norms are
  ``SyncBatchNorm2d``, whose sums go through ``ThreadRank.allreduce_sum``, so every layer
  computes what it would on the whole batch;
* each optimizer step waits for both halves' gradients, writes their mean into the trainer's
  parameters' ``.grad`` and runs the trainer's own optimizer once (``RankOptimizer``);
* z is drawn once for the whole batch, as one thread would draw it, and each half takes its
  share (``ThreadRank.noise``).

So the numbers are the one-thread step's up to rounding (``tests/gan/test_split_step.py``
holds them to 1e-10 in float64 over three steps), and ``step.py`` stays the step: this file
reaches it from outside, through the networks, optimizers and noise it hands it. NumPy lets go
of Python's lock (the GIL) while it works on arrays, so the two threads run at once. Both halves
run on threads of their own while the main thread waits: without the host-memory setting
(``minigan/hostmem.py``, which every trainer on the NumPy backend now turns on) a half on the
main thread was measured the slower at nearly every synchronisation, its large
temporaries coming from fresh pages, and the other half waited for it; with it, even.

What it buys: the step 1.23-1.43x faster than on one thread (median 1.35x over four runs) on a
two-core AVX-512 machine; ``benchmarks/README.md`` has the commands and the rounds. When it
runs: ``SplitStep.pays``.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy

from minigan import nn
from minigan.blas import blas_threads, one_blas_thread
from minigan.gan import step
from minigan.gan.dcgan import Discriminator, Generator
from minigan.launch import usable_cores
from minigan.nn.module import Module
from minigan.nn.summary import output_shapes
from minigan.nn.sync_batchnorm import SyncBatchNorm2d, convert_sync_batch_norm
from minigan.ops.switch import fast_kernels_enabled
from minigan.optim import flat_views

Array = Any
THREADS = 2   # measured on two cores; with more, each half would want several BLAS threads

# Layers whose forward and backward passes treat every image on its own, so that two halves of
# a batch give the whole batch's numbers; the replicas' BatchNorm2d become SyncBatchNorm2d.
# Any other layer (Dropout draws masks from its own generator; a user's layer may mix images)
# keeps the one-thread step.
PER_IMAGE_LAYERS = (nn.Sequential, Generator, Discriminator, nn.Conv2d, nn.ConvTranspose2d,
                    nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Flatten, nn.Reshape,
                    nn.BatchNorm2d)

# The least work that pays for two threads: numbers per layer output per step, averaged over
# D's layers. Each half pays Python's cost of every array operation, and small arrays hold the
# GIL, so a small model's halves take turns instead of running at once. Measured on two cores
# (32x32 images unless said): 29,000 (conv_dim 8, batch 32) ran 1.5x slower split; 59,000
# (conv_dim 16 and batch 32, or conv_dim 8 and batch 64) as fast to 1.4x faster; 96,000
# (conv_dim 8, 64x64, batch 32) 1.2-1.7x faster; 118,000: conv_dim 16 at batch 64 1.24-1.37x
# faster in five runs, conv_dim 32 at batch 32 from 1.2x faster to 1.4x slower in five (its
# matrix products, which one thread runs on both cores anyway, are a larger share); SVHN's
# DCGAN at batch 128 (472,000) 1.23-1.43x faster. A rule of thumb, not a model of the cost.
SPLIT_FROM = 50_000

_allowed = True


@contextmanager
def split_across_threads(allowed: bool) -> Iterator[None]:
    """Allow (True, the default) or forbid (False) the split step inside a ``with`` block; the
    previous state comes back after it. Training on a learner's code forbids it, so that the
    learner's functions run as written, one call at a time, in the main thread."""
    global _allowed
    previous, _allowed = _allowed, bool(allowed)
    try:
        yield
    finally:
        _allowed = previous


@functools.lru_cache(maxsize=1)
def _step_threads() -> ThreadPoolExecutor:
    """The threads that run the halves of every split step: made once per process, so that
    what a thread keeps between steps (im2col's zero-bordered buffers) is made once."""
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="minigan-half")


# A process forked from this one has none of these threads: it makes its own pool if it trains.
os.register_at_fork(after_in_child=_step_threads.cache_clear)


class SplitStep:
    """``step.train_step`` with each half of the batch in a thread of its own (the module's
    text says how). Keeps the replicas of the networks from one step to the next."""

    def __init__(self) -> None:
        self._replicas: dict[int, list[Replica]] = {}   # by id of the network

    def pays(self, G: Module, D: Module, real: Array) -> bool:
        """Whether to split this step: NumPy arrays (not CuPy, not the operation counter's),
        the fast kernels, not forbidden (``split_across_threads``), BLAS at exactly two threads
        (``OMP_NUM_THREADS=1`` keeps the one-thread step) and two cores to run on (a process
        pinned to one core keeps it too), an even batch of at least four, and
        networks made only of ``PER_IMAGE_LAYERS``, with enough work (``SPLIT_FROM``)."""
        return (_allowed and type(real) is numpy.ndarray and fast_kernels_enabled()
                and len(real) % THREADS == 0 and len(real) >= 2 * THREADS
                and blas_threads() == THREADS and usable_cores() >= THREADS
                and all(type(layer) in PER_IMAGE_LAYERS
                        for network in (G, D) for layer in network.modules())
                and len(real) * self._replicas_of(D)[0].mean_output_size(real) >= SPLIT_FROM)

    def train_step(self, G: Module, D: Module, opt_g: Any, opt_d: Any, real: Array,
                   noise: Callable[[int], Array], config: step.TrainConfig) -> step.StepResult:
        """What ``step.train_step`` returns for these arguments, up to rounding."""
        replicas = {"G": self._replicas_of(G), "D": self._replicas_of(D)}
        for replica in replicas["G"] + replicas["D"]:
            replica.bind()
        shared = _Shared(THREADS)
        half = len(real) // THREADS
        results: list[Any] = [None] * THREADS
        errors: list[BaseException | None] = [None] * THREADS

        def run(r: int) -> None:
            rank = ThreadRank(r, shared)
            G_r, D_r = replicas["G"][r].network, replicas["D"][r].network
            for layer in list(G_r.modules()) + list(D_r.modules()):
                if isinstance(layer, SyncBatchNorm2d):
                    layer.world = rank      # its sums: over this step's threads
            try:
                results[r] = step.train_step(
                    G_r, D_r, RankOptimizer(rank, replicas["G"], opt_g),
                    RankOptimizer(rank, replicas["D"], opt_d),
                    real[r * half:(r + 1) * half], rank.noise(noise), config)
            except BaseException as error:  # SystemExit too: the other half must not wait
                errors[r] = error
                shared.barrier.abort()

        with one_blas_thread():             # each half's products on its own core
            halves = [_step_threads().submit(run, r) for r in range(THREADS)]
            try:
                for h in halves:
                    h.result()
            finally:
                if not all(h.done() for h in halves):   # Ctrl-C while the halves ran
                    shared.barrier.abort()
                    for h in halves:
                        h.result()
        failed = [e for e in errors if e is not None]
        if failed:   # the error itself, not the other half's broken barrier
            raise next((e for e in failed if not isinstance(e, threading.BrokenBarrierError)),
                       failed[0])
        replicas["G"][0].give_back_buffers()
        replicas["D"][0].give_back_buffers()
        # The whole batch's numbers: the mean of the halves' means.
        return step.StepResult(*(sum(getattr(r, name) for r in results) / THREADS
                                 for name in ("d_loss", "g_loss", "d_real", "d_fake")))

    def _replicas_of(self, network: Module) -> list[Replica]:
        """One replica per thread, made again if the network has changed (another layer, a
        parameter of another dtype)."""
        replicas = self._replicas.get(id(network))
        if replicas is None or not replicas[0].is_of(network):
            replicas = [Replica(network) for _ in range(THREADS)]
            self._replicas[id(network)] = replicas
        return replicas


class ThreadRank:
    """Thread ``rank`` of ``size`` that run one step together: what ``SyncBatchNorm2d`` and the
    optimizers ask of a world (``size``, ``allreduce_sum``), between threads."""

    def __init__(self, rank: int, shared: _Shared):
        self.rank, self.size, self.shared = rank, shared.size, shared
        self._exchanges = 0

    def barrier(self) -> None:
        """Wait until every thread has got here (raises if another thread failed)."""
        self.shared.barrier.wait()

    def exchange(self, mine: Any) -> list[Any]:
        """Every thread's ``mine``, by rank, after one barrier.

        Two sets of slots, used in turn: a thread may write into a set again only two
        exchanges later, and the barrier of the exchange between lets it through only once
        every thread has finished reading that set."""
        slots = self.shared.slots[self._exchanges % 2]
        self._exchanges += 1
        slots[self.rank] = mine
        self.barrier()
        return list(slots)

    def allreduce_sum(self, a: Array) -> Array:
        """Sum ``a`` over the threads, in place; every thread gets the same total (the same
        adds in the same order). Returns ``a``."""
        a[...] = functools.reduce(numpy.add, self.exchange(a.copy()))  # copy: ``a`` changes
        return a

    def noise(self, draw: Callable[[int], Array]) -> Callable[[int], Array]:
        """``noise(n)``: this thread's n latent vectors, its share of one draw of n * size by
        thread 0, so that the halves see the z that the one-thread step draws."""
        def share(n: int) -> Array:
            z = self.exchange(draw(n * self.size) if self.rank == 0 else None)[0]
            return z[self.rank * n:(self.rank + 1) * n]
        return share


class _Shared:
    """What the threads of one step share: a barrier and two sets of one slot per thread."""

    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list[list[Any]] = [[None] * size, [None] * size]


class Replica:
    """A copy of network ``original`` for one thread: its own layers (so its own caches), its
    own gradients, and, at each step, the original's parameter arrays, buffers and modes."""

    def __init__(self, original: Module):
        self.original = original
        self.layers = list(original.modules())
        self.network = convert_sync_batch_norm(copy.deepcopy(original, _sharing(original)), None)
        self.params = self.network.parameters()
        dtype = self.params[0].dtype if self.params else numpy.float32
        self.flat_grad = numpy.zeros(sum(p.size for p in self.params), dtype=dtype)
        for p, grad in zip(self.params, flat_views(self.params, self.flat_grad)):
            p.grad = grad                   # in the memory order of the original's gradients
        self._output_sizes: dict[tuple, float] = {}   # mean_output_size's answers

    def is_of(self, original: Module) -> bool:
        """Is this still a replica of ``original`` (the same layers, parameter dtypes)?"""
        layers = list(original.modules())
        return (len(layers) == len(self.layers)
                and all(a is b for a, b in zip(layers, self.layers))
                and all(p.dtype == q.dtype for p, q in zip(self.params, original.parameters())))

    def mean_output_size(self, batch: Array) -> float:
        """The mean size of the network's layer outputs for one input like ``batch``'s, from one
        pass in evaluation mode (the original is not touched); 0 if the network does not take
        such an input (the step will say why)."""
        key = (tuple(batch.shape[1:]), batch.dtype)
        if key not in self._output_sizes:
            self.bind()
            self.network.eval()             # the next bind() takes the original's modes back
            x = numpy.zeros((1, *key[0]), dtype=batch.dtype)
            try:
                sizes = [math.prod(shape) for _, _, shape in output_shapes(self.network, x)]
            except ValueError:              # a ShapeError: another shape or dtype
                sizes = [0]
            self.network.clear_cache()
            self._output_sizes[key] = sum(sizes) / max(len(sizes), 1)
        return self._output_sizes[key]

    def bind(self) -> None:
        """Take the original's current weights, buffers, modes and frozen parameters."""
        for mine, theirs in zip(self.network.modules(), self.original.modules()):
            mine.training = theirs.training
            for name in theirs._buffer_names:
                setattr(mine, name, getattr(theirs, name))
        self.bind_weights()
        for mine, theirs in zip(self.params, self.original.parameters()):
            mine.requires_grad = theirs.requires_grad

    def bind_weights(self) -> None:
        for mine, theirs in zip(self.params, self.original.parameters()):
            mine.data = theirs.data

    def give_back_buffers(self) -> None:
        """The original takes this replica's new buffers: batch norm's running statistics,
        which its kernels return as new arrays (so the other replica's never reach it)."""
        for mine, theirs in zip(self.network.modules(), self.original.modules()):
            for name in theirs._buffer_names:
                setattr(theirs, name, getattr(mine, name))


def _sharing(original: Module) -> dict[int, Any]:
    """A deepcopy memo that shares the parameters' arrays and the buffers and drops caches."""
    memo: dict[int, Any] = {}
    for layer in original.modules():
        if layer._cache is not None:
            memo[id(layer._cache)] = None
        for name in layer._buffer_names:
            value = getattr(layer, name)
            memo[id(value)] = value         # kept alive by the memo, so its id stays its own
    for p in original.parameters():
        memo[id(p.data)], memo[id(p.grad)] = p.data, p.grad
    return memo


class RankOptimizer:
    """The optimizer a half's step is given. ``zero_grad`` clears its replica's gradients;
    ``step`` waits for every half, then thread 0 writes their mean gradient into the
    original's parameters and runs the original's optimizer, and every half waits for that."""

    def __init__(self, rank: ThreadRank, replicas: list[Replica], optimizer: Any):
        self.rank, self.replicas, self.optimizer = rank, replicas, optimizer

    def zero_grad(self) -> None:
        self.replicas[self.rank.rank].flat_grad.fill(0)

    def step(self) -> None:
        self.rank.barrier()                 # every half's gradients are in
        if self.rank.rank == 0:
            first, second = (replica.params for replica in self.replicas)
            for p, a, b in zip(self.replicas[0].original.parameters(), first, second):
                numpy.add(a.grad, b.grad, out=p.grad)
                p.grad /= p.grad.dtype.type(THREADS)
            self.optimizer.step()
        self.rank.barrier()                 # updated before any half's next forward pass
        self.replicas[self.rank.rank].bind_weights()   # an optimizer may move the weights
