"""im2col / col2im: turn a convolution into one matrix product.

A convolution slides a K x K window over the (zero-padded) input and, at every window position,
takes the dot product of the window with each filter. ``im2col`` copies every window into one row
of a matrix, so that all those dot products become a single matrix product::

    y_rows = im2col(x) @ w_mat            # (N*H_out*W_out, K*K*C) @ (K*K*C, F)

``col2im`` is its adjoint (its transpose, as a linear map): it adds every row back into the
window it came from, so pixels covered by several windows receive the sum of their entries.
That is exactly what the backward pass of a convolution needs, and what a transposed convolution
computes.

The layout of ``cols`` (the one convention the conv kernels share)::

    cols: (N*H_out*W_out, K*K*C)
    cols[(n, ho, wo), (i, j, c)] = x_padded[n, c, S*ho + i, S*wo + j]

One row per output pixel (n, ho, wo), in row-major order; one column per kernel offset (i, j)
and input channel c, with c varying fastest. Channels come last ("channels-last", like NHWC)
because then a window row (j, c) is one contiguous run of memory, which makes both the copy into
``cols`` and the matrix product fast. The public arrays stay NCHW; ``to_rows`` /
``channels_last_view`` (in ``layout.py``) convert an NCHW array to and from the matching
channels-last rows (N*H*W, C).

Output size: H_out = (H + 2P - K) // S + 1 (and the same for W). Kernel size, stride and padding
may each be one int or an (h, w) pair (a K_h x K_w kernel: 1 x 7 and 7 x 1 in Inception-v3); the
rule then holds per axis, with the H numbers for H and the W numbers for W.

``im2col`` and ``col2im`` are written as Chainer writes them: a loop over the kernel offsets
(i, j), one strided slice copy (or add) each. Their fast variants, ``im2col_fast`` and
``col2im_fast`` at the end of this file, compute the same numbers through window *views* with
fewer, larger memory operations; the switch ``minigan.ops.fast_kernels`` picks (``switch.py``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from minigan.backend import get_array_module
from minigan.ops.switch import fast_kernels_enabled

Array = Any
IntOrPair = int | tuple[int, int]


def pair(value: IntOrPair) -> tuple[int, int]:
    """An int or an (h, w) pair as an (h, w) pair: 3 -> (3, 3), (1, 7) -> (1, 7).

    Kernel sizes, strides and paddings may differ along H and W, as in ``torch.nn.Conv2d``
    (Inception-v3 uses 1 x 7 and 7 x 1 kernels); a single int means the same on both axes.
    """
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"expected an int or an (h, w) pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """H_out = (H + 2P - K) // S + 1: how many K-wide windows, S apart, fit in the padded input.

    One axis at a time: call it with (H, K_h, S_h, P_h) for the rows, (W, K_w, S_w, P_w) for the
    columns.
    """
    return (size + 2 * padding - kernel_size) // stride + 1


def output_shape(x_shape: tuple[int, ...], kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0) -> tuple[int, int]:
    """(H_out, W_out) of a convolution of an (N, C, H, W) input, each by ``conv_output_size``."""
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(padding)
    return (conv_output_size(x_shape[2], KH, SH, PH), conv_output_size(x_shape[3], KW, SW, PW))


def _check_geometry(shape: tuple[int, ...], kernel_size: IntOrPair, stride: IntOrPair,
                    padding: IntOrPair) -> None:
    if len(shape) != 4:
        raise ValueError(f"expected an NCHW shape (N, C, H, W), got {tuple(shape)}")
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(padding)
    if min(KH, KW) < 1 or min(SH, SW) < 1 or min(PH, PW) < 0:
        raise ValueError(f"need kernel_size >= 1, stride >= 1, padding >= 0; got "
                         f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
    if shape[2] + 2 * PH < KH or shape[3] + 2 * PW < KW:
        raise ValueError(f"input of size {tuple(shape[2:])} with padding {padding} is smaller "
                         f"than the kernel ({kernel_size})")


def im2col(x: Array, kernel_size: IntOrPair, stride: IntOrPair = 1,
           padding: IntOrPair = 0) -> Array:
    """Copy every KH x KW window of the padded input into one row of a matrix.

    x:    (N, C, H, W); kernel_size, stride, padding: an int or an (h, w) pair
    cols: (N*H_out*W_out, KH*KW*C),
          cols[(n, ho, wo), (i, j, c)] = x_pad[n, c, S_h*ho + i, S_w*wo + j]
    with H_out = (H + 2P_h - KH) // S_h + 1 and W_out = (W + 2P_w - KW) // S_w + 1.
    """
    if fast_kernels_enabled():  # same numbers, one copy through a window view: see im2col_fast
        return im2col_fast(x, kernel_size, stride, padding)
    xp = get_array_module(x)
    _check_geometry(x.shape, kernel_size, stride, padding)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(padding)
    H_out, W_out = output_shape(x.shape, kernel_size, stride, padding)
    x_pad = pad_channels_last(x, PH, PW)                  # (N, H + 2P_h, W + 2P_w, C)

    # Chainer's loop: one slice per kernel offset (i, j). The offset (i, j) of window (ho, wo)
    # is pixel (S_h*ho + i, S_w*wo + j), so for all windows at once it is the strided slice
    # starting at (i, j) with steps (S_h, S_w): H_out rows and W_out columns of it.
    window = xp.empty((N, H_out, W_out, KH, KW, C), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            window[:, :, :, i, j, :] = x_pad[:, i:i + SH * H_out:SH, j:j + SW * W_out:SW, :]
    return window.reshape(N * H_out * W_out, KH * KW * C)


def col2im(cols: Array, x_shape: tuple[int, ...], kernel_size: IntOrPair, stride: IntOrPair = 1,
           padding: IntOrPair = 0) -> Array:
    """The adjoint of ``im2col``: add every row back into the window it was copied from.

    cols:    (N*H_out*W_out, KH*KW*C), laid out as ``im2col`` makes it
    x_shape: (N, C, H, W), the shape of the image the windows came from
    returns: x (N, C, H, W), x[n, c, h, w] = sum of cols[(n, ho, wo), (i, j, c)]
             over all (ho, wo, i, j) with S_h*ho + i - P_h == h and S_w*wo + j - P_w == w.
    """
    if fast_kernels_enabled():  # same sums, ceil(K/S)**2 adds instead of K*K: see col2im_fast
        return col2im_fast(cols, x_shape, kernel_size, stride, padding)
    window, x_pad = _windows_and_padded_zeros(cols, x_shape, kernel_size, stride, padding)
    (KH, KW), (SH, SW) = pair(kernel_size), pair(stride)
    H_out, W_out = window.shape[1:3]
    # im2col's loop run backwards: for one kernel offset (i, j) the windows touch pixels
    # (S_h*ho + i, S_w*wo + j), all different, so the slice add below never writes a pixel
    # twice. Windows overlap when K > S: pixels then receive adds from several offsets.
    for i in range(KH):
        for j in range(KW):
            x_pad[:, i:i + SH * H_out:SH, j:j + SW * W_out:SW, :] += window[:, :, :, i, j, :]
    return _crop_to_nchw(x_pad, x_shape, padding)


def pad_channels_last(x: Array, pad_h: int, pad_w: int) -> Array:
    """(N, C, H, W) -> (N, H + 2 pad_h, W + 2 pad_w, C): zero-padded, channels last, one copy."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    x_pad = xp.zeros((N, H + 2 * pad_h, W + 2 * pad_w, C), dtype=x.dtype)
    x_pad[:, pad_h:pad_h + H, pad_w:pad_w + W, :] = x.transpose(0, 2, 3, 1)
    return x_pad


