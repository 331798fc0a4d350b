"""A training-mode batch norm and the ReLU or leaky ReLU right after it, as one pair of kernels.

This is a speed-up, not a new idea: the numbers are those of ``batch_norm_train_forward`` then
``relu_forward`` / ``leaky_relu_forward``, and of the two backward kernels in reverse order.
Only the batch norm layers call these functions (``forward_with``, ``input_grad_with``), when
``Sequential`` asks them to run the activation after them, and only while the fast kernels are on
(``minigan.ops.switch``), so the plain layer-by-layer code is what a learner steps through.

What it buys, per pair and step: on a GPU, a kernel launch fewer in the forward pass (the
activation is part of batch norm's normalise-scale-shift kernel) and one fewer in the backward
pass (the activation's slope is multiplied in inside batch norm's sums and its input gradient,
so dy * slope is never written out); on the CPU, that product's pass over memory, and the
column sum taken by ``einsum`` from the two factors instead of by a product over a new array.

ReLU is leaky ReLU with slope 0: both keep ``slope`` (1 where the batch norm's output is
positive, ``negative_slope`` elsewhere), the local derivative the backward pass multiplies by.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import fuse, get_array_module, is_cupy_array
from minigan.ops.batchnorm import (
    BatchNormCache,
    as_rows,
    centered_and_sum_of_squares,
    from_rows,
    variance_inv_std_and_running_stats,
)
from minigan.ops.layout import column_means, column_sums

Array = Any


def batch_norm_activation_train_forward_fast(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float, momentum: float, negative_slope: float, across: Any = None,
) -> tuple[Array, BatchNormCache, Array, Array, Array]:
    """``batch_norm_train_forward`` followed by a leaky ReLU (``negative_slope`` 0: a ReLU).

    x: (N, C) or (N, C, H, W) -> y (shaped like x), batch norm's cache, the activation's slope
    (shaped like x), and the new running mean and variance. The batch norm lines are those of
    ``batch_norm_forward_with_running_stats_fast``, in the same order. ``across``: the
    processes whose batches together are the batch (SyncBatchNorm2d), as in
    ``batch_norm_forward_fast``: the per-channel sums go through ``across.allreduce_sum``.
    """
    m = x.size // x.shape[1] * (1 if across is None else across.size)   # values per channel
    dtype = x.dtype.type

    mean, centered, sum_of_squares = mean_and_centered_rows(x, m, across)
    var, inv_std, new_mean, new_var = variance_inv_std_and_running_stats(
        sum_of_squares, dtype(m), dtype(eps), running_mean, running_var, mean,
        dtype(1 - momentum), dtype(momentum), dtype(m / (m - 1)))
    x_hat, y, slope = normalize_scale_shift_activation(centered, inv_std, gamma, beta,
                                                       negative_slope)
    cache = BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var, m=m,
                           training=True)
    return from_rows(y, x.shape), cache, from_rows(slope, x.shape), new_mean, new_var


def mean_and_centered_rows(x: Array, m: int, across: Any = None) -> tuple[Array, Array, Array]:
    """mu_B (C,), the rows of x - mu_B (m, C), and their sum of squares per channel (C,); m
    counts the values per channel of the whole batch (every process's, with ``across``).

    When x's rows are a view of it (the output of a convolution, or an (N, C) input), as
    ``batch_norm_forward_with_running_stats_fast``: the mean as a matrix-vector product. When
    they are not (a transposed convolution's output is a crop of a bigger image, whose rows
    ``as_rows`` would copy), the mean is one ``einsum`` over the channels-last view and the
    subtraction writes the rows: a pass over memory and an array operation fewer. CuPy takes
    the first way (its einsum copies its operands first).
    """
    xp = get_array_module(x)
    view = channels_last(x)
    if x.ndim == 2 or is_cupy_array(x) or view.flags.c_contiguous:
        rows = as_rows(x)
        if across is None:
            mean = column_means(rows)
        else:
            mean = across.allreduce_sum(column_sums(rows)) / x.dtype.type(m)
        centered, sum_of_squares = centered_and_sum_of_squares(rows, mean)
    else:
        mean = xp.einsum("nhwc,->c", view, x.dtype.type(1 / m))   # this process's share
        if across is not None:
            mean = across.allreduce_sum(mean)
        centered = (view - mean).reshape(-1, x.shape[1])   # in the view's order: channels-last
        sum_of_squares = xp.einsum("mc,mc->c", centered, centered)
    if across is not None:
        sum_of_squares = across.allreduce_sum(sum_of_squares)
    return mean, centered, sum_of_squares


def normalize_scale_shift_activation(centered: Array, inv_std: Array, gamma: Array,
                                     beta: Array, negative_slope: float) -> tuple[Array, ...]:
    """x_hat, the activation's output and its slope, by the fused kernel for the activation:
    ReLU (``negative_slope`` 0) or leaky ReLU."""
    if negative_slope == 0:
        return normalize_scale_shift_relu(centered, inv_std, gamma, beta)
    alpha = centered.dtype.type(negative_slope)
    return normalize_scale_shift_leaky_relu(centered, inv_std, gamma, beta, alpha, 1 - alpha)


@fuse
def normalize_scale_shift_relu(centered, inv_std, gamma, beta):
    """x_hat = centered * inv_std, z = gamma * x_hat + beta (batch norm's output), then
    slope = 1 where z > 0 else 0, and y = z * slope (ReLU's output)."""
    x_hat = centered * inv_std
    y = x_hat * gamma
    y += beta                         # in place: z, batch norm's output
    slope = (y > 0).astype(y.dtype)
    y *= slope                        # in place: ReLU's output
    return x_hat, y, slope


@fuse
def normalize_scale_shift_leaky_relu(centered, inv_std, gamma, beta, alpha, one_minus_alpha):
    """As ``normalize_scale_shift_relu`` with slope = 1 where z > 0 else alpha: the output of a
    leaky ReLU with negative slope alpha."""
    x_hat = centered * inv_std
    y = x_hat * gamma
    y += beta
    slope = (y > 0).astype(y.dtype)
    slope *= one_minus_alpha
    slope += alpha                    # 1 where z > 0, alpha elsewhere
    y *= slope
    return x_hat, y, slope


def batch_norm_backward_through_slope_fast(
    dy: Array, slope: Array, cache: BatchNormCache, across: Any = None,
) -> tuple[Array, Array, Array]:
    """``leaky_relu_backward`` (dz = dy * slope) then ``batch_norm_backward`` (training mode).

    dy, slope: shaped like batch norm's input; cache: its training-mode cache
    -> dx (shaped like dy), dgamma, dbeta ((C,) each). With dz = dy * slope, the sums are
    dbeta = sum dz and dgamma = sum dz * x_hat, and dx is ``input_grad_from_sums`` of dz.
    With ``across``, dx takes the whole batch's sums (one allreduce of 2C numbers), and dgamma
    and dbeta are this process's share, as in ``batch_norm_backward_fast``.

    Everything is read through channels-last views, (N, H, W, C), which copy nothing whatever
    dy's memory order: the output of a convolution's input gradient (a crop of a bigger image)
    or of a Flatten's backward (channels-first). dx comes out channels-last, the layout the
    convolution before reads as rows.
    """
    xp = get_array_module(dy)
    dy_v, slope_v = channels_last(dy), channels_last(slope)
    x_hat = cache.x_hat.reshape(slope_v.shape)            # rows (m, C) seen as slope_v
    if is_cupy_array(dy):
        # CuPy's einsum first copies its operands (see sum_of_products): one product instead,
        # written in the views' (channels-last) order, so that its rows are a view.
        dz = (slope_v * dy_v).reshape(cache.x_hat.shape)
        dbeta, dgamma = column_sums(dz), column_sums(dz * cache.x_hat)
    else:
        each = "mc" if dy.ndim == 2 else "nhwc"           # the einsum subscripts of one array
        dbeta = xp.einsum(f"{each},{each}->c", dy_v, slope_v)
        dgamma = xp.einsum(f"{each},{each},{each}->c", dy_v, slope_v, x_hat)
    sum_dgamma, sum_dbeta = dgamma, dbeta
    if across is not None:
        sums = across.allreduce_sum(xp.concatenate([dgamma, dbeta]))
        sum_dgamma, sum_dbeta = sums[:len(dgamma)], sums[len(dgamma):]
    dx = input_grad_through_slope(slope_v, dy_v, x_hat, cache.gamma, cache.inv_std, sum_dgamma,
                                  sum_dbeta, x_hat.dtype.type(cache.m))
    return from_channels_last(dx), dgamma, dbeta


@fuse
def add_gamma_and_beta_gradients(grad_gamma, grad_beta, dgamma, dbeta):
    """grad_gamma += dgamma and grad_beta += dbeta, in place: a batch norm's two
    ``Parameter.accumulate`` calls as one kernel."""
    grad_gamma += dgamma
    grad_beta += dbeta


def channels_last(a: Array) -> Array:
    """(N, C) -> itself; (N, C, H, W) -> an (N, H, W, C) view: channels on the last axis."""
    return a if a.ndim == 2 else a.transpose(0, 2, 3, 1)


def from_channels_last(a: Array) -> Array:
    """The inverse of ``channels_last``, a view again."""
    return a if a.ndim == 2 else a.transpose(0, 3, 1, 2)


@fuse
def input_grad_through_slope(slope, dy, x_hat, gamma, inv_std, dgamma, dbeta, m):
    """``input_grad_from_sums`` of dz = dy * slope: (m k) dz - (k dgamma) x_hat - k dbeta,
    with k = gamma * inv_std / m per channel. Given channels-last views, (N, H, W, C), it
    writes dx in that shape's own order, channels-last, whatever dy's memory order (NumPy does
    so when its operands' orders disagree, CuPy always)."""
    k = gamma * inv_std / m
    dx = slope * dy
    dx *= m * k
    dx -= x_hat * (k * dgamma)
    dx -= k * dbeta
    return dx
