"""Slow, obviously-correct loop versions of the kernels: teaching text and test oracles.

These follow the definitions word for word, one output (or input) pixel at a time, so that a
reader can check them by eye. Each kernel pair of ``minigan.ops`` has a pair here with the same
signature and the same return values (the caches differ: each keeps what its own backward
needs), and the tests hold the kernels, plain and fast, to them:

    conv2d_forward_reference / conv2d_backward_reference
    conv_transpose2d_forward_reference / conv_transpose2d_backward_reference
    batch_norm_forward_reference / batch_norm_eval_forward_reference / batch_norm_backward_reference
    im2col_reference                              (the window matrix, one window at a time)
    bce_with_logits_reference / softmax_cross_entropy_reference   (the textbook loss formulas)

They are also the place to start reading if im2col is new to you. No test keeps a private copy.
"""

from __future__ import annotations

from itertools import product
from typing import Any, NamedTuple

from minigan.backend import get_array_module
from minigan.ops.im2col import IntOrPair, pair

Array = Any


def _pad(x: Array, padding: IntOrPair) -> Array:
    """Zero-pad the last two axes of x: (N, C, H, W) -> (N, C, H + 2P_h, W + 2P_w)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    PH, PW = pair(padding)
    x_pad = xp.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=x.dtype)
    x_pad[:, :, PH:PH + H, PW:PW + W] = x
    return x_pad


def conv2d_reference(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0) -> Array:
    """2-D convolution by its definition.

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None; stride, padding: int or (h, w) pair
    -> y: (N, F, H_out, W_out), H_out = (H + 2P_h - KH) // S_h + 1 (W_out likewise), and
    y[n, f, ho, wo] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, S_h*ho + i, S_w*wo + j]
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    (SH, SW), (PH, PW) = pair(stride), pair(padding)
    H_out = (H + 2 * PH - KH) // SH + 1
    W_out = (W + 2 * PW - KW) // SW + 1
    x_pad = _pad(x, (PH, PW))
    y = xp.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for ho in range(H_out):
                for wo in range(W_out):
                    window = x_pad[n, :, SH * ho:SH * ho + KH, SW * wo:SW * wo + KW]  # (C, KH, KW)
                    y[n, f, ho, wo] = xp.sum(window * w[f])
            if b is not None:
                y[n, f] += b[f]
    return y


def conv_transpose2d_reference(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                               padding: IntOrPair = 0, output_padding: IntOrPair = 0) -> Array:
    """2-D transposed convolution by its definition: every input pixel stamps the kernel.

    x: (N, C_in, H, W), w: (C_in, C_out, KH, KW), b: (C_out,) or None
    -> y: (N, C_out, H_out, W_out), H_out = (H - 1) * S_h - 2P_h + KH + output_padding_h.

    Each input pixel x[n, c, h, w] adds x[n, c, h, w] * w[c] (a (C_out, KH, KW) stamp) into the
    full-size output at rows S_h*h .. S_h*h + KH - 1 and columns S_w*w .. S_w*w + KW - 1. The
    result is then cropped by P at the top and left, and cut to H_out x W_out: output_padding
    adds rows and columns at the bottom and right that only the bias reaches (when the stamps
    stop short).
    """
    xp = get_array_module(x)
    N, C_in, H, W = x.shape
    _, C_out, KH, KW = w.shape
    (SH, SW), (PH, PW), (OH, OW) = pair(stride), pair(padding), pair(output_padding)
    H_out = (H - 1) * SH - 2 * PH + KH + OH
    W_out = (W - 1) * SW - 2 * PW + KW + OW
    y_full = xp.zeros(_full_output_shape(x.shape, w.shape, (SH, SW), (PH, PW), (H_out, W_out)),
                      dtype=x.dtype)
    for n in range(N):
        for c in range(C_in):
            for h in range(H):
                for v in range(W):
                    y_full[n, :, SH * h:SH * h + KH, SW * v:SW * v + KW] += x[n, c, h, v] * w[c]
    y = y_full[:, :, PH:PH + H_out, PW:PW + W_out].copy()
    if b is not None:
        y += b.reshape(1, C_out, 1, 1)
    return y


