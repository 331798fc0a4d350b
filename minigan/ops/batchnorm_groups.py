"""A batch norm and its activation over a batch made of several batches, each normalised apart.

The lesson's training step shows D a real batch and a fake batch, and batch norm normalises
each with its own mu_B and sigma2_B (two calls of D); G makes each of its fake batches in a call
of its own. On a GPU, where every array operation is a kernel launch, a network can instead
take several batches as one: convolutions, activations and linear layers treat every example
on its own anyway, so only batch norm must know that the batch is made of ``groups`` batches
and keep its statistics per group. ``minigan/gan/one_pass.py`` does that; these kernels are its
batch norm.

The numbers are those of ``batch_norm_activation_train_forward_fast`` and
``batch_norm_backward_through_slope_fast`` called once per group, in order:

* the batch (2N, C, H, W) is seen as (groups, N, H, W, C), a view whatever its memory order;
  every per-channel quantity is then (groups, C), and broadcasts over its group only;
* the running statistics are blended once per group, first group first, as the lesson's
  separate calls would blend them (two groups per kernel);
* the backward pass returns dgamma and dbeta per group, (groups, C): the layer adds them to its
  gradients one group after the other, as separate backward passes would have (two groups in
  one kernel).

What it buys: per batch norm, one call of each kernel for all the groups (one more for the
running statistics, and with more than two groups, one more per pair of groups), where
separate calls launch all of them per group.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import fuse, get_array_module, is_cupy_array
from minigan.ops.batchnorm import (
    BatchNormCache,
    blend_running_stats,
    centered_and_squares,
    variance_and_inv_std,
)
from minigan.ops.batchnorm_activation import (
    channels_last,
    from_channels_last,
    input_grad_through_slope,
    normalize_scale_shift_activation,
)
from minigan.ops.layout import column_means, column_sums

Array = Any


def batch_norm_activation_train_forward_by_groups(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float, momentum: float, negative_slope: float, groups: int, across: Any = None,
) -> tuple[Array, BatchNormCache, Array, Array, Array]:
    """``batch_norm_activation_train_forward_fast`` with statistics per group of the batch.

    x: (groups * n, C) or (groups * n, C, H, W), the groups one after the other along the batch
    -> y, the cache (x_hat as (groups, n, [H, W,] C); mean, var, inv_std as (groups, C)), the
    activation's slope, and the running mean and variance after one blend per group.
    ``across``: as in ``batch_norm_activation_train_forward_fast`` (each group's statistics
    are then summed over the processes).
    """
    xp = get_array_module(x)
    dtype = x.dtype.type
    view = by_groups(channels_last(x), groups)              # (G, n, [H, W,] C)
    m = view[0].size // x.shape[1] * (1 if across is None else across.size)  # per group

    if is_cupy_array(x):   # CuPy's einsum copies its operands first: products instead
        rows = _group_rows(xp, view)
        if across is None:
            mean = column_means(rows)
        else:
            mean = across.allreduce_sum(column_sums(rows)) / dtype(m)
        centered, squares = centered_and_squares(view, per_group(mean, view.ndim))
        sum_of_squares = column_sums(_group_rows(xp, squares))
    else:
        each = _subscripts(view)
        mean = xp.einsum(f"{each},->gc", view, dtype(1 / m))           # this process's share
        if across is not None:
            mean = across.allreduce_sum(mean)
        centered = view - per_group(mean, view.ndim)
        sum_of_squares = xp.einsum(f"{each},{each}->gc", centered, centered)
    if across is not None:
        sum_of_squares = across.allreduce_sum(sum_of_squares)

    var, inv_std = variance_and_inv_std(sum_of_squares, dtype(m), dtype(eps))
    blend = dtype(1 - momentum), dtype(momentum), dtype(m / (m - 1))
    for first in range(0, groups, 2):   # first group first, as separate calls blend them
        if first + 1 < groups:          # two groups in one kernel
            running_mean, running_var = blend_running_stats_twice(
                running_mean, running_var, mean[first], var[first], mean[first + 1],
                var[first + 1], *blend)
        else:
            running_mean, running_var = blend_running_stats(
                running_mean, running_var, mean[first], var[first], *blend)

    x_hat, y, slope = normalize_scale_shift_activation(
        centered, per_group(inv_std, view.ndim), gamma, beta, negative_slope)
    cache = BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var, m=m,
                           training=True, groups=groups)
    return (from_channels_last(ungroup(y)), cache, from_channels_last(ungroup(slope)),
            running_mean, running_var)


def batch_norm_backward_through_slope_by_groups(
    dy: Array, slope: Array, cache: BatchNormCache, across: Any = None,
) -> tuple[Array, Array, Array]:
    """``batch_norm_backward_through_slope_fast`` with statistics per group (``cache.groups``).

    -> dx (shaped like dy, channels-last), dgamma and dbeta per group, (groups, C): this
    process's share of each group's sums, as in the one-group kernel.
    """
    xp = get_array_module(dy)
    dy_v = by_groups(channels_last(dy), cache.groups)
    slope_v = by_groups(channels_last(slope), cache.groups)
    x_hat = cache.x_hat
    if is_cupy_array(dy):   # as the one-group kernel: products instead of einsum
        dz = slope_v * dy_v
        dbeta = column_sums(_group_rows(xp, dz))
        dgamma = column_sums(_group_rows(xp, dz * x_hat))
    else:
        each = _subscripts(x_hat)
        dbeta = xp.einsum(f"{each},{each}->gc", dy_v, slope_v)
        dgamma = xp.einsum(f"{each},{each},{each}->gc", dy_v, slope_v, x_hat)
    sum_dgamma, sum_dbeta = dgamma, dbeta
    if across is not None:
        groups = cache.groups
        sums = across.allreduce_sum(xp.concatenate([dgamma, dbeta]))
        sum_dgamma, sum_dbeta = sums[:groups], sums[groups:]
    dx = input_grad_through_slope(slope_v, dy_v, x_hat, cache.gamma,
                                  per_group(cache.inv_std, x_hat.ndim),
                                  per_group(sum_dgamma, x_hat.ndim),
                                  per_group(sum_dbeta, x_hat.ndim), x_hat.dtype.type(cache.m))
    return from_channels_last(ungroup(dx)), dgamma, dbeta


@fuse
def blend_running_stats_twice(running_mean, running_var, first_mean, first_var, second_mean,
                              second_var, keep, momentum, unbiased):
    """``blend_running_stats`` with one batch's statistics and then the next one's: the same
    lines, twice, in one kernel."""
    mean = keep * running_mean + momentum * first_mean
    var = keep * running_var + momentum * (first_var * unbiased)
    return keep * mean + momentum * second_mean, keep * var + momentum * (second_var * unbiased)


@fuse
def add_two_groups_gradients(grad_gamma, grad_beta, dgamma_first, dbeta_first, dgamma_second,
                             dbeta_second):
    """gamma's and beta's gradients of two groups added into their ``.grad``, in place, the
    first group's first (as two backward passes would add them): one kernel for four adds."""
    grad_gamma += dgamma_first
    grad_gamma += dgamma_second
    grad_beta += dbeta_first
    grad_beta += dbeta_second


def by_groups(a: Array, groups: int) -> Array:
    """(groups * n, ...) -> (groups, n, ...): the batch axis split, a view in any memory order."""
    return a.reshape(groups, a.shape[0] // groups, *a.shape[1:])


def ungroup(a: Array) -> Array:
    """The inverse of ``by_groups``: (groups, n, ...) -> (groups * n, ...)."""
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def per_group(stat: Array, ndim: int) -> Array:
    """(groups, C) -> (groups, 1, ..., 1, C) with ``ndim`` axes: a view that broadcasts each
    group's numbers over that group's values only."""
    return stat.reshape(stat.shape[0], *(1,) * (ndim - 2), stat.shape[-1])


def _subscripts(view: Array) -> str:
    """The einsum subscripts of a grouped array: "gnc" or "gnhwc"."""
    return "gnc" if view.ndim == 3 else "gnhwc"


def _group_rows(xp: Any, view: Array) -> Array:
    """(groups, n, [H, W,] C) -> (groups, m, C), a copy only where the view's memory is not in
    that order (a product's input: the matrix-vector products read rows)."""
    return xp.ascontiguousarray(view).reshape(view.shape[0], -1, view.shape[-1])

