"""Activation layers: no parameters, just the element-wise kernels of ``minigan.ops``."""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module
from minigan.ops.activations import LeakyReluCache, ReluCache


class _SlopeActivation(Module):
    """What ReLU and LeakyReLU share: their local derivative is a slope, 1 where x > 0 and
    ``negative_slope`` elsewhere, and a batch norm right before can run them in its own
    kernels (``BatchNorm.forward_with``), handing over the slope to keep for backward."""

    negative_slope: float

    def keep_slope(self, slope: Any) -> None:
        """Keep the slope computed by the batch norm before, as this layer's own forward
        would have kept it (so that its own ``backward`` works too)."""
        self._cache = self.cache_of_slope(slope)
        self._output_shape = tuple(slope.shape)

    def saved_slope(self, dy: Any) -> Any:
        """The slope kept by the last forward pass, handed over (and cleared) for the batch
        norm before to take this layer's backward pass into its own."""
        cache = self._saved_cache(dy)
        return cache.slope if isinstance(cache, LeakyReluCache) else cache.mask

    def cache_of_slope(self, slope: Any) -> Any:
        raise NotImplementedError


class ReLU(_SlopeActivation):
    """y = max(x, 0)."""

    negative_slope = 0.0

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.relu_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.relu_backward(dy, self._saved_cache(dy))

    def cache_of_slope(self, slope: Any) -> ReluCache:
        return ReluCache(mask=slope)                # ReLU's slope is its mask, 1 or 0


class LeakyReLU(_SlopeActivation):
    """y = x for x > 0, negative_slope * x otherwise (DCGAN's discriminator uses 0.2)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.leaky_relu_backward(dy, self._saved_cache(dy))

    def cache_of_slope(self, slope: Any) -> LeakyReluCache:
        return LeakyReluCache(slope=slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """y = tanh(x), in (-1, 1): the generator's output, matching images scaled to [-1, 1]."""

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.tanh_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.tanh_backward(dy, self._saved_cache(dy))


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), in (0, 1)."""

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.sigmoid_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.sigmoid_backward(dy, self._saved_cache(dy))
