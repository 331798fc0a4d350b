"""Batch normalization layers: learnable gamma (``weight``) and beta (``bias``), plus running
statistics kept as buffers.

Training mode normalises with the batch's own mean and (biased) variance and then updates the
running statistics; evaluation mode normalises with the running statistics, so that one image's
output does not depend on the rest of its batch. PyTorch's conventions: momentum 0.1, eps 1e-5,
``running_var`` holds the *unbiased* batch variance, and ``num_batches_tracked`` counts updates.
"""

from __future__ import annotations

from typing import Any

import numpy

from minigan import ops
from minigan.backend import to_numpy
from minigan.nn import init
from minigan.nn.module import Module, Parameter
from minigan.ops.batchnorm_activation import (
    batch_norm_activation_train_forward_fast,
    batch_norm_backward_through_slope_fast,
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
        if self.training and x.size == x.shape[1]:
            raise ValueError(f"{self._describe()}: training mode needs more than one value "
                             f"per channel to compute a variance, got input {tuple(x.shape)}")

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
        dx, dgamma, dbeta = ops.batch_norm_backward(dy, self._saved_cache(dy))
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    # With the fast kernels on, Sequential runs this layer and a ReLU or LeakyReLU right after
    # it as one (minigan/nn/fused_pairs.py) through the two methods below.
    def forward_and_activate(self, x: Any, negative_slope: float) -> tuple[Any, Any]:
        """``forward`` in training mode and then a leaky ReLU (``negative_slope`` 0: a ReLU)
        in the same kernels. Returns the activation's output and its slope."""
        self.check_forward_input(x)
        y, self._cache, slope, self.running_mean, self.running_var = \
            batch_norm_activation_train_forward_fast(
                x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                self.eps, self.momentum, negative_slope)
        self._batches_tracked += 1
        self._output_shape = tuple(y.shape)
        return y, slope

    def input_grad_through_slope(self, dy: Any, slope: Any) -> Any:
        """``backward`` of dy * slope, the activation's backward pass taken into this layer's
        kernels: adds dgamma and dbeta, returns dx."""
        dx, dgamma, dbeta = batch_norm_backward_through_slope_fast(dy, slope,
                                                                   self._saved_cache(dy))
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) input: statistics per feature C across the batch N."""

    expected_shape = ("N", "C")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input: statistics per channel C across N, H and W."""

    expected_shape = ("N", "C", "H", "W")
