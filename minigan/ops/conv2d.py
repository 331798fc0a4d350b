"""2-D convolution (cross-correlation, as in PyTorch), forward and backward.

    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S*ho + i, S*wo + j]

The kernel may be rectangular, w: (F, C, KH, KW), and the stride and padding may differ along H
and W (each an int or an (h, w) pair, as in ``torch.nn.Conv2d``); every formula below then holds
with K, S, P read per axis.

With ``cols = im2col(x)`` (one row per output pixel, one column per (i, j, c)) and the weights
flattened to a matrix ``w_mat`` (K*K*C, F) in the same (i, j, c) order, the whole layer is one
matrix product, and so is each gradient::

    forward:   y_rows  = cols @ w_mat + b             (N*H_out*W_out, F)
    backward:  dw_mat  = cols.T @ dy_rows             (K*K*C, F)
               dcols   = dy_rows @ w_mat.T            (N*H_out*W_out, K*K*C)
               dx      = col2im(dcols)                (N, C, H, W)
               db      = dy summed over n, ho, wo     (F,)

The input gradient ``col2im(dy_rows @ w_mat.T)`` is, by definition, a *transposed convolution*
of dy with the same weights. So the two ops share their code: ``conv_transpose2d_forward`` is
``conv2d_input_grad`` below, and the input gradient of a transposed convolution is
``conv2d_forward``. (With ``minigan.ops.fast_kernels`` on, the default for training,
``conv2d_input_grad`` computes those same sums with fewer memory passes, by one of two ways
that ``input_grad_fast.py`` chooses between: without col2im's overlapping adds, as one more
matrix product (``subpixel.py`` shows how), or with those adds made in blocks.)

Outputs have channels-last memory: ``y_rows`` is already one row per pixel, so ``y`` is just a
(N, F, H_out, W_out) view of it (``channels_last_view``), and the next layer reads it in place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module, launches_dominate
from minigan.ops.im2col import IntOrPair, col2im, im2col, output_shape, pair, window_view
from minigan.ops.input_grad_fast import conv2d_input_grad_fast
from minigan.ops.layout import channels_last_view, to_rows
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward pass."""

    cols: Array                   # im2col(x): (N*H_out*W_out, KH*KW*C)
    w: Array                      # the weights, (F, C, KH, KW)
    x_shape: tuple[int, ...]      # (N, C, H, W)
    stride: tuple[int, int]       # (S_h, S_w)
    padding: tuple[int, int]      # (P_h, P_w)
    has_bias: bool                # was there a bias (so backward returns db, not None)?


def conv2d_forward(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                   padding: IntOrPair = 0) -> tuple[Array, Conv2dCache]:
    """Forward pass of a 2-D convolution.

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None; stride, padding: int or (h, w) pair
    y: (N, F, H_out, W_out), H_out = (H + 2P_h - KH) // S_h + 1, W_out likewise with the W numbers
    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S_h*ho + i, S_w*wo + j]
    """
    xp = get_array_module(x)
    stride, padding = pair(stride), pair(padding)
    check_conv_args("conv2d", x, w, b, stride, padding)
    if fast_kernels_enabled():  # the same copy and product, a chunk of images at a time
        return conv2d_forward_fast(x, w, b, stride, padding)
    N, F = x.shape[0], w.shape[0]
    kernel_size = tuple(w.shape[2:])
    H_out, W_out = output_shape(x.shape, kernel_size, stride, padding)

    cols = im2col(x, kernel_size, stride, padding)        # (N*H_out*W_out, KH*KW*C)
    y_rows = xp.matmul(cols, weight_matrix(w))            # (N*H_out*W_out, F)
    if b is not None:
        y_rows += b                                       # in place: no extra array
    y = channels_last_view(y_rows, (N, F, H_out, W_out))  # a view: no copy
    return y, Conv2dCache(cols, w, tuple(x.shape), stride, padding, b is not None)


