"""Batch normalization, training and evaluation modes, for (N, C) and (N, C, H, W) inputs.

Each channel c is normalised on its own, over all the values it takes in the batch: the N rows
of an (N, C) input, or the N * H * W pixels of an (N, C, H, W) input. Call that count m.

Training mode normalises with the statistics of the batch itself:

    mu_B      = (1/m) sum_i x_i                       batch mean
    sigma2_B  = (1/m) sum_i (x_i - mu_B)**2           batch variance (biased: divides by m)
    x_hat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)   mean 0, variance ~1 in every channel
    y_i       = gamma * x_hat_i + beta                learnable scale and shift per channel

eps keeps the division safe when a channel is constant, and slightly inflates the variance, so
x_hat's variance is sigma2_B / (sigma2_B + eps), a touch under 1. Any small positive value
works: the default 1e-5 is PyTorch's; the course notes use 0.001 as their example.

Evaluation mode uses the running statistics instead of mu_B and sigma2_B, so the output of one
example no longer depends on the rest of its batch; it is then just an affine map per channel.

The running statistics follow PyTorch (see ``update_running_stats``): momentum 0.1, and the
*unbiased* batch variance m / (m - 1) * sigma2_B goes into ``running_var``.

The kernels work on *rows*: an (N, C) input already is one row per example and one column per
channel; an (N, C, H, W) input becomes (N*H*W, C), one row per pixel (``to_rows``, free for the
channels-last arrays that convolutions produce). Every per-channel quantity is then a (C,)
vector that broadcasts along the rows, and every per-channel sum is a column sum.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from minigan.backend import fuse, get_array_module, is_cupy_array
from minigan.ops.layout import channels_last_view, column_means, column_sums, to_rows
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class BatchNormCache(NamedTuple):
    """What the backward pass and the running-statistics update need.

    Per-channel arrays are (C,) vectors; x_hat is kept as rows (m, C), the layout the backward
    pass computes in.
    """

    x_hat: Array     # normalised input as rows, (m, C)
    gamma: Array     # the scale, (C,)
    inv_std: Array   # 1 / sqrt(var + eps), (C,)
    mean: Array      # training: the batch mean mu_B; eval: the running mean; (C,)
    var: Array       # training: the biased batch variance sigma2_B; eval: the running variance
    m: int           # number of values per channel: N, or N * H * W
    training: bool   # which formula produced y (and so which backward applies)
    groups: int = 1  # > 1: statistics per group of the batch (batch_norm_activation_by_groups)


def as_rows(x: Array) -> Array:
    """(N, C) -> itself; (N, C, H, W) -> (N*H*W, C): one row per value a channel takes."""
    if x.ndim == 2:
        return x
    if x.ndim == 4:
        return to_rows(x)
    raise ValueError(f"batch norm expects input of shape (N, C) or (N, C, H, W), "
                     f"got {tuple(x.shape)}")


def from_rows(rows: Array, shape: tuple[int, ...]) -> Array:
    """The inverse of ``as_rows``: back to ``shape``, (N, C) or (N, C, H, W), without a copy."""
    return rows if len(shape) == 2 else channels_last_view(rows, shape)


def batch_norm_forward(
    x: Array, gamma: Array, beta: Array, eps: float = 1e-5, across: Any = None,
) -> tuple[Array, BatchNormCache]:
    """Training-mode batch norm: normalise each channel with the batch's own statistics.

    x: (N, C) or (N, C, H, W); gamma, beta: (C,)  ->  y: shaped like x
    y = gamma * (x - mu_B) / sqrt(sigma2_B + eps) + beta, with mu_B and sigma2_B (biased) taken
    per channel over N (and H, W).
    ``across``: for a batch split over processes (``minigan/nn/sync_batchnorm.py``), anything
    with ``size`` and ``allreduce_sum(a)``; the statistics are then the whole batch's.
    """
    if fast_kernels_enabled():  # fewer passes over the data: see batch_norm_forward_fast
        return batch_norm_forward_fast(x, gamma, beta, eps, across)
    xp = get_array_module(x)
    rows = as_rows(x)                                     # (m, C): a column per channel
    m = rows.shape[0] * (1 if across is None else across.size)
    eps = x.dtype.type(eps)  # a float64 eps must not turn a float32 batch into float64

    mean = batch_mean(rows, across)                       # mu_B, (C,)
    var = batch_mean((rows - mean) ** 2, across)          # sigma2_B, biased: divides by m
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = (rows - mean) * inv_std                       # (m, C)
    y = gamma * x_hat + beta
    return from_rows(y, x.shape), BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std,
                                                  mean=mean, var=var, m=m, training=True)


def batch_norm_eval_forward(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float = 1e-5,
) -> tuple[Array, BatchNormCache]:
    """Evaluation-mode batch norm: normalise with the running statistics.

    x: (N, C) or (N, C, H, W); gamma, beta, running_mean, running_var: (C,)  ->  y: shaped like x
    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
    Nothing here depends on the batch: each channel is the fixed affine map
    y = scale * x + shift, with scale = gamma / sqrt(running_var + eps).
    """
    if fast_kernels_enabled():  # the two element-wise lines as one GPU kernel
        return batch_norm_eval_forward_fast(x, gamma, beta, running_mean, running_var, eps)
    xp = get_array_module(x)
    rows = as_rows(x)
    eps = x.dtype.type(eps)

    inv_std = 1 / xp.sqrt(running_var + eps)
    x_hat = (rows - running_mean) * inv_std
    y = gamma * x_hat + beta
    return from_rows(y, x.shape), BatchNormCache(
        x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=running_mean, var=running_var,
        m=rows.shape[0], training=False)


def batch_norm_backward(
    dy: Array, cache: BatchNormCache, across: Any = None,
) -> tuple[Array, Array, Array]:
    """Gradients of batch norm, in whichever mode the cache was made.

    dy: shaped like x  ->  dx: shaped like x; dgamma, dbeta: (C,)
    dbeta  = sum of dy over N (and H, W)        since y = gamma * x_hat + beta
    dgamma = sum of dy * x_hat over N (and H, W)
    dx     = eval mode:     gamma * inv_std * dy
             training mode: the chain rule along the three paths from x to the loss (below)
    ``across`` (as for the forward pass): dx takes its sums over the whole batch; dgamma and
    dbeta stay this process's share (the processes average the gradients before a step).
    """
    if fast_kernels_enabled():  # the derivation collapsed to one line: batch_norm_backward_fast
        return batch_norm_backward_fast(dy, cache, across)
    xp = get_array_module(dy)
    dy_rows = as_rows(dy)                                 # (m, C)
    x_hat, s, m = cache.x_hat, cache.inv_std, cache.m
    dbeta = xp.sum(dy_rows, axis=0)
    dgamma = xp.sum(dy_rows * x_hat, axis=0)
    if not cache.training:
        # The running statistics are constants, so x -> y is a per-channel affine map.
        return from_rows(dy_rows * (cache.gamma * s), dy.shape), dgamma, dbeta

    # Training mode: mu_B and sigma2_B are themselves functions of every x in the channel, so
    # each x_i reaches the loss along three paths: directly, through mu_B and through sigma2_B.
    # With s = inv_std = (sigma2_B + eps)**(-1/2) and x_hat = (x - mu_B) * s, step by step:
    centered = x_hat / s                                  # x_i - mu_B
    dx_hat = dy_rows * cache.gamma                        # dL/dx_hat_i = gamma * dy_i
    # dL/dsigma2_B = sum_i dx_hat_i * (x_i - mu_B) * (-1/2) * s**3
    dvar = batch_sum(dx_hat * centered, across) * -0.5 * s**3
    # dL/dmu_B = sum_i dx_hat_i * (-s) + dL/dsigma2_B * mean_i(-2 (x_i - mu_B))
    dmean = -s * batch_sum(dx_hat, across) + dvar * batch_mean(-2 * centered, across)
    # dL/dx_i = dx_hat_i * s + dL/dsigma2_B * 2 (x_i - mu_B) / m + dL/dmu_B / m
    dx = dx_hat * s + dvar * 2 * centered / m + dmean / m
    return from_rows(dx, dy.shape), dgamma, dbeta


def batch_sum(columns: Array, across: Any = None) -> Array:
    """(m, C) -> (C,): the sum of each column over the batch (with ``across``: over every
    process's rows, each process getting the total)."""
    sums = get_array_module(columns).sum(columns, axis=0)
    return sums if across is None else across.allreduce_sum(sums)


def batch_mean(columns: Array, across: Any = None) -> Array:
    """(m, C) -> (C,): the mean of each column over the batch (with ``across``: over every
    process's rows; each process holds the same number of rows)."""
    if across is None:
        return get_array_module(columns).mean(columns, axis=0)
    return batch_sum(columns, across) / (columns.shape[0] * across.size)


# ---------------------------------------------------------------- the fast variants
# Same numbers, fewer passes over the (m, C) arrays and few array operations (each one a kernel
# launch on a GPU, where for arrays this small the launches, not the arithmetic, take the
# time): column sums as matrix products (BLAS streams through the rows once), and every
# element-wise step, on the rows or on the (C,) per-channel vectors, as one GPU kernel through
# ``fuse`` (see minigan/backend.py). The plain functions above reach them through their first
# line when ``fast_kernels`` is on.

def batch_norm_forward_fast(
    x: Array, gamma: Array, beta: Array, eps: float = 1e-5, across: Any = None,
) -> tuple[Array, BatchNormCache]:
    """``batch_norm_forward`` in three passes over the data (the mean, the squares, the
    normalise-scale-shift) and five array operations where the plain lines take eleven (as
    ``minigan.opcount`` counts them)."""
    rows = as_rows(x)                                     # (m, C)
    m = rows.shape[0] * (1 if across is None else across.size)
    dtype = x.dtype.type

    if across is None:
        mean = column_means(rows)                         # mu_B, (C,)
    else:                                                 # the whole batch's sums, over m
        mean = across.allreduce_sum(column_sums(rows)) / dtype(m)
    centered, sum_of_squares = centered_and_sum_of_squares(rows, mean)
    if across is not None:
        sum_of_squares = across.allreduce_sum(sum_of_squares)
    var, inv_std = variance_and_inv_std(sum_of_squares, dtype(m), dtype(eps))
    x_hat, y = normalize_scale_shift(centered, inv_std, gamma, beta)
    return from_rows(y, x.shape), BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std,
                                                  mean=mean, var=var, m=m, training=True)


