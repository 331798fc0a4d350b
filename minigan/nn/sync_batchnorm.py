"""Batch norm over a batch split across processes: the statistics of the whole batch.

In data-parallel training (``minigan/distributed.py``) each of N processes holds B images of a
step's N*B. Every other layer treats images one by one, so its slices are independent; batch
norm takes its mean and variance over the batch, so each process would normalise with the
statistics of its own B images only. ``SyncBatchNorm2d`` (as ``torch.nn.SyncBatchNorm``) adds
up the per-channel sums across the processes instead. With M = N*B*H*W values per channel:

    mu     = (1/M) sum of x over every process's values
    sigma2 = (1/M) sum of (x - mu)**2 over every process's values
    y      = gamma * (x - mu) / sqrt(sigma2 + eps) + beta

These are the formulas of ``minigan/ops/batchnorm.py``, and the layer runs that very kernel
(``ops.batch_norm_forward`` and ``ops.batch_norm_backward``, looked up at call time, plain or
fast as the switch says), giving it ``across=world``: the kernel's per-channel sums then go
through ``world.allreduce_sum``. The backward pass needs two more sums over the whole batch,
sum(dy) and sum(dy * x_hat), for the input gradient; dgamma and dbeta stay this process's share,
and the optimizer wrapper averages them with every other gradient. Evaluation mode (running
statistics) is BatchNorm2d's own, and talks to no one.

``world`` is anything with ``size`` and ``allreduce_sum`` (``minigan.distributed.World``); None
is one process, for which the layer is a BatchNorm2d.
"""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.batchnorm import BatchNorm2d
from minigan.nn.module import Module


class SyncBatchNorm2d(BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the batch of every process in
    ``world``. x: (B, C, H, W) on each process -> y: (B, C, H, W).

    With the fast kernels on, it runs a ReLU or LeakyReLU after it as BatchNorm2d does
    (``forward_with``), with the same sums across the processes."""

    pairs_with_activation = True   # its pair kernels sum across the processes (``_across``)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 world: Any = None):
        super().__init__(num_features, eps, momentum)
        self.world = world

    @classmethod
    def from_batch_norm(cls, bn: BatchNorm2d, world: Any) -> SyncBatchNorm2d:
        """A SyncBatchNorm2d sharing ``bn``'s Parameters and buffers (an optimizer made for
        ``bn`` keeps working)."""
        sync = cls(bn.num_features, bn.eps, bn.momentum, world)
        sync.weight, sync.bias = bn.weight, bn.bias
        for name in bn._buffer_names:
            setattr(sync, name, getattr(bn, name))
        sync.training = bn.training
        return sync

    def _across(self) -> Any:
        """The processes to sum over, or None when there is only this one."""
        return self.world if self.world is not None and self.world.size > 1 else None

    def forward(self, x: Any) -> Any:
        self.refuse_groups()
        if not self.training or self._across() is None:
            return super().forward(x)           # evaluation mode, or one process
        self.check_input(x, ("N", self.num_features, "H", "W"), self.weight.dtype)
        y, self._cache = ops.batch_norm_forward(x, self.weight.data, self.bias.data, self.eps,
                                                across=self._across())
        if self._cache.m != x.size // self.num_features * self.world.size:
            # A kernel (a learner's, say) that took only this process's statistics.
            raise RuntimeError("the batch_norm_forward in use ignores `across`: it cannot "
                               "train on several processes with synchronized batch norm "
                               "(give --no-sync-batch-norm, or use minigan's kernel)")
        # Every process has the same mu and sigma2, so the running statistics stay equal too.
        self.running_mean, self.running_var = ops.update_running_stats(
            self.running_mean, self.running_var, self._cache, self.momentum)
        self._batches_tracked += 1              # as BatchNorm2d counts: a host integer
        return y

    def backward(self, dy: Any) -> Any:
        cache = self._saved_cache(dy)
        self.refuse_groups(cache)
        if cache.training and self._across() is not None:
            dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache, across=self._across())
        else:                                   # evaluation mode, or one process
            dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)
        self.weight.accumulate(dgamma)          # this process's share: see the module's text
        self.bias.accumulate(dbeta)
        return dx


def convert_sync_batch_norm(module: Module, world: Any) -> Module:
    """Replace every BatchNorm2d inside ``module`` by a SyncBatchNorm2d over ``world``, in
    place (parameters and buffers kept). Returns ``module``."""
    for name, child in list(module.named_children()):
        if type(child) is BatchNorm2d:
            setattr(module, name, SyncBatchNorm2d.from_batch_norm(child, world))
        else:
            convert_sync_batch_norm(child, world)
    return module
