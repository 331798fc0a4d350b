"""Pooling: max pooling, average pooling and global average pooling, forward and backward.

A pooling layer slides a K x K window over each channel on its own (no weights, no mixing of
channels) and keeps one number per window position: the largest (max pooling) or the mean
(average pooling). Output size, as for a convolution: H_out = (H + 2P - K) // S + 1.

The plain way to compute every window at once is a loop over the K*K *offsets* (i, j) of the
window, not over the output pixels: for a fixed (i, j), the entries x_pad[S*ho + i, S*wo + j] of
all windows form one strided slice, ``x_pad[:, :, i:i + S*H_out:S, j:j + S*W_out:S]``, of shape
(N, C, H_out, W_out). Max pooling keeps a running maximum over the K*K slices; average pooling
adds them up and divides. The backward passes walk the same slices and send the gradient back:

* max pooling: all of dy[ho, wo] goes to the one input that was the largest in its window
  (the first one in row-major window order on ties, as in PyTorch); the others get zero;
* average pooling: dy[ho, wo] / count is shared equally by the entries of the window.

Padding. Max pooling pads with -inf, so a padded entry is never the maximum. Average pooling pads
with zeros, and ``count_include_pad`` says what it divides by: K*K (True, PyTorch's default), or
only the real, unpadded entries of the window (False). The Inception network of FID uses False,
because TensorFlow's average pooling does so; a corner pixel's 3x3 window then averages 4 pixels,
not 4 pixels and 5 zeros.

Global average pooling is average pooling with one window the size of the whole image:
(N, C, H, W) -> (N, C), the mean of each channel. Inception-v3 ends with it (its 2048 "pool3"
features are FID's input).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module
from minigan.ops.im2col import conv_output_size
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class MaxPool2dCache(NamedTuple):
    """What ``max_pool2d_backward`` needs."""

    argmax: Array                 # (N, C, H_out, W_out) ints: window offset i*K + j of the max
    x_shape: tuple[int, ...]      # (N, C, H, W)
    kernel_size: int
    stride: int
    padding: int


class AvgPool2dCache(NamedTuple):
    """What ``avg_pool2d_backward`` needs."""

    count: Array                  # (1, 1, H_out, W_out): what each window's sum was divided by
    x_shape: tuple[int, ...]      # (N, C, H, W)
    kernel_size: int
    stride: int
    padding: int


class GlobalAvgPoolCache(NamedTuple):
    x_shape: tuple[int, ...]      # (N, C, H, W)


def pool_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """H_out = (H + 2P - K) // S + 1, after checking that the window and padding make sense."""
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(f"pooling needs kernel_size >= 1, stride >= 1 and padding >= 0, got "
                         f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
    if 2 * padding > kernel_size:
        # PyTorch's rule: otherwise a window could hold nothing but padding.
        raise ValueError(f"padding ({padding}) must be at most half the kernel size "
                         f"({kernel_size})")
    if size + 2 * padding < kernel_size:
        raise ValueError(f"input of size {size} with padding {padding} is smaller than the "
                         f"pooling window ({kernel_size})")
    return conv_output_size(size, kernel_size, stride, padding)


def _padded(x: Array, padding: int, fill: float) -> Array:
    """x (N, C, H, W) with ``padding`` rows/columns of ``fill`` on every side."""
    xp = get_array_module(x)
    if padding == 0:
        return x
    N, C, H, W = x.shape
    P = padding
    x_pad = xp.full((N, C, H + 2 * P, W + 2 * P), fill, dtype=x.dtype)
    x_pad[:, :, P:P + H, P:P + W] = x
    return x_pad


def _window_slice(i: int, j: int, stride: int, H_out: int, W_out: int) -> tuple[slice, ...]:
    """The entries at offset (i, j) of every window: x_pad[:, :, S*ho + i, S*wo + j]."""
    S = stride
    return (slice(None), slice(None), slice(i, i + S * H_out, S), slice(j, j + S * W_out, S))


def _check_nchw(x: Array, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} expects x of shape (N, C, H, W), got {tuple(x.shape)}")


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------



def _pool_geometry(x: Array, kernel_size: int, stride: int | None, padding: int,
                   name: str) -> tuple[int, int, int, int, int]:
    """(K, S, P, H_out, W_out) of a pooling over x (N, C, H, W), checked; ``stride`` defaults
    to ``kernel_size``. H_out = (H + 2P - K) // S + 1."""
    _check_nchw(x, name)
    K, S, P = kernel_size, stride or kernel_size, padding
    H, W = x.shape[2:]
    return K, S, P, pool_output_size(H, K, S, P), pool_output_size(W, K, S, P)

def max_pool2d_forward(x: Array, kernel_size: int, stride: int | None = None, padding: int = 0
                       ) -> tuple[Array, MaxPool2dCache]:
    """y[n, c, ho, wo] = max_{i, j < K} x_pad[n, c, S*ho + i, S*wo + j], x padded with -inf.

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2P - K) // S + 1.
    ``stride`` defaults to ``kernel_size`` (windows side by side), as in PyTorch.
    """
    if fast_kernels_enabled():  # a running maximum in place, no argmax: max_pool2d_forward_fast
        return max_pool2d_forward_fast(x, kernel_size, stride, padding)
    xp = get_array_module(x)
    K, S, P, H_out, W_out = _pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
    N, C, H, W = x.shape
    x_pad = _padded(x, P, -xp.inf)

    y = x_pad[_window_slice(0, 0, S, H_out, W_out)].copy()
    argmax = xp.zeros((N, C, H_out, W_out), dtype=xp.int64)
    for i in range(K):
        for j in range(K):
            candidate = x_pad[_window_slice(i, j, S, H_out, W_out)]
            # Strictly larger: on a tie the earlier offset keeps it, as PyTorch's loop does.
            better = candidate > y
            y = xp.where(better, candidate, y)
            argmax = xp.where(better, i * K + j, argmax)
    return y, MaxPool2dCache(argmax, tuple(x.shape), K, S, P)


def max_pool2d_backward(dy: Array, cache: MaxPool2dCache) -> Array:
    """dx: (N, C, H, W). Each dy[n, c, ho, wo] goes, whole, to its window's maximum.

    dx_pad[n, c, S*ho + i, S*wo + j] += dy[n, c, ho, wo] where (i, j) was the argmax; windows
    overlap when S < K, so one input may collect gradient from several windows.
    """
    if fast_kernels_enabled():  # the maxima found again from the kept input, no argmax array
        return max_pool2d_backward_fast(dy, cache)
    xp = get_array_module(dy)
    N, C, H, W = cache.x_shape
    K, S, P = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dy.shape[2:]
    dx_pad = xp.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)
    for i in range(K):
        for j in range(K):
            chosen = cache.argmax == i * K + j                    # (N, C, H_out, W_out)
            dx_pad[_window_slice(i, j, S, H_out, W_out)] += dy * chosen
    return dx_pad[:, :, P:P + H, P:P + W]


