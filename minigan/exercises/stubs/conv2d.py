"""Exercise: 2-D convolution (cross-correlation, as in PyTorch), forward and backward.

    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S*ho + i, S*wo + j]

With ``cols = im2col(x)`` (one row per output pixel, one column per (i, j, c)) and the weights
flattened to a matrix ``w_mat`` (K*K*C, F) in the same (i, j, c) order, the whole layer is one
matrix product, and so is each gradient::

    forward:   y_rows  = cols @ w_mat + b             (N*H_out*W_out, F)
    backward:  dw_mat  = cols.T @ dy_rows             (K*K*C, F)
               dcols   = dy_rows @ w_mat.T            (N*H_out*W_out, K*K*C)
               dx      = col2im(dcols)                (N, C, H, W)
               db      = dy summed over n, ho, wo     (F,)

Square kernels and one int stride and padding are enough here: that is all a DCGAN uses, and
all the grader draws. (minigan's own kernels also take rectangular kernels and (h, w) pairs.)

This file uses *your* im2col and col2im (``from .im2col import ...``): finish im2col.py first.
The grader compares your forward pass with a plain loop (``minigan.ops.reference``) and your
gradients with finite differences, over shapes, strides and paddings drawn by hypothesis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

from .im2col import col2im, conv_output_size, im2col  # noqa: F401  (yours)

Array = Any


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward pass (change it as you like)."""

    cols: Array                   # im2col(x): (N*H_out*W_out, K*K*C)
    w: Array                      # the weights, (F, C, K, K)
    x_shape: tuple[int, ...]      # (N, C, H, W)
    stride: int
    padding: int
    has_bias: bool                # was there a bias (so backward returns db, not None)?


def weight_matrix(w: Array) -> Array:
    """(F, C, K, K) -> w_mat (K*K*C, F), rows in the (i, j, c) order of ``im2col``'s columns.
    (Given: not an exercise.)"""
    xp = get_array_module(w)
    F, C, K, _ = w.shape
    return xp.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(K * K * C, F)


def weight_from_matrix(w_mat: Array, w_shape: tuple[int, ...]) -> Array:
    """The inverse of ``weight_matrix``: (K*K*C, F) -> (F, C, K, K). (Given.)"""
    xp = get_array_module(w_mat)
    F, C, K, _ = w_shape
    return xp.ascontiguousarray(w_mat.reshape(K, K, C, F).transpose(3, 2, 0, 1))


def rows_to_nchw(rows: Array, shape: tuple[int, ...]) -> Array:
    """(N*H*W, C) -> (N, C, H, W): one row per pixel back to an image. (Given.)"""
    N, C, H, W = shape
    return rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)


def nchw_to_rows(a: Array) -> Array:
    """(N, C, H, W) -> (N*H*W, C): the inverse of ``rows_to_nchw``. (Given.)"""
    N, C, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def conv2d_forward(x: Array, w: Array, b: Array | None = None, stride: int = 1,
                   padding: int = 0) -> tuple[Array, Conv2dCache]:
    """Forward pass of a 2-D convolution.

    x: (N, C, H, W), w: (F, C, K, K), b: (F,) or None
    y: (N, F, H_out, W_out), H_out = (H + 2P - K) // S + 1, W_out likewise
    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S*ho + i, S*wo + j]
    """
    # Hint: the windows as rows (im2col), the filters as columns (weight_matrix): one matrix
    # product gives every output pixel of every filter; then back to an image (the given
    # helpers), and a cache with what the backward pass will need.
    raise NotImplementedError("conv2d_forward: write me")


def conv2d_backward(
    dy: Array, cache: Conv2dCache, need_weight_grad: bool = True, need_input_grad: bool = True,
) -> tuple[Array | None, Array | None, Array | None]:
    """Backward pass of a 2-D convolution.

    dy: (N, F, H_out, W_out) -> dx: (N, C, H, W), dw: (F, C, K, K), db: (F,) or None
        dx = col2im(dy_rows @ w_mat.T)     (a transposed convolution of dy)
        dw = cols.T @ dy_rows              (reshaped to (F, C, K, K))
        db = sum of dy over n, ho, wo
    db is None when the forward pass had no bias. Either half can be skipped:
    ``need_weight_grad=False`` gives dw = db = None, ``need_input_grad=False`` gives dx = None.
    """
    # Hint: dy as rows in the same order as cols; each filter's gradient sums (gradient at an
    # output pixel) times (the window that pixel saw); each output pixel sends its gradient
    # back through the weights to its window, and col2im adds up what overlaps.
    raise NotImplementedError("conv2d_backward: write me")