def _full_output_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                       stride: tuple[int, int], padding: tuple[int, int],
                       out_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The uncropped output of a transposed convolution: big enough for every stamp and for the
    cropped output window [P, P + out_size) on each axis."""
    (N, _, H, W), (_, C_out, KH, KW) = x_shape, w_shape
    return (N, C_out, max((H - 1) * stride[0] + KH, padding[0] + out_size[0]),
            max((W - 1) * stride[1] + KW, padding[1] + out_size[1]))


def im2col_reference(x: Array, kernel_size: IntOrPair, stride: IntOrPair = 1,
                     padding: IntOrPair = 0) -> Array:
    """The window matrix of ``im2col``, one window at a time.

    x: (N, C, H, W) -> cols: (N*H_out*W_out, KH*KW*C), one row per output pixel (n, ho, wo) in
    row-major order, each row the window x_pad[n, :, S_h*ho:S_h*ho + KH, S_w*wo:S_w*wo + KW]
    read in (i, j, c) order (channels fastest).
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(padding)
    H_out, W_out = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    x_pad = _pad(x, (PH, PW))
    rows = []
    for n in range(N):
        for ho in range(H_out):
            for wo in range(W_out):
                window = x_pad[n, :, SH * ho:SH * ho + KH, SW * wo:SW * wo + KW]  # (C, KH, KW)
                rows.append(window.transpose(1, 2, 0).reshape(-1))              # (i, j, c)
    return xp.stack(rows)


# ---------------------------------------------------------------- convolution, as kernel pairs

class ConvReferenceCache(NamedTuple):
    """What the reference backward passes need: the inputs themselves and the geometry."""

    x: Array
    w: Array
    has_bias: bool
    stride: IntOrPair
    padding: IntOrPair
    output_padding: IntOrPair = 0


def conv2d_forward_reference(x: Array, w: Array, b: Array | None = None, stride: IntOrPair = 1,
                             padding: IntOrPair = 0) -> tuple[Array, ConvReferenceCache]:
    """``conv2d_forward`` by its definition: y = conv2d_reference(x, w, b), and a cache."""
    return (conv2d_reference(x, w, b, stride, padding),
            ConvReferenceCache(x, w, b is not None, stride, padding))


def conv2d_backward_reference(dy: Array, cache: ConvReferenceCache, need_weight_grad: bool = True,
                              need_input_grad: bool = True,
                              ) -> tuple[Array | None, Array | None, Array | None]:
    """``conv2d_backward`` by the chain rule, one output pixel at a time.

    Output pixel (n, f, ho, wo) was sum(window * w[f]) + b[f], with window the patch of x_pad it
    saw. So its gradient g = dy[n, f, ho, wo] flows back as g * w[f] into that patch of dx, as
    g * window into dw[f], and as g into db[f].
    """
    xp = get_array_module(dy)
    x, w = cache.x, cache.w
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    (SH, SW), (PH, PW) = pair(cache.stride), pair(cache.padding)
    x_pad = _pad(x, (PH, PW))
    dx_pad, dw = xp.zeros_like(x_pad), xp.zeros_like(w)
    for n, f, ho, wo in product(range(N), range(F), range(dy.shape[2]), range(dy.shape[3])):
        g = dy[n, f, ho, wo]
        rows, cols = slice(SH * ho, SH * ho + KH), slice(SW * wo, SW * wo + KW)
        dx_pad[n, :, rows, cols] += g * w[f]
        dw[f] += g * x_pad[n, :, rows, cols]
    dx = dx_pad[:, :, PH:PH + H, PW:PW + W].copy()
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return (dx if need_input_grad else None,
            dw if need_weight_grad else None, db if need_weight_grad else None)