def batch_norm_eval_forward_fast(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float = 1e-5,
) -> tuple[Array, BatchNormEvalFastCache]:
    """``batch_norm_eval_forward`` as y = (x - mean) * (gamma * inv_std) + beta in one fused
    kernel (``eval_scale_shift``): on the CPU three passes over the data and one new array,
    where the plain lines make four passes and three arrays. x_hat, which only a backward pass
    reads (Inception-v3's scoring never runs one), is worked out when asked
    (``BatchNormEvalFastCache``). Four array operations where the plain lines take seven."""
    xp = get_array_module(x)
    rows = as_rows(x)
    inv_std = 1 / xp.sqrt(running_var + x.dtype.type(eps))
    y = eval_scale_shift(rows, running_mean, inv_std, gamma, beta)
    return from_rows(y, x.shape), BatchNormEvalFastCache(
        rows=rows, gamma=gamma, inv_std=inv_std, mean=running_mean, var=running_var,
        m=rows.shape[0])


class BatchNormEvalFastCache(NamedTuple):
    """``BatchNormCache`` of an eval-mode forward, with the input rows in place of x_hat: the
    backward passes read ``x_hat`` as a property, computed from them when asked."""

    rows: Array      # the input as rows, (m, C)
    gamma: Array     # the scale, (C,)
    inv_std: Array   # 1 / sqrt(running_var + eps), (C,)
    mean: Array      # the running mean, (C,)
    var: Array       # the running variance, (C,)
    m: int           # number of values per channel
    training: bool = False

    @property
    def x_hat(self) -> Array:
        """(x - running_mean) * inv_std, (m, C): what the plain forward keeps."""
        return (self.rows - self.mean) * self.inv_std