# The fast variants. The plain forward keeps a running argmax beside the running maximum: per
# window offset a comparison and two ``where`` passes, one of them over 8-byte integers, and an
# NCHW output whatever the input's memory order. Inception-v3 (FID) spends a quarter of its CPU
# time there, and never runs a backward pass. The fast forward keeps only the maximum, one
# in-place pass per offset, in the input's memory order (a channels-last input, as convolutions
# make, stays channels-last for the next convolution); its backward pass finds each window's
# first maximum again from the kept input: the same entry the plain argmax names.

class MaxPool2dFastCache(NamedTuple):
    """What ``max_pool2d_backward_fast`` needs: the padded input and the maxima, no argmax."""

    x_pad: Array                  # x padded with -inf, (N, C, H + 2P, W + 2P) (x itself if P = 0)
    y: Array                      # the maxima, (N, C, H_out, W_out)
    x_shape: tuple[int, ...]      # (N, C, H, W)
    kernel_size: int
    stride: int
    padding: int

    @property
    def argmax(self) -> Array:
        """The plain cache's field, worked out when asked (the plain backward reads it, if the
        switch was turned off between a fast forward and its backward)."""
        xp = get_array_module(self.y)
        K, S, (H_out, W_out) = self.kernel_size, self.stride, self.y.shape[2:]
        argmax = xp.full(self.y.shape, -1, dtype=xp.int64)
        for i in range(K):
            for j in range(K):
                first = (self.x_pad[_window_slice(i, j, S, H_out, W_out)] == self.y) & (argmax < 0)
                argmax = xp.where(first, i * K + j, argmax)
        return xp.maximum(argmax, 0)   # a NaN maximum equals nothing: offset 0, as plain