def _windows_and_padded_zeros(cols: Array, x_shape: tuple[int, ...], kernel_size: IntOrPair,
                              stride: IntOrPair, padding: IntOrPair) -> tuple[Array, Array]:
    """col2im's start: cols as windows (N, H_out, W_out, KH, KW, C), after checking its shape,
    and the zero image (N, H + 2P_h, W + 2P_w, C), channels last, that they are added into."""
    xp = get_array_module(cols)
    _check_geometry(x_shape, kernel_size, stride, padding)
    N, C, H, W = x_shape
    (KH, KW), (PH, PW) = pair(kernel_size), pair(padding)
    H_out, W_out = output_shape(x_shape, kernel_size, stride, padding)
    if cols.shape != (N * H_out * W_out, KH * KW * C):
        raise ValueError(f"cols has shape {tuple(cols.shape)}, but an image of shape "
                         f"{tuple(x_shape)} with kernel_size={kernel_size}, stride={stride}, "
                         f"padding={padding} gives {(N * H_out * W_out, KH * KW * C)}")
    x_pad = xp.zeros((N, H + 2 * PH, W + 2 * PW, C), dtype=cols.dtype)
    return cols.reshape(N, H_out, W_out, KH, KW, C), x_pad


def _crop_to_nchw(x_pad: Array, x_shape: tuple[int, ...], padding: IntOrPair) -> Array:
    """col2im's end: drop the padding and go back to NCHW (one copy)."""
    xp = get_array_module(x_pad)
    (PH, PW), (H, W) = pair(padding), x_shape[2:]
    return xp.ascontiguousarray(x_pad[:, PH:PH + H, PW:PW + W, :].transpose(0, 3, 1, 2))


