"""Exercise: 2-D transposed convolution, written as the adjoint of your convolution.

Every input pixel stamps a copy of the kernel, scaled by its value, onto the output, S pixels
apart; overlapping stamps add up:

    y_full[n, o, S*h + i, S*w + j] += x[n, c, h, w] * w[c, o, i, j]     for all n, c, h, w, i, j
    y = y_full cropped by P on each side (plus ``output_padding`` extra rows/columns at the
        bottom/right) + b[o]

That is exactly what the *input gradient* of a convolution computes, with the weights read as
(F, C, K, K) = (C_in, C_out, K, K), PyTorch's layout for transposed convolutions. So:

    forward:   y  = col2im(x_rows @ w_mat.T)     (conv2d's input gradient, with x as "dy")
    backward:  dx = conv2d_forward(dy, w)        (conv2d's forward pass: the adjoint of the adjoint)
               dw = weight_from_matrix(im2col(dy).T @ x_rows)
               db = dy summed over n, h, w

Output size: H_out = (H - 1) * S - 2P + K + output_padding, with 0 <= output_padding < S.

This file uses your im2col.py and conv2d.py. The grader compares your forward pass with the
stamping loop of ``minigan.ops.reference``, checks the adjoint identity
<conv2d(u, w), x> == <u, conv_transpose2d(x, w)>, and your gradients with finite differences.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .conv2d import conv2d_forward, nchw_to_rows, weight_from_matrix, weight_matrix  # noqa: F401
from .im2col import col2im, im2col  # noqa: F401

Array = Any


class ConvTranspose2dCache(NamedTuple):
    """What ``conv_transpose2d_backward`` needs from the forward pass (change it as you like)."""

    x_rows: Array                 # nchw_to_rows(x): (N*H*W, C_in)
    w: Array                      # the weights, (C_in, C_out, K, K)
    stride: int
    padding: int
    has_bias: bool                # was there a bias (so backward returns db, not None)?


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """H_out = (H - 1) * S - 2P + K + output_padding. (Given: not an exercise.)"""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def conv_transpose2d_forward(x: Array, w: Array, b: Array | None = None, stride: int = 1,
                             padding: int = 0, output_padding: int = 0,
                             ) -> tuple[Array, ConvTranspose2dCache]:
    """Forward pass of a 2-D transposed convolution.

    x: (N, C_in, H, W), w: (C_in, C_out, K, K), b: (C_out,) or None
    y: (N, C_out, H_out, W_out), H_out = (H - 1) * S - 2P + K + output_padding, W_out likewise
    y = the gradient a conv2d with weights w would send back to its input if x were the
    gradient at its output, plus b.
    """
    # Hint: picture the conv2d that maps an image of y's shape to x's shape with the same
    # weight array; this forward pass is that convolution's input gradient, with x playing
    # the gradient at its output. Then the bias, per output channel.
    raise NotImplementedError("conv_transpose2d_forward: write me")


def conv_transpose2d_backward(dy: Array, cache: ConvTranspose2dCache,
                              need_weight_grad: bool = True, need_input_grad: bool = True,
                              ) -> tuple[Array | None, Array | None, Array | None]:
    """Backward pass of a 2-D transposed convolution.

    dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W), dw: (C_in, C_out, K, K),
    db: (C_out,) or None
        dx = conv2d_forward(dy, w)                       (a plain convolution of dy, no bias)
        dw = im2col(dy).T @ x_rows                       (reshaped to (C_in, C_out, K, K))
        db = sum of dy over n, h, w
    db is None when the forward pass had no bias; dw and db are both None when
    ``need_weight_grad`` is False, and dx is None when ``need_input_grad`` is False.
    """
    # Hint: in conv2d's terms, dy plays the input and x the gradient at the output.
    raise NotImplementedError("conv_transpose2d_backward: write me")
