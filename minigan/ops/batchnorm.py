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

Per-channel arrays (mean, variance, gamma, ...) are kept shaped (1, C) or (1, C, 1, 1) inside the
kernels, so that they broadcast against x without any index juggling.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class BatchNormCache(NamedTuple):
    """What the backward pass and the running-statistics update need.

    Per-channel arrays are shaped to broadcast against x: (1, C) or (1, C, 1, 1).
    """

    x_hat: Array     # normalised input, shaped like x
    gamma: Array     # the scale, broadcastable
    inv_std: Array   # 1 / sqrt(var + eps), broadcastable
    mean: Array      # training: the batch mean mu_B; eval: the running mean
    var: Array       # training: the biased batch variance sigma2_B; eval: the running variance
    m: int           # number of values per channel: N, or N * H * W
    training: bool   # which formula produced y (and so which backward applies)


def _channel_layout(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes to reduce over and the broadcastable shape of a per-channel array."""
    if x.ndim == 2:                                   # (N, C)
        return (0,), (1, x.shape[1])
    if x.ndim == 4:                                   # (N, C, H, W)
        return (0, 2, 3), (1, x.shape[1], 1, 1)
    raise ValueError(f"batch norm expects input of shape (N, C) or (N, C, H, W), "
                     f"got {tuple(x.shape)}")


def batch_norm_forward(
    x: Array, gamma: Array, beta: Array, eps: float = 1e-5,
) -> tuple[Array, BatchNormCache]:
    """Training-mode batch norm: normalise each channel with the batch's own statistics.

    x: (N, C) or (N, C, H, W); gamma, beta: (C,)  ->  y: shaped like x
    y = gamma * (x - mu_B) / sqrt(sigma2_B + eps) + beta, with mu_B and sigma2_B (biased) taken
    per channel over N (and H, W).
    """
    xp = get_array_module(x)
    axes, shape = _channel_layout(x)
    m = x.size // x.shape[1]
    eps = x.dtype.type(eps)  # a float64 eps must not turn a float32 batch into float64

    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)  # divide by m: the biased variance
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = centered * inv_std
    gamma = gamma.reshape(shape)
    y = gamma * x_hat + beta.reshape(shape)
    return y, BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var,
                             m=m, training=True)


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
    xp = get_array_module(x)
    _, shape = _channel_layout(x)
    eps = x.dtype.type(eps)

    mean = running_mean.reshape(shape)
    var = running_var.reshape(shape)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    gamma = gamma.reshape(shape)
    y = gamma * x_hat + beta.reshape(shape)
    return y, BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var,
                             m=x.size // x.shape[1], training=False)


def batch_norm_backward(dy: Array, cache: BatchNormCache) -> tuple[Array, Array, Array]:
    """Gradients of batch norm, in whichever mode the cache was made.

    dy: shaped like x  ->  dx: shaped like x; dgamma, dbeta: (C,)
    dbeta  = sum of dy over N (and H, W)        since y = gamma * x_hat + beta
    dgamma = sum of dy * x_hat over N (and H, W)
    dx     = eval mode:     gamma * inv_std * dy
             training mode: (gamma * inv_std / m) * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))
    """
    axes, shape = _channel_layout(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * cache.x_hat).sum(axis=axes)

    if not cache.training:
        # The running statistics are constants, so x -> y is a per-channel affine map.
        return cache.gamma * cache.inv_std * dy, dgamma, dbeta

    # Training mode: mu_B and sigma2_B are themselves functions of every x in the channel, so
    # each x_i reaches the loss along three paths: directly, through mu_B and through sigma2_B.
    # With s = inv_std = (sigma2_B + eps)**(-1/2), the chain rule gives
    #   dx_hat   = gamma * dy
    #   dsigma2  = sum_i dx_hat_i * (x_i - mu_B) * (-1/2) * s**3
    #   dmu      = -s * sum_i dx_hat_i  (+ dsigma2 * mean(-2 (x_i - mu_B)), which is 0)
    #   dx_i     = dx_hat_i * s + dsigma2 * 2 (x_i - mu_B) / m + dmu / m
    # and substituting x_i - mu_B = x_hat_i / s collapses the three terms into one line:
    #   dx_i     = (gamma * s / m) * (m * dy_i - sum_j dy_j - x_hat_i * sum_j dy_j * x_hat_j)
    # where the two sums are exactly dbeta and dgamma, reshaped to broadcast.
    m = cache.m
    sum_dy = dbeta.reshape(shape)
    sum_dy_xhat = dgamma.reshape(shape)
    dx = (cache.gamma * cache.inv_std / m) * (m * dy - sum_dy - cache.x_hat * sum_dy_xhat)
    return dx, dgamma, dbeta


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
    if not cache.training:
        raise ValueError("update_running_stats needs the cache of a training-mode forward pass")
    if cache.m < 2:
        raise ValueError("the unbiased variance needs more than one value per channel, got "
                         f"m = {cache.m}")
    dtype = running_mean.dtype
    momentum = dtype.type(momentum)  # keep the buffers' dtype, whatever type momentum comes in
    keep = 1 - momentum
    batch_mean = cache.mean.reshape(running_mean.shape).astype(dtype)
    unbiased_var = (cache.var.reshape(running_var.shape) * (cache.m / (cache.m - 1))).astype(dtype)
    new_mean = keep * running_mean + momentum * batch_mean
    new_var = keep * running_var + momentum * unbiased_var
    return new_mean, new_var