def conv_transpose2d_forward_reference(x: Array, w: Array, b: Array | None = None,
                                       stride: IntOrPair = 1, padding: IntOrPair = 0,
                                       output_padding: IntOrPair = 0,
                                       ) -> tuple[Array, ConvReferenceCache]:
    """``conv_transpose2d_forward`` by its definition (every input pixel stamps the kernel)."""
    return (conv_transpose2d_reference(x, w, b, stride, padding, output_padding),
            ConvReferenceCache(x, w, b is not None, stride, padding, output_padding))


def conv_transpose2d_backward_reference(dy: Array, cache: ConvReferenceCache,
                                        need_weight_grad: bool = True,
                                        need_input_grad: bool = True,
                                        ) -> tuple[Array | None, Array | None, Array | None]:
    """``conv_transpose2d_backward`` by the chain rule, one input pixel at a time.

    Input pixel (n, c, h, v) added x[n, c, h, v] * w[c] to a KH x KW patch of the full-size
    output. So its gradient is sum(patch of dy_full * w[c]), and w[c] collects
    x[n, c, h, v] * (patch of dy_full), with dy_full the output gradient put back in the
    uncropped output (zeros where the crop cut rows and columns away).
    """
    xp = get_array_module(dy)
    x, w = cache.x, cache.w
    N, C_in, H, W = x.shape
    KH, KW = w.shape[2:]
    (SH, SW), (PH, PW) = pair(cache.stride), pair(cache.padding)
    H_out, W_out = dy.shape[2:]
    dy_full = xp.zeros(_full_output_shape(x.shape, w.shape, (SH, SW), (PH, PW), (H_out, W_out)),
                       dtype=dy.dtype)
    dy_full[:, :, PH:PH + H_out, PW:PW + W_out] = dy
    dx, dw = xp.zeros_like(x), xp.zeros_like(w)
    for n, c, h, v in product(range(N), range(C_in), range(H), range(W)):
        patch = dy_full[n, :, SH * h:SH * h + KH, SW * v:SW * v + KW]   # (C_out, KH, KW)
        dx[n, c, h, v] = xp.sum(patch * w[c])
        dw[c] += x[n, c, h, v] * patch
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return (dx if need_input_grad else None,
            dw if need_weight_grad else None, db if need_weight_grad else None)


# ---------------------------------------------------------------- batch norm, from the formulas

class BatchNormReferenceCache(NamedTuple):
    """The normalised input x_hat (shaped like x) and what dx needs besides it."""

    x_hat: Array      # (x - mean) * inv_std, shaped like x
    gamma: Array      # (C,)
    inv_std: Array    # 1 / sqrt(var + eps), (C,)
    training: bool    # were the statistics the batch's own (so they depend on x)?


def batch_norm_forward_reference(x: Array, gamma: Array, beta: Array, eps: float = 1e-5,
                                 ) -> tuple[Array, BatchNormReferenceCache]:
    """Training-mode batch norm, one channel at a time.

    For each channel c, over the m values it takes (x[:, c], all rows, or all pixels):
    mu = mean, sigma2 = mean of (x - mu)**2 (biased), x_hat = (x - mu) / sqrt(sigma2 + eps),
    y = gamma[c] * x_hat + beta[c].
    """
    xp = get_array_module(x)
    x_hat, inv_std = xp.zeros_like(x), xp.zeros(x.shape[1], dtype=x.dtype)
    for c in range(x.shape[1]):
        values = x[:, c]
        mu = values.mean()
        sigma2 = ((values - mu) ** 2).mean()
        inv_std[c] = 1 / xp.sqrt(sigma2 + eps)
        x_hat[:, c] = (values - mu) * inv_std[c]
    return (_scale_shift(x_hat, gamma, beta),
            BatchNormReferenceCache(x_hat, gamma, inv_std, training=True))


