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

Output size: H_out = (H + 2P - K) // S + 1 (and the same for W).
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module

Array = Any


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """H_out = (H + 2P - K) // S + 1: how many K-wide windows, S apart, fit in the padded input."""
    return (size + 2 * padding - kernel_size) // stride + 1


def _check_geometry(shape: tuple[int, ...], kernel_size: int, stride: int, padding: int) -> None:
    if len(shape) != 4:
        raise ValueError(f"expected an NCHW shape (N, C, H, W), got {tuple(shape)}")
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need kernel_size >= 1, stride >= 1, padding >= 0; got "
                         f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
    if min(shape[2:]) + 2 * padding < kernel_size:
        raise ValueError(f"input of size {tuple(shape[2:])} with padding {padding} is smaller "
                         f"than the kernel ({kernel_size})")


def im2col(x: Array, kernel_size: int, stride: int = 1, padding: int = 0) -> Array:
    """Copy every K x K window of the padded input into one row of a matrix.

    x:    (N, C, H, W)
    cols: (N*H_out*W_out, K*K*C), cols[(n, ho, wo), (i, j, c)] = x_pad[n, c, S*ho + i, S*wo + j]
    with H_out = (H + 2P - K) // S + 1.
    """
    xp = get_array_module(x)
    _check_geometry(x.shape, kernel_size, stride, padding)
    N, C, H, W = x.shape
    K, S, P = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)

    # One pass that both zero-pads and moves channels last: x_pad is (N, H + 2P, W + 2P, C).
    x_pad = xp.zeros((N, H + 2 * P, W + 2 * P, C), dtype=x.dtype)
    x_pad[:, P:P + H, P:P + W, :] = x.transpose(0, 2, 3, 1)

    # Every window at once, as a view of x_pad (nothing is copied yet), then one copy into a
    # contiguous matrix. It holds the same numbers as this plain loop over kernel offsets:
    #     for i in range(K):
    #         for j in range(K):
    #             window[:, :, :, i, j, :] = x_pad[:, i:i + S*H_out:S, j:j + S*W_out:S, :]
    # but is built in one pass, with each (j, c) run contiguous in memory.
    window = _window_view(x_pad, K, K, S, H_out, W_out)   # (N, H_out, W_out, K, K, C)
    return xp.ascontiguousarray(window).reshape(N * H_out * W_out, K * K * C)


def col2im(cols: Array, x_shape: tuple[int, ...], kernel_size: int, stride: int = 1,
           padding: int = 0) -> Array:
    """The adjoint of ``im2col``: add every row back into the window it was copied from.

    cols:    (N*H_out*W_out, K*K*C), laid out as ``im2col`` makes it
    x_shape: (N, C, H, W), the shape of the image the windows came from
    returns: x (N, C, H, W), x[n, c, h, w] = sum of cols[(n, ho, wo), (i, j, c)]
             over all (ho, wo, i, j) with S*ho + i - P == h and S*wo + j - P == w.

    Windows overlap when K > S, so several kernel offsets write to the same pixel and one
    vectorized add through the full window view would lose all but one of the writes. We add in
    groups instead, with no scatter-add, the same way on NumPy and CuPy (see the comment below).
    """
    xp = get_array_module(cols)
    _check_geometry(x_shape, kernel_size, stride, padding)
    N, C, H, W = x_shape
    K, S, P = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)
    if cols.shape != (N * H_out * W_out, K * K * C):
        raise ValueError(f"cols has shape {tuple(cols.shape)}, but an image of shape "
                         f"{tuple(x_shape)} with K={K}, S={S}, P={P} gives "
                         f"{(N * H_out * W_out, K * K * C)}")
    window = cols.reshape(N, H_out, W_out, K, K, C)

    x_pad = xp.zeros((N, H + 2 * P, W + 2 * P, C), dtype=cols.dtype)
    # The plain version adds one kernel offset at a time (each add is overlap-free):
    #     for i in range(K):
    #         for j in range(K):
    #             x_pad[:, i:i + S*H_out:S, j:j + S*W_out:S, :] += window[:, :, :, i, j, :]
    # Faster, same sums: within a block of offsets i0 <= i < i0 + S, the rows S*ho + i are all
    # different (S*ho + i tells both ho and i), and likewise the columns, so a block of up to
    # S x S offsets never writes a pixel twice and can be added at once through a window view
    # of x_pad like im2col's. That is ceil(K/S)**2 adds instead of K*K, with runs
    # of S*C contiguous numbers instead of C (it matters for C = 3, the RGB layers).
    for i0 in range(0, K, S):
        for j0 in range(0, K, S):
            k_i, k_j = min(S, K - i0), min(S, K - j0)
            block = _window_view(x_pad[:, i0:, j0:, :], k_i, k_j, S, H_out, W_out)
            block += window[:, :, :, i0:i0 + k_i, j0:j0 + k_j, :]
    # Drop the padding and go back to NCHW (one copy).
    return xp.ascontiguousarray(x_pad[:, P:P + H, P:P + W, :].transpose(0, 3, 1, 2))


def _window_view(x_pad: Array, k_h: int, k_w: int, stride: int, H_out: int, W_out: int) -> Array:
    """The k_h x k_w windows of a channels-last image, as a view that copies nothing.

    x_pad: (N, H, W, C) -> view: (N, H_out, W_out, k_h, k_w, C),
    view[n, ho, wo, i, j, c] = x_pad[n, S*ho + i, S*wo + j, c].
    Moving ho by one moves S rows and moving i moves one row, so both step by x_pad's row
    stride (times S for ho); the same for wo, j and the column stride. Windows may overlap
    (share memory): read through such a view freely, write only where they do not.
    """
    xp = get_array_module(x_pad)
    N, C = x_pad.shape[0], x_pad.shape[3]
    S = stride
    s_n, s_h, s_w, s_c = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(N, H_out, W_out, k_h, k_w, C),
        strides=(s_n, S * s_h, S * s_w, s_h, s_w, s_c))
