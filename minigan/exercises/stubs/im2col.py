"""Exercise: im2col and col2im, which turn a convolution into one matrix product.

A convolution slides a K x K window over the (zero-padded) input and, at every window position,
takes the dot product of the window with each filter. ``im2col`` copies every window into one
row of a matrix, so that all those dot products become a single matrix product::

    y_rows = im2col(x) @ w_mat            # (N*H_out*W_out, K*K*C) @ (K*K*C, F)

``col2im`` is its adjoint (its transpose, as a linear map): it adds every row back into the
window it came from, so pixels covered by several windows receive the sum of their entries.
That is what the backward pass of a convolution needs.

The layout of ``cols`` (the grader checks it entry by entry)::

    cols: (N*H_out*W_out, K*K*C)
    cols[(n, ho, wo), (i, j, c)] = x_padded[n, c, S*ho + i, S*wo + j]

One row per output pixel (n, ho, wo), in row-major order (wo fastest); one column per kernel
offset (i, j) and input channel c, with c varying fastest.

Output size: H_out = (H + 2P - K) // S + 1 (and the same for W). Square K x K windows and one
int stride and padding are enough here (minigan's own im2col also takes (h, w) pairs).
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module

Array = Any


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """H_out = (H + 2P - K) // S + 1: how many K-wide windows, S apart, fit in the padded input.
    (Given: not an exercise.)"""
    return (size + 2 * padding - kernel_size) // stride + 1


def im2col(x: Array, kernel_size: int, stride: int = 1, padding: int = 0) -> Array:
    """Copy every K x K window of the padded input into one row of a matrix.

    x:    (N, C, H, W)
    cols: (N*H_out*W_out, K*K*C), cols[(n, ho, wo), (i, j, c)] = x_pad[n, c, S*ho + i, S*wo + j]
    with H_out = (H + 2P - K) // S + 1.
    """
    xp = get_array_module(x)  # noqa: F841  (numpy or cupy: use xp.zeros, xp.pad, ...)
    # Hint: pad first; then the plainest version loops over output pixels and copies each
    # window, shaped (C, K, K), into its row; mind the order the columns want: (i, j, c),
    # with c fastest.
    raise NotImplementedError("im2col: write me")


def col2im(cols: Array, x_shape: tuple[int, ...], kernel_size: int, stride: int = 1,
           padding: int = 0) -> Array:
    """The adjoint of ``im2col``: add every row back into the window it was copied from.

    cols:    (N*H_out*W_out, K*K*C), laid out as ``im2col`` makes it
    x_shape: (N, C, H, W), the shape of the image the windows came from
    returns: x (N, C, H, W), x[n, c, h, w] = sum of cols[(n, ho, wo), (i, j, c)]
             over all (ho, wo, i, j) with S*ho + i - P == h and S*wo + j - P == w.
    """
    # Hint: im2col run backwards, into a padded zero image: windows overlap when K > S, and
    # what lands on the same pixel adds up. The padding is cut off at the end.
    raise NotImplementedError("col2im: write me")