def max_pool2d_forward_fast(x: Array, kernel_size: int, stride: int | None = None,
                            padding: int = 0) -> tuple[Array, MaxPool2dFastCache]:
    """``max_pool2d_forward`` as a running maximum written in place, one pass per window offset,
    with no argmax; y keeps x's memory order. The same maxima (for inputs without NaN: the plain
    loop skips a NaN after the first offset, ``maximum`` keeps it, as PyTorch does; and the
    backward pass then sends a NaN window's gradient nowhere)."""
    xp = get_array_module(x)
    K, S, P, H_out, W_out = _pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
    N, C, H, W = x.shape
    x_pad = _padded_like(x, P, -xp.inf)

    y = x_pad[_window_slice(0, 0, S, H_out, W_out)].copy(order="K")
    for i in range(K):
        for j in range(K):
            if i or j:
                xp.maximum(y, x_pad[_window_slice(i, j, S, H_out, W_out)], out=y)
    return y, MaxPool2dFastCache(x_pad, y, tuple(x.shape), K, S, P)


def max_pool2d_backward_fast(dy: Array, cache: MaxPool2dCache | MaxPool2dFastCache) -> Array:
    """``max_pool2d_backward`` from the fast cache: at each offset, in the plain loop's order, the
    entries equal to their window's maximum that no earlier offset has claimed get dy."""
    if not isinstance(cache, MaxPool2dFastCache):   # a plain forward's cache: its argmax
        return _max_pool_backward_from_argmax(dy, cache)
    xp = get_array_module(dy)
    N, C, H, W = cache.x_shape
    K, S, P = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dy.shape[2:]
    dx_pad = xp.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)
    claimed = None   # windows whose maximum an earlier offset already took
    for i in range(K):
        for j in range(K):
            chosen = cache.x_pad[_window_slice(i, j, S, H_out, W_out)] == cache.y
            if claimed is None:
                claimed = chosen
            else:
                chosen &= ~claimed
                claimed |= chosen
            dx_pad[_window_slice(i, j, S, H_out, W_out)] += dy * chosen
    return dx_pad[:, :, P:P + H, P:P + W]


def _max_pool_backward_from_argmax(dy: Array, cache: MaxPool2dCache | MaxPool2dFastCache,
                                   ) -> Array:
    xp = get_array_module(dy)
    N, C, H, W = cache.x_shape
    K, S, P = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dy.shape[2:]
    argmax = cache.argmax
    dx_pad = xp.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)
    for i in range(K):
        for j in range(K):
            dx_pad[_window_slice(i, j, S, H_out, W_out)] += dy * (argmax == i * K + j)
    return dx_pad[:, :, P:P + H, P:P + W]


def _padded_like(x: Array, padding: int, fill: float) -> Array:
    """``_padded``, in x's memory order: a channels-last x gives a channels-last padded copy."""
    if padding == 0:
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    P = padding
    channels_last = x.transpose(0, 2, 3, 1).flags.c_contiguous and not x.flags.c_contiguous
    if not channels_last:
        return _padded(x, padding, fill)
    x_pad = xp.full((N, H + 2 * P, W + 2 * P, C), fill, dtype=x.dtype)
    x_pad[:, P:P + H, P:P + W, :] = x.transpose(0, 2, 3, 1)
    return x_pad.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------


def avg_pool2d_forward(x: Array, kernel_size: int, stride: int | None = None, padding: int = 0,
                       count_include_pad: bool = True) -> tuple[Array, AvgPool2dCache]:
    """y[n, c, ho, wo] = sum_{i, j < K} x_pad[n, c, S*ho + i, S*wo + j] / count[ho, wo].

    x: (N, C, H, W) -> y: (N, C, H_out, W_out), H_out = (H + 2P - K) // S + 1; x is zero-padded.
    count = K*K with ``count_include_pad=True`` (PyTorch's default); with False, the number of
    real (unpadded) pixels in the window, which is smaller at the borders.
    """
    if fast_kernels_enabled():  # in x's memory order, sums in place: avg_pool2d_forward_fast
        return avg_pool2d_forward_fast(x, kernel_size, stride, padding, count_include_pad)
    xp = get_array_module(x)
    K, S, P, H_out, W_out = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    N, C, H, W = x.shape
    x_pad = _padded(x, P, 0)

    total = xp.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(K):
        for j in range(K):
            total += x_pad[_window_slice(i, j, S, H_out, W_out)]
    count = window_counts(xp, H, W, K, S, P, count_include_pad, x.dtype)
    return total / count, AvgPool2dCache(count, tuple(x.shape), K, S, P)