@fuse
def eval_scale_shift(rows, mean, inv_std, gamma, beta):
    """y = (x - mean) * (gamma * inv_std) + beta, written in place into one new array."""
    y = rows - mean
    y *= gamma * inv_std
    y += beta
    return y


def batch_norm_backward_fast(
    dy: Array, cache: BatchNormCache, across: Any = None,
) -> tuple[Array, Array, Array]:
    """``batch_norm_backward`` with the training-mode input gradient in one line, in four array
    operations where the plain lines take 24.

    Substituting x_i - mu_B = x_hat_i / s into the plain version's three terms (the dmu term
    through sigma2_B is 0, since the centred values sum to 0) collapses them into
        dx_i = (gamma * s / m) * (m * dy_i - sum_j dy_j - x_hat_i * sum_j dy_j * x_hat_j)
    where the two sums are exactly dbeta and dgamma. Multiplied out, with k = gamma * s / m per
    channel, that is  dx = (m k) dy - (k dgamma) x_hat - k dbeta : three passes over the (m, C)
    arrays instead of the plain version's dozen. docs/batch_norm.md derives it.
    """
    dy_rows = as_rows(dy)                                 # (m, C)
    x_hat = cache.x_hat
    dbeta = column_sums(dy_rows)
    dgamma = sum_of_products(dy_rows, x_hat)              # sum of dy * x_hat, per channel
    if not cache.training:
        return from_rows(dy_rows * (cache.gamma * cache.inv_std), dy.shape), dgamma, dbeta
    sum_dgamma, sum_dbeta = dgamma, dbeta
    if across is not None:   # dx needs the whole batch's sums: one allreduce of 2C numbers
        sums = across.allreduce_sum(get_array_module(dy).concatenate([dgamma, dbeta]))
        sum_dgamma, sum_dbeta = sums[:len(dgamma)], sums[len(dgamma):]
    dx = input_grad_from_sums(dy_rows, x_hat, cache.gamma, cache.inv_std, sum_dgamma,
                              sum_dbeta, x_hat.dtype.type(cache.m))
    return from_rows(dx, dy.shape), dgamma, dbeta


