"""Bilinear resizing of images, as ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` does it (the way pytorch-fid brings images to Inception's 299x299).

Output pixel ``ho`` sits, in input coordinates, at the point ``src = (ho + 0.5) * H / H_out - 0.5``
("pixel centres line up": the centre of output pixel ho is where it would be on the input grid);
points left of the first centre are clamped to it (src >= 0). With h0 = floor(src),
h1 = min(h0 + 1, H - 1) and the fraction t = src - h0, the value along one axis is

    y[ho] = (1 - t) * x[h0] + t * x[h1]                   (linear interpolation)

and bilinear interpolation does this along the rows, then along the columns. Each of those is a
linear map the same for every image and channel, so it is a matrix: A_h (H_out, H) has
(1 - t) at column h0 and t at column h1 of row ho (the two add when h0 == h1). Then

    forward:   y  = A_h @ x @ A_w.T        (N, C, H, W) -> (N, C, H_out, W_out)
    backward:  dx = A_h.T @ dy @ A_w       (N, C, H_out, W_out) -> (N, C, H, W)

(``@`` acting on the last two axes, as NumPy's matmul does). The backward pass is the transpose
of the forward, because a linear map's gradient is its transpose.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class ResizeCache(NamedTuple):
    rows: Array      # A_h: (H_out, H)
    cols: Array      # A_w: (W_out, W)


def source_index(out_index: int, in_size: int, out_size: int) -> tuple[int, int, float]:
    """(h0, h1, t): output pixel ``out_index`` is (1 - t) * x[h0] + t * x[h1] along one axis.

    PyTorch's rule for align_corners=False: src = (out + 0.5) * (in / out) - 0.5, clamped at 0.
    """
    src = max((out_index + 0.5) * (in_size / out_size) - 0.5, 0.0)
    h0 = min(int(math.floor(src)), in_size - 1)
    h1 = min(h0 + 1, in_size - 1)
    return h0, h1, src - h0


def interpolation_matrix(xp: Any, in_size: int, out_size: int, dtype: Any) -> Array:
    """A (out_size, in_size): row ``o`` holds the two weights of output pixel ``o``."""
    a = xp.zeros((out_size, in_size), dtype=dtype)
    for o in range(out_size):
        h0, h1, t = source_index(o, in_size, out_size)
        a[o, h0] += 1 - t
        a[o, h1] += t
    return a


def resize_bilinear_forward(x: Array, size: tuple[int, int]) -> tuple[Array, ResizeCache]:
    """x: (N, C, H, W) -> y: (N, C, H_out, W_out) with (H_out, W_out) = size; y = A_h x A_w^T."""
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ValueError(f"resize_bilinear expects x of shape (N, C, H, W), got {tuple(x.shape)}")
    H_out, W_out = size
    if H_out < 1 or W_out < 1:
        raise ValueError(f"the output size must be positive, got {size}")
    rows = interpolation_matrix(xp, x.shape[2], H_out, x.dtype)
    cols = interpolation_matrix(xp, x.shape[3], W_out, x.dtype)
    return xp.matmul(xp.matmul(rows, x), cols.T), ResizeCache(rows, cols)


def resize_bilinear_backward(dy: Array, cache: ResizeCache) -> Array:
    """dy: (N, C, H_out, W_out) -> dx: (N, C, H, W); dx = A_h^T dy A_w."""
    xp = get_array_module(dy)
    return xp.matmul(xp.matmul(cache.rows.T, dy), cache.cols)
