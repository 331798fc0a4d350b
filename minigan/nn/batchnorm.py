"""Batch normalization layers: learnable gamma (``weight``) and beta (``bias``), plus running
statistics kept as buffers.

Training mode normalises with the batch's own mean and (biased) variance and then updates the
running statistics; evaluation mode normalises with the running statistics, so that one image's
output does not depend on the rest of its batch. PyTorch's conventions: momentum 0.1, eps 1e-5,
``running_var`` holds the *unbiased* batch variance, and ``num_batches_tracked`` counts updates.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy

from minigan import ops
from minigan.backend import to_numpy
from minigan.nn import init
from minigan.nn.activation import LeakyReLU, ReLU
from minigan.nn.module import Module, Parameter
from minigan.ops import activations
from minigan.ops import batchnorm as batchnorm_kernels
from minigan.ops.batchnorm_activation import (
    add_gamma_and_beta_gradients,
    batch_norm_activation_train_forward_fast,
    batch_norm_backward_through_slope_fast,
)
from minigan.ops.batchnorm_groups import (
    add_two_groups_gradients,
    batch_norm_activation_train_forward_by_groups,
    batch_norm_backward_through_slope_by_groups,
)


class _BatchNorm(Module):
    expected_shape: tuple[str, ...] = ()  # set by the subclasses below

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(init.ones((num_features,)))   # gamma
        self.bias = Parameter(init.zeros((num_features,)))    # beta
        self.register_buffer("running_mean", init.zeros((num_features,)))
        self.register_buffer("running_var", init.ones((num_features,)))
        self.register_buffer("num_batches_tracked", init.zeros((), dtype="int64"))

    def forward(self, x: Any) -> Any:
        self.refuse_groups()
        self.check_forward_input(x)
        gamma, beta = self.weight.data, self.bias.data
        if self.training:
            # ops.batch_norm_forward, then ops.update_running_stats with the batch's statistics
            y, self._cache, self.running_mean, self.running_var = ops.batch_norm_train_forward(
                x, gamma, beta, self.running_mean, self.running_var, self.eps, self.momentum)
            self._batches_tracked += 1                    # a host integer: no array operation
        else:
            y, self._cache = ops.batch_norm_eval_forward(x, gamma, beta, self.running_mean,
                                                     self.running_var, self.eps)
        return y

    def check_forward_input(self, x: Any) -> None:
        """Refuse an input of the wrong shape or dtype, or, in training mode, with one value
        per channel (no variance): what ``forward`` checks first."""
        shape = list(self.expected_shape)
        shape[1] = self.num_features
        self.check_input(x, tuple(shape), self.weight.dtype)
        groups = self.statistics_groups
        if groups > 1 and x.shape[0] % groups:
            raise ValueError(f"{self._describe()}: a batch of {x.shape[0]} cannot be split into "
                             f"{groups} groups of the same size")
        if self.training and x.size == x.shape[1] * groups:
            raise ValueError(f"{self._describe()}: training mode needs more than one value "
                             f"per channel to compute a variance, got input {tuple(x.shape)}"
                             + (f" in {groups} groups" if groups > 1 else ""))

    # Statistics per group of the batch: while ``minigan.nn.batch_groups.statistics_per_group``
    # runs several batches through a network as one (D's real and fake batch, G's fake batches,
    # on a GPU: minigan/gan/one_pass.py), this is their number, and each group is normalised
    # with its own mu_B and sigma2_B. Only the pair kernels do that; a layer asked to run on its
    # own meanwhile refuses (``batch_groups.runs_as_one_batch`` makes sure it is not asked).
    statistics_groups = 1

    def refuse_groups(self, cache: Any = None) -> None:
        """Raise unless this call sees one batch (what every kernel but the pair's assumes)."""
        if self.statistics_groups > 1 or getattr(cache, "groups", 1) > 1:
            raise RuntimeError(f"{self._describe()}: statistics per group of the batch are kept "
                               f"only by the batch norm + activation pair kernels (fast kernels "
                               f"on, a ReLU or LeakyReLU right after it)")

    # num_batches_tracked is counted on the host, as a Python int: an array counter would cost
    # an array operation (a kernel launch on a GPU) in every training forward. It still reads and
    # loads as the 0-d int64 array PyTorch has, so state_dict and checkpoints are unchanged.
    @property
    def num_batches_tracked(self) -> numpy.ndarray:
        """How many training batches updated the running statistics: a 0-d int64 array."""
        return numpy.array(self._batches_tracked, dtype=numpy.int64)

    @num_batches_tracked.setter
    def num_batches_tracked(self, value: Any) -> None:
        self._batches_tracked = int(to_numpy(value))

    def backward(self, dy: Any) -> Any:
        # No need_weight_grad here: in training mode dx is built from dgamma and dbeta, so the
        # kernel computes them anyway; frozen parameters just do not receive them.
        cache = self._saved_cache(dy)
        self.refuse_groups(cache)
        dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    # A ReLU or LeakyReLU right after this layer, in its kernels (``Sequential`` asks, with the
    # fast kernels on; ``minigan/ops/batchnorm_activation.py``). What it buys: one array
    # operation fewer each way (a kernel launch on a GPU, a pass over memory on the CPU), since
    # the activation is part of the normalise-scale-shift kernel and its slope is multiplied in
    # inside the backward sums, so dy * slope is never written out. Both layers keep the caches
    # they would have had, so either one's own backward still works after a paired forward.
    # Not in eval mode, with buffers of another dtype, with a learner's kernels swapped in, or
    # for a subclass that does not say it pairs (``pairs_with_activation`` in its own class
    # body: a subclass may change forward): the two layers then run one at a time.
    pairs_with_activation = False   # BatchNorm1d, BatchNorm2d and SyncBatchNorm2d say True

    def runs_with(self, after: Module, x: Any) -> bool:
        return (self._pairs_with(after) and self.training
                and getattr(x, "dtype", None) == self.running_mean.dtype)

    def forward_with(self, after: Module, x: Any) -> Any:
        self.check_forward_input(x)
        groups = self.statistics_groups
        args = (x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                self.eps, self.momentum, after.negative_slope)
        if groups == 1:
            y, self._cache, slope, self.running_mean, self.running_var = \
                batch_norm_activation_train_forward_fast(*args, across=self._across())
        else:   # several batches, each with its own statistics: minigan/ops/batchnorm_groups.py
            y, self._cache, slope, self.running_mean, self.running_var = \
                batch_norm_activation_train_forward_by_groups(*args, groups,
                                                              across=self._across())
        self._batches_tracked += groups                   # one update per batch, as apart
        self._output_shape = tuple(y.shape)
        after.keep_slope(slope)
        return y

    def takes_back_with(self, after: Module) -> bool:
        cache = self.cache
        return (self._pairs_with(after) and cache is not None and cache.training
                and after.cache is not None)

    def input_grad_with(self, after: Module, dy: Any) -> Any:
        slope = after.saved_slope(dy)
        cache = self._saved_cache(dy)
        if cache.groups == 1:
            dx, dgamma, dbeta = batch_norm_backward_through_slope_fast(
                dy, slope, cache, across=self._across())
            self._add_gradients([dgamma], [dbeta])
        else:
            dx, dgammas, dbetas = batch_norm_backward_through_slope_by_groups(
                dy, slope, cache, across=self._across())
            self._add_gradients(dgammas, dbetas)
        return dx

    def _add_gradients(self, dgammas: Any, dbetas: Any) -> None:
        """gamma's and beta's gradients, one per group (the first group's first, as separate
        backward passes add them), added into their ``.grad``: one kernel for both parameters
        and up to two groups, where two ``Parameter.accumulate`` calls per group would launch
        two each. One parameter frozen: ``accumulate`` (which skips it) one by one."""
        if not (self.weight.requires_grad and self.bias.requires_grad):
            for dgamma, dbeta in zip(dgammas, dbetas):
                self.weight.accumulate(dgamma)
                self.bias.accumulate(dbeta)
        elif len(dgammas) == 2:
            add_two_groups_gradients(self.weight.grad, self.bias.grad, dgammas[0], dbetas[0],
                                     dgammas[1], dbetas[1])
        else:
            for dgamma, dbeta in zip(dgammas, dbetas):
                add_gamma_and_beta_gradients(self.weight.grad, self.bias.grad, dgamma, dbeta)

    def _pairs_with(self, after: Module) -> bool:
        return (vars(type(self)).get("pairs_with_activation", False)
                and type(after) in (ReLU, LeakyReLU) and _own_kernels())

    def _across(self) -> Any:
        """The processes whose batches make the batch (SyncBatchNorm2d), or None: this one."""
        return None

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) input: statistics per feature C across the batch N."""

    expected_shape = ("N", "C")
    pairs_with_activation = True


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input: statistics per channel C across N, H and W."""

    expected_shape = ("N", "C", "H", "W")
    pairs_with_activation = True


# The kernels that a batch norm and its activation call one layer at a time: while any of them
# is swapped in ``minigan.ops`` (an exercise), the two run so, and the learner's kernel runs.
REPLACED_KERNELS = (
    batchnorm_kernels.batch_norm_train_forward, batchnorm_kernels.batch_norm_forward,
    batchnorm_kernels.update_running_stats, batchnorm_kernels.batch_norm_backward,
    activations.relu_forward, activations.relu_backward,
    activations.leaky_relu_forward, activations.leaky_relu_backward,
)


def _own_kernels() -> bool:
    """True unless one of REPLACED_KERNELS was swapped in ``minigan.ops`` (a wrapper made with
    functools.wraps around minigan's own, a timer say, still counts as minigan's)."""
    return all(inspect.unwrap(getattr(ops, kernel.__name__)) is kernel
               for kernel in REPLACED_KERNELS)