def conv2d_backward(
    dy: Array, cache: Conv2dCache, need_weight_grad: bool = True, need_input_grad: bool = True,
) -> tuple[Array | None, Array | None, Array | None]:
    """Backward pass of a 2-D convolution.

    dy: (N, F, H_out, W_out) -> dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,) or None
        dx = col2im(dy_rows @ w_mat.T)     (a transposed convolution of dy)
        dw = cols.T @ dy_rows              (reshaped to (F, C, K, K))
        db = sum of dy over n, ho, wo
    db is None when the forward pass had no bias. Either half can be skipped, as PyTorch skips
    what no one asked for: ``need_weight_grad=False`` gives dw = db = None (the generator step
    needs only the gradient at the image), ``need_input_grad=False`` gives dx = None (the first
    layer of the discriminator step, whose input is data).
    """
    xp = get_array_module(dy)
    dx = None
    if need_input_grad:
        dx = conv2d_input_grad(dy, cache.w, cache.x_shape, cache.stride, cache.padding)
    if not need_weight_grad:
        return dx, None, None
    dy_rows = to_rows(dy)                                 # (N*H_out*W_out, F), used twice
    dw = conv2d_weight_grad(cache.cols, dy_rows, cache.w.shape)
    db = xp.sum(dy_rows, axis=0) if cache.has_bias else None
    return dx, dw, db


# Building blocks, shared with conv_transpose2d.py (which is this file run backwards).

def weight_matrix(w: Array) -> Array:
    """(F, C, KH, KW) -> w_mat (KH*KW*C, F), rows in the (i, j, c) order of ``im2col``'s columns."""
    xp = get_array_module(w)
    F, C, KH, KW = w.shape
    return xp.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(KH * KW * C, F)


def weight_from_matrix(w_mat: Array, w_shape: tuple[int, ...]) -> Array:
    """The inverse of ``weight_matrix``: (KH*KW*C, F) -> (F, C, KH, KW), as a view of w_mat.

    No copy: a weight gradient is next added into its parameter's ``grad``, and that add reads
    the view in whatever order its strides say (one array operation fewer per layer).
    """
    F, C, KH, KW = w_shape
    return w_mat.reshape(KH, KW, C, F).transpose(3, 2, 0, 1)


def conv2d_input_grad(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair,
                      padding: IntOrPair) -> Array:
    """dL/dx of a convolution: dx = col2im(to_rows(dy) @ w_mat.T), i.e. a transposed convolution.

    dy: (N, F, H_out, W_out), w: (F, C, KH, KW) -> dx: x_shape = (N, C, H, W).
    Each output pixel sends its gradient back, through the filter weights, to the KH*KW input
    pixels of its window (one row of dcols); col2im adds up what lands on the same pixel.
    """
    # Fast: the same sums with fewer, larger memory operations, by whichever of two ways suits
    # the shape (sub-pixel products, or col2im's adds in blocks): input_grad_fast.py.
    if fast_kernels_enabled():
        return conv2d_input_grad_fast(dy, w, x_shape, stride, padding)
    xp = get_array_module(dy)
    dcols = xp.matmul(to_rows(dy), weight_matrix(w).T)   # (N*H_out*W_out, KH*KW*C)
    return col2im(dcols, x_shape, tuple(w.shape[2:]), stride, padding)


def conv2d_weight_grad(cols: Array, dy_rows: Array, w_shape: tuple[int, ...]) -> Array:
    """dL/dw of a convolution: dw_mat = cols.T @ dy_rows.

    cols: (N*H_out*W_out, KH*KW*C), dy_rows: (N*H_out*W_out, F) -> dw: w_shape = (F, C, KH, KW).
    Each filter's gradient is the sum, over output pixels, of (gradient at the pixel) times
    (the window that pixel saw).
    """
    xp = get_array_module(cols)
    return weight_from_matrix(xp.matmul(cols.T, dy_rows), w_shape)


