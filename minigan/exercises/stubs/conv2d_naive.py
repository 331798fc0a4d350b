"""Exercise: a 2-D convolution written as its definition, seven nested loops.

    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S*ho + i, S*wo + j]

This is the slowest convolution you will ever write and the easiest to get right: one loop per
index of the formula (n, f, ho, wo outside; c, i, j inside the sum). Later exercises make it
fast (im2col turns it into one matrix product), and the grader uses exactly these loops as the
oracle that checks your im2col.

Square kernels and one int stride and padding are enough. The grader compares your output with
minigan's reference loops (``minigan/ops/reference.py``) over shapes, strides, paddings and
with or without a bias drawn by hypothesis, and checks that float32 stays float32.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module

Array = Any


def conv2d_naive(x: Array, w: Array, b: Array | None = None, stride: int = 1,
                 padding: int = 0) -> Array:
    """2-D convolution by its definition (``conv2d_reference``): x (N, C, H, W), w (F, C, K, K),
    b (F,) or None -> y (N, F, H_out, W_out), H_out = (H + 2P - K) // S + 1."""
    xp = get_array_module(x)  # noqa: F841  (numpy or cupy: xp.zeros, xp.pad, ...)
    # Hint: pad first (a zero border of width P), make y of the output size in x's dtype, then
    # one loop per index of the formula; the sum over (c, i, j) is three more loops.
    raise NotImplementedError("conv2d_naive: write me")