def batch_norm_eval_forward_reference(x: Array, gamma: Array, beta: Array, running_mean: Array,
                                      running_var: Array, eps: float = 1e-5,
                                      ) -> tuple[Array, BatchNormReferenceCache]:
    """Evaluation-mode batch norm: channel c is (x - running_mean[c]) / sqrt(running_var[c] + eps),
    scaled by gamma[c] and shifted by beta[c]."""
    xp = get_array_module(x)
    x_hat, inv_std = xp.zeros_like(x), 1 / xp.sqrt(running_var + eps)
    for c in range(x.shape[1]):
        x_hat[:, c] = (x[:, c] - running_mean[c]) * inv_std[c]
    return (_scale_shift(x_hat, gamma, beta),
            BatchNormReferenceCache(x_hat, gamma, inv_std, training=False))


def batch_norm_backward_reference(dy: Array, cache: BatchNormReferenceCache,
                                  ) -> tuple[Array, Array, Array]:
    """Batch norm's gradients through its Jacobian, one channel at a time.

    Within a channel of m values, with s = inv_std and x_hat = (x - mu) * s,
        d y_i / d x_j = gamma * s * (delta_ij - 1/m - x_hat_i * x_hat_j / m)   (training)
        d y_i / d x_j = gamma * s * delta_ij                                   (evaluation)
    (the 1/m term is the path through mu, the x_hat x_hat / m term the path through sigma2).
    Then dx = J.T @ dy, dgamma = sum_i dy_i * x_hat_i, dbeta = sum_i dy_i. The Jacobian is an
    m x m matrix: fine for the small tests, far too big for training.
    """
    xp = get_array_module(dy)
    dx = xp.zeros_like(dy)
    C = dy.shape[1]
    dgamma, dbeta = xp.zeros(C, dtype=dy.dtype), xp.zeros(C, dtype=dy.dtype)
    for c in range(C):
        g, x_hat = dy[:, c].reshape(-1), cache.x_hat[:, c].reshape(-1)
        m = g.size
        jacobian = xp.eye(m, dtype=dy.dtype)
        if cache.training:
            jacobian = jacobian - 1 / m - xp.outer(x_hat, x_hat) / m
        jacobian = cache.gamma[c] * cache.inv_std[c] * jacobian
        dx[:, c] = (jacobian.T @ g).reshape(dy[:, c].shape)
        dgamma[c], dbeta[c] = xp.sum(g * x_hat), xp.sum(g)
    return dx, dgamma, dbeta


def _scale_shift(x_hat: Array, gamma: Array, beta: Array) -> Array:
    """gamma[c] * x_hat + beta[c] on every channel c of an (N, C) or (N, C, H, W) array."""
    shape = (1, -1) + (1,) * (x_hat.ndim - 2)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape)


# ---------------------------------------------------------------- losses, the textbook formulas

def bce_with_logits_reference(x: Array, t: Array) -> Array:
    """Binary cross-entropy of logits x against targets t, mean over all elements, straight from
    the formula: -mean(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))).

    It overflows for large |x| (exp(1000) is inf): the kernel in losses.py rearranges the same
    formula so that it never does; the tests compare the two where this one is finite.
    """
    xp = get_array_module(x)
    s = 1 / (1 + xp.exp(-x))
    return -xp.mean(t * xp.log(s) + (1 - t) * xp.log(1 - s))


def softmax_cross_entropy_reference(z: Array, labels: Array) -> Array:
    """Softmax cross-entropy of (N, K) logits against (N,) integer labels, mean over N, straight
    from the formula: p = exp(z) / sum(exp(z)) per row, loss = -mean(log p[n, labels[n]])."""
    xp = get_array_module(z)
    p = xp.exp(z) / xp.exp(z).sum(axis=1, keepdims=True)
    return -xp.mean(xp.log(p[xp.arange(len(labels)), labels]))