# ---------------------------------------------------------------- the fast variants
# Same numbers as the loops above, computed with fewer, larger memory operations. The plain
# functions reach them through their first line when ``minigan.ops.fast_kernels`` is on.

def im2col_fast(x: Array, kernel_size: IntOrPair, stride: IntOrPair = 1,
                padding: IntOrPair = 0) -> Array:
    """``im2col`` as one copy: every window is first a *view* of the padded input.

    What it buys: the loop makes KH*KW strided copies of runs of C numbers; here one copy
    reads whole (j, c) rows of each window, which are contiguous in memory (a window row is
    KW*C neighbouring numbers of the channels-last image). How: ``_window_view`` below.
    """
    xp = get_array_module(x)
    window = window_view(x, kernel_size, stride, padding)   # (N, H_out, W_out, KH, KW, C)
    N, H_out, W_out, KH, KW, C = window.shape
    if window.flags.c_contiguous:   # the view is all of x_pad (K = S, no overlap): copy it, so
        window = window.copy()      # that cols never shares memory with x or the reused buffer
    return xp.ascontiguousarray(window).reshape(N * H_out * W_out, KH * KW * C)


def window_view(x: Array, kernel_size: IntOrPair, stride: IntOrPair = 1,
                padding: IntOrPair = 0) -> Array:
    """The rows of ``im2col``, not yet copied: a view (N, H_out, W_out, KH, KW, C) of the padded,
    channels-last image, view[n, ho, wo, i, j, c] = x_pad[n, c, S_h*ho + i, S_w*wo + j].

    x_pad is a zero-bordered buffer reused per shape and thread (or x itself, without padding):
    copy what you need from the view before the next call with the same shape.
    """
    _check_geometry(x.shape, kernel_size, stride, padding)
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(padding)
    H_out, W_out = output_shape(x.shape, kernel_size, stride, padding)
    x_pad = _pad_channels_last_fast(x, PH, PW)
    return _window_view(x_pad, KH, KW, SH, SW, H_out, W_out)


