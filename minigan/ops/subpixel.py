"""A transposed convolution without a scatter-add: S*S small convolutions, then a pixel shuffle.

This file holds the one arithmetic trick of the convolution kernels: the fast variant of
``conv2d_input_grad`` (``conv2d.py``), taken when ``minigan.ops.fast_kernels`` is on. The plain
version, that function's body, is

    dcols = dy_rows @ w_mat.T              (N*H_out*W_out, K*K*C): every window's contribution
    dx    = col2im(dcols)                  add each window back where it came from

It is slow for a reason that has nothing to do with arithmetic: windows overlap, so the adds
of col2im go through short strided runs of memory, pixel by pixel. Here the overlap is turned
into a matrix product instead.

Look at one input pixel h (in padded coordinates) of a stride-S convolution. It is covered by
the windows ho with h = S*ho + i for some kernel tap i < K. Write h = S*q + a with its *phase*
a = h mod S; then i = a + S*t and ho = q - t, for t = 0, 1, ..., T - 1 with T = ceil(K / S).
So every pixel of phase a receives the taps a, a + S, a + 2S, ... of the kernel, from the T
output pixels q, q - 1, ..., q - T + 1 above it. In 2-D, with phases (a, b) and taps (t, u):

    dx_pad[n, S*q + a, S*r + b, c] = sum_{t,u,f} dy[n, q - t, r - u, f] * w[f, c, a + S*t, b + S*u]

For a fixed phase (a, b) that is an ordinary stride-1 convolution of dy with a T x T kernel
(the taps of w that belong to that phase, flipped). All S*S phases read the same T x T windows
of dy, so they are one matrix product:

    cols   = im2col(dy, T, stride=1, padding=T - 1)     (N*Q*R, T*T*F),  Q = H_out + T - 1
    blocks = cols @ phase_weight_matrix(w, S)           (N*Q*R, S*S*C),  columns (a, b, c)

and the pixel shuffle puts block (q, r), phase (a, b) at pixel (S*q + a, S*r + b). No two
blocks share a pixel, so that is a plain copy. The arithmetic is the same as the plain version
(up to the T - 1 border blocks, and taps past K that are zero when S does not divide K).
This is also why a transposed convolution is called "sub-pixel convolution" in the literature.
With a K_h x K_w kernel and strides (S_h, S_w) every step holds per axis: T_h x T_w taps per
phase and S_h*S_w phases.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.ops.im2col import IntOrPair, im2col, output_shape, pair
from minigan.ops.layout import channels_last_view

Array = Any


def phase_weight_matrix(w: Array, stride: IntOrPair) -> Array:
    """The kernel split by phase: (F, C, KH, KW) -> (T_h*T_w*F, S_h*S_w*C), T = ceil(K / S).

    w_phase[(t', u', f), (a, b, c)] = w[f, c, a + S_h*(T_h-1-t'), b + S_w*(T_w-1-u')], or 0 where
    that tap is past the kernel. The reversal t' = T-1-t turns "output pixel q - t" into "window
    row t'" of a stride-1 window that starts T - 1 pixels above q, as im2col lays it out.
    """
    xp = get_array_module(w)
    F, C, KH, KW = w.shape
    SH, SW = pair(stride)
    TH, TW = -(-KH // SH), -(-KW // SW)                   # ceil(K / S) per axis
    w_taps = w
    if (KH, KW) != (SH * TH, SW * TW):   # S does not divide K: zero taps past K, so that it does
        w_taps = xp.zeros((F, C, SH * TH, SW * TW), dtype=w.dtype)
        w_taps[:, :, :KH, :KW] = w
    # tap i = S*t + a  ->  axes (t, a); then reverse t so that t' = T - 1 - t
    w_taps = w_taps.reshape(F, C, TH, SH, TW, SW)[:, :, ::-1, :, ::-1, :]   # (f, c, t', a, u', b)
    return xp.ascontiguousarray(w_taps.transpose(2, 4, 0, 3, 5, 1)).reshape(TH * TW * F,
                                                                            SH * SW * C)


def conv2d_input_grad_subpixel(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair,
                               padding: IntOrPair, bias: Array | None = None) -> Array:
    """The input gradient of a convolution, dx = col2im(to_rows(dy) @ w_mat.T), computed as
    S_h*S_w stride-1 convolutions (one matrix product) followed by a pixel shuffle.

    dy: (N, F, H_out, W_out), w: (F, C, KH, KW) -> dx: x_shape = (N, C, H, W), with channels-last
    memory (see ``channels_last_view``). ``bias`` (C,), if given, is added to every pixel (a
    transposed convolution's bias): by the shuffle's copy itself, when it covers the image.
    """
    xp = get_array_module(dy)
    check_dy_shape(dy, w, x_shape, stride, padding)
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    (SH, SW), (PH, PW) = pair(stride), pair(padding)
    H_out, W_out = dy.shape[2:]
    TH, TW = -(-KH // SH), -(-KW // SW)
    Q, R = H_out + TH - 1, W_out + TW - 1                 # blocks per column and per row

    cols = im2col(dy, (TH, TW), stride=1, padding=(TH - 1, TW - 1))   # (N*Q*R, TH*TW*F)
    blocks = xp.matmul(cols, phase_weight_matrix(w, (SH, SW)))  # (N*Q*R, SH*SW*C): (a, b, c)

    # Pixel shuffle: block (q, r), phase (a, b) -> padded pixel (S_h*q + a, S_w*r + b); one copy,
    # written into the (n, q, a, r, b, c) view of the padded image.
    dx_pad = xp.empty((N, Q * SH, R * SW, C), dtype=blocks.dtype)
    shuffled = blocks.reshape(N, Q, R, SH, SW, C).transpose(0, 1, 3, 2, 4, 5)
    h_kept, w_kept = min(H, Q * SH - PH), min(W, R * SW - PW)
    if bias is not None and (h_kept, w_kept) == (H, W):
        xp.add(shuffled, bias, out=dx_pad.reshape(N, Q, SH, R, SW, C))   # the same one copy
        bias = None
    else:
        dx_pad.reshape(N, Q, SH, R, SW, C)[...] = shuffled
    # Crop the padding. Pixels past the last window (when (H + 2P - K) % S > 0) get no gradient.
    if (h_kept, w_kept) == (H, W):
        # Every pixel is covered (as in a DCGAN): the crop is a view, not a second copy. Its
        # rows of W*C numbers are contiguous; the next element-wise kernel (an activation's
        # backward) reads it as fast as a contiguous array and writes a contiguous result.
        return dx_pad[:, PH:PH + H, PW:PW + W, :].transpose(0, 3, 1, 2)
    dx = xp.zeros((N, H, W, C), dtype=dy.dtype)
    dx[:, :h_kept, :w_kept, :] = dx_pad[:, PH:PH + h_kept, PW:PW + w_kept, :]
    if bias is not None:
        dx += bias
    return channels_last_view(dx.reshape(N * H * W, C), x_shape)


def check_dy_shape(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair,
                   padding: IntOrPair) -> None:
    """A clear error where dy is not the output shape of x_shape's convolution with w."""
    N, F = x_shape[0], w.shape[0]
    H_out, W_out = output_shape(x_shape, tuple(w.shape[2:]), stride, padding)
    if tuple(dy.shape) != (N, F, H_out, W_out):
        raise ValueError(f"dy has shape {tuple(dy.shape)}, but x of shape {tuple(x_shape)} with "
                         f"kernel {tuple(w.shape[2:])}, stride {stride}, padding {padding} "
                         f"gives {(N, F, H_out, W_out)}")