# einsum("mc,mc->c", a, b) sums products per column in one pass with no temporary array, the
# best there is on a CPU. CuPy's einsum first copies both operands into the layout of a batched
# matrix product, so on a GPU the same sums are one element-wise kernel and one matrix-vector
# product instead. The choice follows where the arrays are (CuPy or not), so that counting array
# operations on the CPU (minigan.opcount) runs the same lines as an uncounted step.

def centered_and_sum_of_squares(rows: Array, mean: Array) -> tuple[Array, Array]:
    """rows - mean, (m, C), and the sum of its squares per channel, (C,)."""
    xp = get_array_module(rows)
    if not is_cupy_array(rows):
        centered = rows - mean
        return centered, xp.einsum("mc,mc->c", centered, centered)
    centered, squares = centered_and_squares(rows, mean)
    return centered, column_sums(squares)


def sum_of_products(a: Array, b: Array) -> Array:
    """(m, C), (m, C) -> (C,): the sum of a * b per channel."""
    xp = get_array_module(a)
    if not is_cupy_array(a):
        return xp.einsum("mc,mc->c", a, b)
    return column_sums(a * b)


@fuse
def centered_and_squares(rows, mean):
    """x - mean and its square, element by element: what the variance needs."""
    centered = rows - mean
    return centered, centered * centered