def check_conv_args(op: str, x: Array, w: Array, b: Array | None, stride: tuple[int, int],
                    padding: tuple[int, int], output_padding: tuple[int, int] = (0, 0)) -> None:
    """The argument checks conv2d and conv_transpose2d share, with one message each.

    x: (N, C, H, W); w: (F, C, KH, KW) for conv2d, (C_in, C_out, KH, KW) for conv_transpose2d
    (PyTorch's layouts: the input channels are w's axis 1 for a convolution, axis 0 for a
    transposed one); b: one value per output channel or None; stride >= 1, padding >= 0 and
    0 <= output_padding < stride (only a transposed convolution has one), each per axis.
    """
    transposed = op == "conv_transpose2d"
    layout = "(C_in, C_out, KH, KW)" if transposed else "(F, C, KH, KW)"
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op} expects x (N, C, H, W) and w {layout}, got x of shape "
                         f"{tuple(x.shape)} and w of shape {tuple(w.shape)}")
    in_axis, out_axis = (0, 1) if transposed else (1, 0)
    if x.shape[1] != w.shape[in_axis]:
        raise ValueError(f"x has {x.shape[1]} channels but w {layout} = {tuple(w.shape)} "
                         f"expects {w.shape[in_axis]}")
    if b is not None and tuple(b.shape) != (w.shape[out_axis],):
        raise ValueError(f"b must have shape ({w.shape[out_axis]},), got {tuple(b.shape)}")
    if min(stride) < 1 or min(padding) < 0 or not all(
            0 <= op_ < s for op_, s in zip(output_padding, stride)):
        raise ValueError(f"{op} needs stride >= 1, padding >= 0 and 0 <= output_padding < "
                         f"stride; got stride={stride}, padding={padding}, "
                         f"output_padding={output_padding}")


# ---------------------------------------------------------------- the fast variant

# What a chunk's windows may take: about a core's own (L2) cache on the CPUs this was measured
# on (1 MiB a core on an AMD Zen 4; Intel's recent cores have 1.25-2 MiB).
CHUNK_BYTES = 1 << 20


def conv2d_forward_fast(x: Array, w: Array, b: Array | None, stride: tuple[int, int],
                        padding: tuple[int, int]) -> tuple[Array, Conv2dCache]:
    """``conv2d_forward`` after its checks: the same im2col copy and matrix product, made a
    chunk of images at a time into one ``cols`` and one ``y_rows``.

    What it buys: im2col writes every window before the product reads them back (8 MiB of
    them for the DCGAN's second convolution on 64 images), so the product reads them from the
    cache the two cores share, where the other half of a split step competes, or from memory.
    A chunk of about ``CHUNK_BYTES`` of windows is read right after it was written, from the
    core's own cache: 1-3% of a training step on a two-core AMD EPYC (``benchmarks/README.md``).
    The cache keeps the whole ``cols``, as the plain kernel's (the weight gradient reads it).
    Where launches dominate (a GPU), one chunk: the plain kernel's array operations.
    """
    xp = get_array_module(x)
    N, C = x.shape[:2]
    F, _, KH, KW = w.shape
    window = window_view(x, (KH, KW), stride, padding)    # (N, H_out, W_out, KH, KW, C)
    H_out, W_out = window.shape[1:3]
    rows = H_out * W_out                                  # of cols and y_rows, per image
    cols = xp.empty((N * rows, KH * KW * C), dtype=x.dtype)
    y_rows = xp.empty((N * rows, F), dtype=xp.result_type(x.dtype, w.dtype))
    w_mat = weight_matrix(w)
    step = N if launches_dominate(x) else max(1, CHUNK_BYTES // (rows * KH * KW * C * x.itemsize))
    for n in range(0, N, step):
        part = slice(n * rows, min(n + step, N) * rows)
        cols[part].reshape(-1, H_out, W_out, KH, KW, C)[...] = window[n:n + step]
        xp.matmul(cols[part], w_mat, out=y_rows[part])
    if b is not None:
        y_rows += b
    y = channels_last_view(y_rows, (N, F, H_out, W_out))
    return y, Conv2dCache(cols, w, tuple(x.shape), stride, padding, b is not None)
