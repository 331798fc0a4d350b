"""2-D transposed convolution ("deconvolution", as in PyTorch), forward and backward.

Transposed convolution is the adjoint of convolution. Every input pixel stamps a copy of the
kernel, scaled by its value, onto the output, S pixels apart; overlapping stamps add up:

    y_full[n, o, S*h + i, S*w + j] += x[n, c, h, w] * w[c, o, i, j]     for all n, c, h, w, i, j
    y = y_full cropped by P on each side (plus ``output_padding`` extra rows/columns at the
        bottom/right) + b[o]

That is exactly what the *input gradient* of a convolution computes (each output pixel of the
convolution sends its gradient back to its window), with the weights read as (F, C, K, K) =
(C_in, C_out, K, K), PyTorch's layout for transposed convolutions. So this file reuses conv2d:

    forward:   y  = conv2d_input_grad(x)          = col2im(to_rows(x) @ w_mat.T)
    backward:  dx = conv2d_forward(dy, w)         = im2col(dy) @ w_mat
               dw = conv2d_weight_grad(im2col(dy), x_rows)
               db = dy summed over n, h, w

This is why a DCGAN generator built of transposed convolutions is "a discriminator run
backwards": its forward pass is a convolution's backward pass, and vice versa.

Output size: H_out = (H - 1) * S - 2P + K + output_padding, with 0 <= output_padding < S.
(A strided convolution maps S different input sizes to the same output size;
``output_padding`` picks which one the transposed convolution goes back to.) As for conv2d, the
kernel may be K_h x K_w and stride, padding and output_padding may each be an (h, w) pair; the
rule then holds per axis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module
from minigan.ops.conv2d import (
    check_conv_args,
    conv2d_forward,
    conv2d_input_grad,
    conv2d_weight_grad,
)
from minigan.ops.im2col import IntOrPair, im2col, pair
from minigan.ops.input_grad_fast import conv2d_input_grad_fast
from minigan.ops.layout import to_rows
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class ConvTranspose2dCache(NamedTuple):
    """What ``conv_transpose2d_backward`` needs from the forward pass."""

    x_rows: Array                 # to_rows(x): (N*H*W, C_in)
    w: Array                      # the weights, (C_in, C_out, KH, KW)
    stride: tuple[int, int]       # (S_h, S_w)
    padding: tuple[int, int]      # (P_h, P_w)
    has_bias: bool                # was there a bias (so backward returns db, not None)?


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """H_out = (H - 1) * S - 2P + K + output_padding: the size a conv2d would map back to H."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def conv_transpose2d_forward(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                             padding: IntOrPair = 0, output_padding: IntOrPair = 0,
                             ) -> tuple[Array, ConvTranspose2dCache]:
    """Forward pass of a 2-D transposed convolution.

    x: (N, C_in, H, W), w: (C_in, C_out, KH, KW), b: (C_out,) or None; stride, padding and
    output_padding: an int or an (h, w) pair
    y: (N, C_out, H_out, W_out), H_out = (H - 1) * S_h - 2P_h + KH + output_padding_h,
    W_out likewise
    y = conv2d_input_grad(x): the gradient a conv2d with weights w would send back to its input
    if x were the gradient at its output, plus b.
    """
    stride, padding, output_padding = pair(stride), pair(padding), pair(output_padding)
    check_conv_args("conv_transpose2d", x, w, b, stride, padding, output_padding)
    N, _, H, W = x.shape
    _, C_out, KH, KW = w.shape
    H_out = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    W_out = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    if min(H_out, W_out) < 1:
        raise ValueError(f"padding {padding} is too large: the output would be "
                         f"{H_out} x {W_out}")

    if fast_kernels_enabled():  # the bias added by the fast gradient's last copy: a pass fewer
        return conv_transpose2d_forward_fast(x, w, b, (N, C_out, H_out, W_out), stride, padding)
    x_rows = to_rows(x)                                   # (N*H*W, C_in), kept for dw
    # The adjoint at work: a conv2d from (N, C_out, H_out, W_out) to x's shape, run backwards.
    y = conv2d_input_grad(x, w, (N, C_out, H_out, W_out), stride, padding)
    if b is not None:
        y += b.reshape(1, C_out, 1, 1)                    # in place: no extra array
    return y, ConvTranspose2dCache(x_rows, w, stride, padding, b is not None)


def conv_transpose2d_forward_fast(x: Array, w: Array, b: Array | None,
                                  out_shape: tuple[int, ...], stride: tuple[int, int],
                                  padding: tuple[int, int]) -> tuple[Array, ConvTranspose2dCache]:
    """``conv_transpose2d_forward`` after its checks, with the fast input gradient
    (``input_grad_fast.py``) and the bias added by that gradient's own last copy or fill
    (``conv2d_input_grad_fast(..., bias=b)``) instead of a pass of its own: the same additions,
    one array operation and one pass over y fewer.
    out_shape: (N, C_out, H_out, W_out), worked out and checked by the plain function."""
    x_rows = to_rows(x)                                   # (N*H*W, C_in), kept for dw
    y = conv2d_input_grad_fast(x, w, out_shape, stride, padding, bias=b)
    return y, ConvTranspose2dCache(x_rows, w, stride, padding, b is not None)


def conv_transpose2d_backward(dy: Array, cache: ConvTranspose2dCache,
                              need_weight_grad: bool = True, need_input_grad: bool = True,
                              ) -> tuple[Array | None, Array | None, Array | None]:
    """Backward pass of a 2-D transposed convolution.

    dy: (N, C_out, H_out, W_out) -> dx: (N, C_in, H, W), dw: (C_in, C_out, KH, KW),
    db: (C_out,) or None
        dx = conv2d_forward(dy, w)                       (a plain convolution of dy, no bias)
        dw = im2col(dy).T @ x_rows                       (reshaped to (C_in, C_out, K, K))
        db = sum of dy over n, h, w
    db is None when the forward pass had no bias; dw and db are both None when
    ``need_weight_grad`` is False, and dx is None when ``need_input_grad`` is False.
    """
    xp = get_array_module(dy)
    # The adjoint the other way round: the input gradient of a transposed convolution is the
    # convolution of dy with the same weights. Its cache holds im2col(dy), reused for dw.
    if need_input_grad:
        dx, conv_cache = conv2d_forward(dy, cache.w, None, cache.stride, cache.padding)
        cols = conv_cache.cols
    else:
        dx, cols = None, im2col(dy, tuple(cache.w.shape[2:]), cache.stride, cache.padding)
    if not need_weight_grad:
        return dx, None, None
    # In conv2d terms, dy plays the input and x the gradient at the output.
    dw = conv2d_weight_grad(cols, cache.x_rows, cache.w.shape)
    db = xp.sum(dy, axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db