@fuse
def variance_and_inv_std(sum_of_squares, m, eps):
    """Per channel: sigma2_B = sum_of_squares / m (biased) and 1 / sqrt(sigma2_B + eps)."""
    var = sum_of_squares / m
    return var, 1 / (var + eps) ** 0.5


@fuse
def normalize_scale_shift(centered, inv_std, gamma, beta):
    """x_hat = (x - mean) * inv_std and y = gamma * x_hat + beta, from centered = x - mean."""
    x_hat = centered * inv_std
    return x_hat, x_hat * gamma + beta


@fuse
def input_grad_from_sums(dy, x_hat, gamma, inv_std, dgamma, dbeta, m):
    """Training-mode dx = (m k) dy - (k dgamma) x_hat - k dbeta, with k = gamma * inv_std / m
    per channel. The per-channel factors are part of the same kernel: on NumPy they are (C,)
    vectors computed once, on a GPU each element works them out in registers, which costs
    far less than a kernel launch of their own."""
    k = gamma * inv_std / m
    dx = dy * (m * k)
    dx -= x_hat * (k * dgamma)   # in place: no new (m, C) array for the result
    dx -= k * dbeta
    return dx


def update_running_stats(
    running_mean: Array, running_var: Array, cache: BatchNormCache, momentum: float = 0.1,
) -> tuple[Array, Array]:
    """Blend a training batch's statistics into the running ones (PyTorch's rule).

    running_mean, running_var: (C,)  ->  new_running_mean, new_running_var: (C,), same dtype
    new_mean = (1 - momentum) * running_mean + momentum * mu_B
    new_var  = (1 - momentum) * running_var  + momentum * m / (m - 1) * sigma2_B
    The *unbiased* variance goes into running_var, because it estimates the variance of the whole
    data set; the forward pass still normalises with the biased sigma2_B. (Note: PyTorch's
    momentum is the weight of the *new* batch, the opposite of some other libraries' convention.)
    """
    if fast_kernels_enabled():  # the same two lines as one GPU kernel
        return update_running_stats_fast(running_mean, running_var, cache, momentum)
    _check_running_stats_cache(cache)
    dtype = running_mean.dtype
    momentum = dtype.type(momentum)  # keep the buffers' dtype, whatever type momentum comes in
    keep = 1 - momentum
    batch_mean = cache.mean.astype(dtype)
    unbiased_var = (cache.var * (cache.m / (cache.m - 1))).astype(dtype)
    new_mean = keep * running_mean + momentum * batch_mean
    new_var = keep * running_var + momentum * unbiased_var
    return new_mean, new_var


def _check_running_stats_cache(cache: BatchNormCache) -> None:
    if not cache.training:
        raise ValueError("update_running_stats needs the cache of a training-mode forward pass")
    if cache.m < 2:
        raise ValueError("the unbiased variance needs more than one value per channel, got "
                         f"m = {cache.m}")


def update_running_stats_fast(
    running_mean: Array, running_var: Array, cache: BatchNormCache, momentum: float = 0.1,
) -> tuple[Array, Array]:
    """``update_running_stats`` in one array operation where the plain lines take nine."""
    _check_running_stats_cache(cache)
    dtype = running_mean.dtype.type
    momentum = dtype(momentum)
    batch_mean, batch_var = cache.mean, cache.var
    if batch_mean.dtype != running_mean.dtype:   # only if the buffers have another dtype
        batch_mean, batch_var = batch_mean.astype(dtype), batch_var.astype(dtype)
    return blend_running_stats(running_mean, running_var, batch_mean, batch_var,
                               dtype(1 - momentum), momentum, dtype(cache.m / (cache.m - 1)))


