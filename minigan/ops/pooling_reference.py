"""Slow, obviously-correct loop versions of the pooling and resizing kernels.

One output pixel at a time, straight from the definitions, so that a reader can check them by
eye; ``pooling.py`` and ``resize.py`` are tested against them (as ``reference.py`` does for the
convolutions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from minigan.backend import get_array_module

Array = Any


def max_pool2d_reference(x: Array, kernel_size: int, stride: int | None = None,
                         padding: int = 0) -> Array:
    """y[n, c, ho, wo] = the largest real pixel of the window at (S*ho - P, S*wo - P).

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2P - K) // S + 1.
    Padding never wins: the window is cut to the pixels inside the image.
    """
    return _pool_each_window(x, kernel_size, stride, padding, lambda window: window.max())


def avg_pool2d_reference(x: Array, kernel_size: int, stride: int | None = None,
                         padding: int = 0, count_include_pad: bool = True) -> Array:
    """y[n, c, ho, wo] = (sum of the window's real pixels) / (K*K, or how many real pixels).

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2P - K) // S + 1.
    """
    K = kernel_size
    return _pool_each_window(
        x, kernel_size, stride, padding,
        lambda window: window.sum() / (K * K if count_include_pad else window.size))


def _pool_each_window(x: Array, kernel_size: int, stride: int | None, padding: int,
                      pool: Callable[[Array], Any]) -> Array:
    """y[n, c, ho, wo] = pool(the real pixels of the K x K window at (S*ho - P, S*wo - P)).

    The window is cut to the pixels inside the image, so padding is never looked at; the two
    poolings above differ only in what they make of the window.
    """
    xp = get_array_module(x)
    K, S, P = kernel_size, stride or kernel_size, padding
    N, C, H, W = x.shape
    H_out, W_out = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
    y = xp.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for ho in range(H_out):
                for wo in range(W_out):
                    top, left = S * ho - P, S * wo - P
                    y[n, c, ho, wo] = pool(x[n, c, max(top, 0):top + K, max(left, 0):left + K])
    return y


def resize_bilinear_reference(x: Array, size: tuple[int, int]) -> Array:
    """Each output pixel from its four nearest input pixels, weighted by closeness.

    x: (N, C, H, W) -> y: (N, C, H_out, W_out). Output pixel (ho, wo) sits at the input point
    (ho + 0.5) * H / H_out - 0.5 (clamped at 0) and likewise for wo: PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)``.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    H_out, W_out = size
    y = xp.zeros((N, C, H_out, W_out), dtype=x.dtype)

    def neighbours(out: int, in_size: int, out_size: int) -> tuple[int, int, float]:
        src = max((out + 0.5) * (in_size / out_size) - 0.5, 0.0)
        low = min(int(math.floor(src)), in_size - 1)
        return low, min(low + 1, in_size - 1), src - low

    for ho in range(H_out):
        h0, h1, th = neighbours(ho, H, H_out)
        for wo in range(W_out):
            w0, w1, tw = neighbours(wo, W, W_out)
            y[:, :, ho, wo] = ((1 - th) * (1 - tw) * x[:, :, h0, w0]
                               + (1 - th) * tw * x[:, :, h0, w1]
                               + th * (1 - tw) * x[:, :, h1, w0]
                               + th * tw * x[:, :, h1, w1])
    return y