def _pad_channels_last_fast(x: Array, pad_h: int, pad_w: int) -> Array:
    """``pad_channels_last`` in at most one array operation instead of two.

    x: (N, C, H, W) -> (N, H + 2 pad_h, W + 2 pad_w, C). Without padding it is a view of x
    (im2col_fast's window copy then reads x directly). With padding, the image is copied into
    a zero-bordered buffer that is made once per shape and reused: only its inside is ever
    written, so its border stays zero, and ``im2col_fast`` copies out of it before returning.
    """
    if pad_h == 0 and pad_w == 0:
        return x.transpose(0, 2, 3, 1)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    x_pad = _zero_bordered_buffer(xp, (N, H + 2 * pad_h, W + 2 * pad_w, C), x.dtype, pad_h, pad_w,
                                  threading.get_ident())
    x_pad[:, pad_h:pad_h + H, pad_w:pad_w + W, :] = x.transpose(0, 2, 3, 1)
    return x_pad


@functools.lru_cache(maxsize=64)
def _zero_bordered_buffer(xp: Any, shape: tuple[int, ...], dtype: Any, pad_h: int,
                          pad_w: int, thread: int) -> Array:
    """zeros(shape), one per array module, shape, dtype, padding and thread (the padding is part
    of the key: the same padded shape with another padding would find inside pixels in its
    border; the thread too: two threads of a split step write their images at once)."""
    return xp.zeros(shape, dtype=dtype)


def col2im_fast(cols: Array, x_shape: tuple[int, ...], kernel_size: IntOrPair,
                stride: IntOrPair = 1, padding: IntOrPair = 0) -> Array:
    """``col2im`` with the kernel offsets added in blocks of up to S_h x S_w at a time.

    What it buys: ceil(KH/S_h) * ceil(KW/S_w) adds instead of KH*KW, each over runs of S_w*C
    contiguous numbers instead of C (it matters for C = 3, the RGB layers). Why it is right:
    within a block of offsets i0 <= i < i0 + S_h the rows S_h*ho + i are all different (S_h*ho + i
    tells both ho and i), and likewise the columns, so a block never writes a pixel twice and
    can be added at once through a window view of x_pad like im2col_fast's. No scatter-add,
    the same code on NumPy and CuPy.
    """
    window, x_pad = _windows_and_padded_zeros(cols, x_shape, kernel_size, stride, padding)
    add_windows_in_blocks(x_pad, window, stride)
    return _crop_to_nchw(x_pad, x_shape, padding)


def add_windows_in_blocks(x_pad: Array, window: Array, stride: IntOrPair) -> None:
    """``col2im_fast``'s adds: x_pad[n, S_h*ho + i, S_w*wo + j, c] += window[n, ho, wo, i, j, c]
    for every window and offset, S_h x S_w offsets at a time (in place).

    x_pad: (N, H_pad, W_pad, C), channels last; window: (N, H_out, W_out, KH, KW, C).
    """
    (SH, SW) = pair(stride)
    H_out, W_out, KH, KW = window.shape[1:5]
    for i0 in range(0, KH, SH):
        for j0 in range(0, KW, SW):
            k_i, k_j = min(SH, KH - i0), min(SW, KW - j0)
            block = _window_view(x_pad[:, i0:, j0:, :], k_i, k_j, SH, SW, H_out, W_out)
            block += window[:, :, :, i0:i0 + k_i, j0:j0 + k_j, :]


def _window_view(x_pad: Array, k_h: int, k_w: int, s_h: int, s_w: int, H_out: int,
                 W_out: int) -> Array:
    """The k_h x k_w windows of a channels-last image, as a view that copies nothing.

    x_pad: (N, H, W, C) -> view: (N, H_out, W_out, k_h, k_w, C),
    view[n, ho, wo, i, j, c] = x_pad[n, s_h*ho + i, s_w*wo + j, c].
    Moving ho by one moves s_h rows and moving i moves one row, so both step by x_pad's row
    stride (times s_h for ho); the same for wo, j and the column stride. Windows may overlap
    (share memory): read through such a view freely, write only where they do not.
    """
    xp = get_array_module(x_pad)
    N, C = x_pad.shape[0], x_pad.shape[3]
    st_n, st_h, st_w, st_c = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(N, H_out, W_out, k_h, k_w, C),
        strides=(st_n, s_h * st_h, s_w * st_w, st_h, st_w, st_c))