def batch_norm_train_forward(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float = 1e-5, momentum: float = 0.1,
) -> tuple[Array, BatchNormCache, Array, Array]:
    """What a batch norm layer does in training mode: ``batch_norm_forward``, then
    ``update_running_stats`` with that batch's statistics.

    x: (N, C) or (N, C, H, W); gamma, beta, running_mean, running_var: (C,)
    -> y (shaped like x), the cache, new_running_mean, new_running_var ((C,), the buffers' dtype)
    Both kernels are looked up in ``minigan.ops`` when called, so a swapped-in one runs.
    """
    if fast_kernels_enabled():  # the blend inside the variance kernel: a launch fewer
        return batch_norm_forward_with_running_stats_fast(x, gamma, beta, running_mean,
                                                         running_var, eps, momentum)
    return _forward_then_update(x, gamma, beta, running_mean, running_var, eps, momentum)


def _forward_then_update(x: Array, gamma: Array, beta: Array, running_mean: Array,
                         running_var: Array, eps: float, momentum: float,
                         ) -> tuple[Array, BatchNormCache, Array, Array]:
    from minigan import ops  # the package, looked up at call time (it imports this module)

    y, cache = ops.batch_norm_forward(x, gamma, beta, eps)
    return (y, cache, *ops.update_running_stats(running_mean, running_var, cache, momentum))


def batch_norm_forward_with_running_stats_fast(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float = 1e-5, momentum: float = 0.1,
) -> tuple[Array, BatchNormCache, Array, Array]:
    """``batch_norm_train_forward`` with the running statistics blended in the same per-channel
    kernel as the variance: one array operation fewer per training forward than
    ``batch_norm_forward_fast`` and ``update_running_stats_fast`` one after the other (their
    lines, in the same order: the same numbers)."""
    from minigan import ops  # the package, looked up at call time (it imports this module)

    if (inspect.unwrap(ops.batch_norm_forward) is not batch_norm_forward
            or inspect.unwrap(ops.update_running_stats) is not update_running_stats
            or running_mean.dtype != x.dtype or x.size == x.shape[1]):
        # A learner's kernels swapped in (an exercise: they must run; a wrapper made with
        # functools.wraps around the library's own, a timer say, does not count), buffers of
        # another dtype, or one value per channel (an error): the two calls.
        return _forward_then_update(x, gamma, beta, running_mean, running_var, eps, momentum)
    rows = as_rows(x)                                     # (m, C)
    m = rows.shape[0]
    dtype = x.dtype.type

    mean = column_means(rows)                             # mu_B, (C,)
    centered, sum_of_squares = centered_and_sum_of_squares(rows, mean)
    var, inv_std, new_mean, new_var = variance_inv_std_and_running_stats(
        sum_of_squares, dtype(m), dtype(eps), running_mean, running_var, mean,
        dtype(1 - momentum), dtype(momentum), dtype(m / (m - 1)))
    x_hat, y = normalize_scale_shift(centered, inv_std, gamma, beta)
    cache = BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var, m=m,
                           training=True)
    return from_rows(y, x.shape), cache, new_mean, new_var


@fuse
def variance_inv_std_and_running_stats(sum_of_squares, m, eps, running_mean, running_var,
                                       batch_mean, keep, momentum, unbiased):
    """``variance_and_inv_std`` and ``blend_running_stats`` as one per-channel kernel: the same
    lines, in the same order, so the same numbers."""
    var = sum_of_squares / m
    new_mean = keep * running_mean + momentum * batch_mean
    new_var = keep * running_var + momentum * (var * unbiased)
    return var, 1 / (var + eps) ** 0.5, new_mean, new_var


@fuse
def blend_running_stats(running_mean, running_var, batch_mean, batch_var, keep, momentum,
                        unbiased):
    """keep * running + momentum * batch, for the mean and for the unbiased variance."""
    new_mean = keep * running_mean + momentum * batch_mean
    new_var = keep * running_var + momentum * (batch_var * unbiased)
    return new_mean, new_var
