"""Exercise: batch normalization, training and evaluation modes, and the running statistics.

Each channel c is normalised on its own, over all the values it takes in the batch: the N rows
of an (N, C) input, or the N * H * W pixels of an (N, C, H, W) input. Call that count m.

Training mode normalises with the statistics of the batch itself:

    mu_B      = (1/m) sum_i x_i                       batch mean
    sigma2_B  = (1/m) sum_i (x_i - mu_B)**2           batch variance (biased: divides by m)
    x_hat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)   mean 0, variance ~1 in every channel
    y_i       = gamma * x_hat_i + beta                learnable scale and shift per channel

Evaluation mode uses the running statistics instead of mu_B and sigma2_B, so the output of one
example no longer depends on the rest of its batch; it is then an affine map per channel.

The running statistics follow PyTorch: momentum 0.1, and the *unbiased* batch variance
m / (m - 1) * sigma2_B goes into ``running_var``.

The grader checks both forward passes against these formulas, both backward passes against
finite differences, for (N, C) and (N, C, H, W) inputs, and the running statistics against
PyTorch's rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class BatchNormCache(NamedTuple):
    """What the backward pass and the running-statistics update need (change it as you like)."""

    x_hat: Array     # the normalised input, shaped like x
    gamma: Array     # the scale, (C,)
    inv_std: Array   # 1 / sqrt(var + eps), (C,)
    mean: Array      # training: the batch mean mu_B; eval: the running mean; (C,)
    var: Array       # training: the biased batch variance sigma2_B; eval: the running variance
    m: int           # number of values per channel: N, or N * H * W
    training: bool   # which formula produced y (and so which backward applies)


def channel_axes(x: Array) -> tuple[int, ...]:
    """(0,) for (N, C) input, (0, 2, 3) for (N, C, H, W): the axes a channel's statistics are
    taken over. (Given: not an exercise.)"""
    return (0,) if x.ndim == 2 else (0, 2, 3)


def per_channel(v: Array, ndim: int) -> Array:
    """(C,) -> (1, C) or (1, C, 1, 1), so that it broadcasts against x. (Given.)"""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(
    x: Array, gamma: Array, beta: Array, eps: float = 1e-5, across: Any = None,
) -> tuple[Array, BatchNormCache]:
    """Training-mode batch norm: normalise each channel with the batch's own statistics.

    x: (N, C) or (N, C, H, W); gamma, beta: (C,)  ->  y: shaped like x
    y = gamma * (x - mu_B) / sqrt(sigma2_B + eps) + beta, with mu_B and sigma2_B (biased) taken
    per channel over N (and H, W).
    ``across`` is None except in training on several processes (minigan/nn/sync_batchnorm.py,
    which refuses a kernel that ignores it): you may leave it out of your code.
    """
    xp = get_array_module(x)  # noqa: F841
    # Hint: the statistics of each channel over the axes channel_axes gives, shaped so that
    # they broadcast (per_channel); then the formula line by line. Which variance, biased or
    # unbiased, and does float32 stay float32?
    raise NotImplementedError("batch_norm_forward: write me")


def batch_norm_eval_forward(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
    eps: float = 1e-5,
) -> tuple[Array, BatchNormCache]:
    """Evaluation-mode batch norm: normalise with the running statistics.

    x: (N, C) or (N, C, H, W); gamma, beta, running_mean, running_var: (C,)  ->  y: shaped like x
    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
    """
    # Hint: the same normalisation as training mode, with the running statistics in place of
    # the batch's; the cache says which mode made it.
    raise NotImplementedError("batch_norm_eval_forward: write me")


def batch_norm_backward(
    dy: Array, cache: BatchNormCache, across: Any = None,
) -> tuple[Array, Array, Array]:
    """Gradients of batch norm, in whichever mode the cache was made (``across``: as for the
    forward pass).

    dy: shaped like x  ->  dx: shaped like x; dgamma, dbeta: (C,)
    dbeta  = sum of dy over N (and H, W)        since y = gamma * x_hat + beta
    dgamma = sum of dy * x_hat over N (and H, W)
    dx     = eval mode:     gamma * inv_std * dy
             training mode: the chain rule along the three paths from x to the loss
    """
    # Hint: in evaluation mode x -> y is an affine map; in training mode each x_i reaches the
    # loss three ways (directly, through mu_B, through sigma2_B): derive it step by step.
    raise NotImplementedError("batch_norm_backward: write me")


def update_running_stats(
    running_mean: Array, running_var: Array, cache: BatchNormCache, momentum: float = 0.1,
) -> tuple[Array, Array]:
    """Blend a training batch's statistics into the running ones (PyTorch's rule).

    running_mean, running_var: (C,)  ->  new_running_mean, new_running_var: (C,), same dtype
    new_mean = (1 - momentum) * running_mean + momentum * mu_B
    new_var  = (1 - momentum) * running_var  + momentum * m / (m - 1) * sigma2_B
    """
    # Hint: a blend of old and new, weighted by momentum; the running variance estimates the
    # variance of the whole data set. Return new arrays (the layer stores them).
    raise NotImplementedError("update_running_stats: write me")
