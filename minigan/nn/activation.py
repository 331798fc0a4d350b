"""Activation layers: no parameters, just the element-wise kernels of ``minigan.ops``."""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module


class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.relu_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.relu_backward(dy, self._saved_cache(dy))


class LeakyReLU(Module):
    """y = x for x > 0, negative_slope * x otherwise (DCGAN's discriminator uses 0.2)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.leaky_relu_backward(dy, self._saved_cache(dy))

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