def avg_pool2d_forward_fast(x: Array, kernel_size: int, stride: int | None = None,
                            padding: int = 0, count_include_pad: bool = True,
                            ) -> tuple[Array, AvgPool2dCache]:
    """``avg_pool2d_forward`` in x's memory order: the padded copy, the window sums and the
    division all read and write a channels-last input (Inception-v3's) in order, and the result
    stays channels-last for the next convolution. The same additions in the same order, the
    same division: the same numbers."""
    xp = get_array_module(x)
    K, S, P, H_out, W_out = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    N, C, H, W = x.shape
    x_pad = _padded_like(x, P, 0)

    total = x_pad[_window_slice(0, 0, S, H_out, W_out)].copy(order="K")   # 0 + first = first
    for i in range(K):
        for j in range(K):
            if i or j:
                total += x_pad[_window_slice(i, j, S, H_out, W_out)]
    count = window_counts(xp, H, W, K, S, P, count_include_pad, x.dtype)
    total /= count                                                        # in place
    return total, AvgPool2dCache(count, tuple(x.shape), K, S, P)


def window_counts(xp: Any, H: int, W: int, kernel_size: int, stride: int, padding: int,
                  count_include_pad: bool, dtype: Any) -> Array:
    """(1, 1, H_out, W_out): how many entries each window's sum is divided by.

    Counting the real pixels is itself an average pooling without the division: pool an image
    of ones, zero-padded, and each window's sum is the number of ones (real pixels) it covers.
    """
    K, S, P = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)
    if count_include_pad:
        return xp.full((1, 1, H_out, W_out), K * K, dtype=dtype)
    ones = _padded(xp.ones((1, 1, H, W), dtype=dtype), P, 0)
    count = xp.zeros((1, 1, H_out, W_out), dtype=dtype)
    for i in range(K):
        for j in range(K):
            count += ones[_window_slice(i, j, S, H_out, W_out)]
    return count


def avg_pool2d_backward(dy: Array, cache: AvgPool2dCache) -> Array:
    """dx: (N, C, H, W). Each window shares dy[n, c, ho, wo] / count[ho, wo] among its entries.

    dx_pad[n, c, S*ho + i, S*wo + j] += dy[n, c, ho, wo] / count[ho, wo] for every (i, j); the
    share that lands on padding is dropped with the padding.
    """
    xp = get_array_module(dy)
    N, C, H, W = cache.x_shape
    K, S, P = cache.kernel_size, cache.stride, cache.padding
    H_out, W_out = dy.shape[2:]
    share = dy / cache.count
    dx_pad = xp.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)
    for i in range(K):
        for j in range(K):
            dx_pad[_window_slice(i, j, S, H_out, W_out)] += share
    return dx_pad[:, :, P:P + H, P:P + W]


# ---------------------------------------------------------------------------------------------
# Global average pooling
# ---------------------------------------------------------------------------------------------


def global_avg_pool_forward(x: Array) -> tuple[Array, GlobalAvgPoolCache]:
    """y[n, c] = mean over h, w of x[n, c, h, w].  x: (N, C, H, W) -> y: (N, C).

    (PyTorch's ``AdaptiveAvgPool2d(1)`` followed by ``flatten(1)``.)
    """
    _check_nchw(x, "global_avg_pool")
    return x.mean(axis=(2, 3)), GlobalAvgPoolCache(tuple(x.shape))


def global_avg_pool_backward(dy: Array, cache: GlobalAvgPoolCache) -> Array:
    """dx[n, c, h, w] = dy[n, c] / (H * W): every pixel had the same share in the mean.

    dy: (N, C) -> dx: (N, C, H, W).
    """
    xp = get_array_module(dy)
    N, C, H, W = cache.x_shape
    share = dy / (H * W)
    return xp.broadcast_to(share[:, :, None, None], (N, C, H, W)).copy()
