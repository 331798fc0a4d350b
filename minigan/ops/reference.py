"""Slow, obviously-correct loop versions of the convolution kernels.

These follow the definitions word for word, one output (or input) pixel at a time, so that a
reader can check them by eye. The fast kernels in ``conv2d.py`` and ``conv_transpose2d.py`` are
tested against them; they are also the place to start reading if im2col is new to you.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.ops.im2col import IntOrPair, pair

Array = Any


def _pad(x: Array, padding: IntOrPair) -> Array:
    """Zero-pad the last two axes of x: (N, C, H, W) -> (N, C, H + 2P_h, W + 2P_w)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    PH, PW = pair(padding)
    x_pad = xp.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=x.dtype)
    x_pad[:, :, PH:PH + H, PW:PW + W] = x
    return x_pad


def conv2d_reference(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0) -> Array:
    """2-D convolution by its definition.

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None; stride, padding: int or (h, w) pair
    -> y: (N, F, H_out, W_out), H_out = (H + 2P_h - KH) // S_h + 1 (W_out likewise), and
    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S_h*ho + i, S_w*wo + j]
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    (SH, SW), (PH, PW) = pair(stride), pair(padding)
    H_out = (H + 2 * PH - KH) // SH + 1
    W_out = (W + 2 * PW - KW) // SW + 1
    x_pad = _pad(x, (PH, PW))
    y = xp.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for ho in range(H_out):
                for wo in range(W_out):
                    window = x_pad[n, :, SH * ho:SH * ho + KH, SW * wo:SW * wo + KW]  # (C, KH, KW)
                    y[n, f, ho, wo] = xp.sum(window * w[f])
            if b is not None:
                y[n, f] += b[f]
    return y


def conv_transpose2d_reference(x: Array, w: Array, b: Array | None = None, stride: int = 1,
                               padding: int = 0, output_padding: int = 0) -> Array:
    """2-D transposed convolution by its definition: every input pixel stamps the kernel.

    x: (N, C_in, H, W), w: (C_in, C_out, K, K), b: (C_out,) or None
    -> y: (N, C_out, H_out, W_out), H_out = (H - 1) * S - 2P + K + output_padding.

    Each input pixel x[n, c, h, w] adds x[n, c, h, w] * w[c] (a (C_out, K, K) stamp) into the
    full-size output at rows S*h .. S*h + K - 1 and columns S*w .. S*w + K - 1. The result is
    then cropped by P at the top and left, and cut to H_out x W_out: output_padding adds rows
    and columns at the bottom and right that only the bias reaches (when the stamps stop short).
    """
    xp = get_array_module(x)
    N, C_in, H, W = x.shape
    _, C_out, K, _ = w.shape
    S, P = stride, padding
    H_out = (H - 1) * S - 2 * P + K + output_padding
    W_out = (W - 1) * S - 2 * P + K + output_padding
    # Big enough for every stamp and for the cropped output window [P, P + H_out).
    y_full = xp.zeros((N, C_out, max((H - 1) * S + K, P + H_out),
                       max((W - 1) * S + K, P + W_out)), dtype=x.dtype)
    for n in range(N):
        for c in range(C_in):
            for h in range(H):
                for v in range(W):
                    y_full[n, :, S * h:S * h + K, S * v:S * v + K] += x[n, c, h, v] * w[c]
    y = y_full[:, :, P:P + H_out, P:P + W_out].copy()
    if b is not None:
        y += b.reshape(1, C_out, 1, 1)
    return y
