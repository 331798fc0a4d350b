"""Pooling layers: MaxPool2d, AvgPool2d and GlobalAvgPool2d, around the kernels of
``minigan.ops.pooling``. They have no parameters; they remember the last forward's cache.

The kernels are looked up in ``minigan.ops`` at call time (``ops.max_pool2d_forward``), so that a
learner's own version, swapped into that namespace, is the one that runs.
"""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module


class MaxPool2d(Module):
    """The largest value of each K x K window, as ``torch.nn.MaxPool2d`` (floor mode).

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2 * padding - K) // stride + 1;
    ``stride`` defaults to ``kernel_size``.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", "C", "H", "W"))
        y, self._cache = ops.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.max_pool2d_backward(dy, self._saved_cache(dy))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """The mean of each K x K window, as ``torch.nn.AvgPool2d`` (floor mode).

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2 * padding - K) // stride + 1.
    ``count_include_pad=False`` divides by the real pixels of a window only (FID's Inception).
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 count_include_pad: bool = True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", "C", "H", "W"))
        y, self._cache = ops.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                                self.count_include_pad)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.avg_pool2d_backward(dy, self._saved_cache(dy))

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"count_include_pad={self.count_include_pad}")


class GlobalAvgPool2d(Module):
    """The mean of each channel: (N, C, H, W) -> (N, C).

    ``torch.nn.AdaptiveAvgPool2d(1)`` followed by ``torch.flatten(x, 1)``.
    """

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", "C", "H", "W"))
        y, self._cache = ops.global_avg_pool_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.global_avg_pool_backward(dy, self._saved_cache(dy))
