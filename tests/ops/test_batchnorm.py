"""Batch normalization: what it does to each channel, and why its gradient is right.

Four ideas, each a test:

* in training mode every channel of x_hat = (y - beta) / gamma has mean 0 and variance
  sigma2_B / (sigma2_B + eps), which is 1 up to the small bias that eps adds;
* in evaluation mode the output uses the running statistics, so it is a fixed affine map and
  one example's output does not depend on the rest of its batch;
* the running statistics follow PyTorch: momentum 0.1, and the *unbiased* batch variance is what
  goes into running_var (worked out by hand below);
* the backward pass agrees with ``minigan.ops.reference`` (batch norm's Jacobian, written from
  the formulas) and with finite differences, for (N, C) and (N, C, H, W) input, in both modes,
  with the plain kernel (the derivation step by step) and the fast one (the compact formula,
  with the paths through mu_B and sigma2_B folded in).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.ops.batchnorm import (
    batch_norm_backward,
    batch_norm_eval_forward,
    batch_norm_forward,
    update_running_stats,
)
from tests.helpers import helper_test_op, random_array, seeds

# In training mode, shifting a channel's input leaves its output unchanged and scaling it barely
# changes it, so the part of dy along 1 and along x_hat (per channel) is dropped from dx: a dy
# equal to x would give dx ~ 0, and a check would compare rounding noise. gradcheck and
# helper_test_op draw dy from streams of their own (seeded with a tag next to the seed), never
# the numbers of an x drawn from default_rng(seed), so any seed of ``seeds`` is safe.
epsilons = st.sampled_from([1e-5, 1e-3, 0.1])
# At least 3 values per channel. With only 2, x_hat is +-1 whatever x is (up to eps): its
# gradient nearly vanishes and a finite-difference check would measure only rounding noise.
shapes_2d = st.tuples(st.integers(3, 6), st.integers(1, 4))
shapes_4d = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 3), st.integers(2, 3))
shapes = shapes_2d | shapes_4d


def channel_axes(shape):
    """Every axis except the channel axis 1: what each channel's statistics are taken over."""
    return (0,) if len(shape) == 2 else (0, 2, 3)


def channel_params(rng, c):
    """gamma kept away from 0 (we divide by it below), beta anything."""
    return random_array(rng, (c,), low=0.1), random_array(rng, (c,))


@given(shape=shapes, eps=epsilons, seed=seeds)
def test_training_mode_normalises_each_channel(shape, eps, seed):
    rng = np.random.default_rng(seed)
    x_host = 3.0 * rng.standard_normal(shape) + 5.0  # far from mean 0, variance 1 to begin with
    gamma, beta = channel_params(rng, shape[1])
    y, _ = batch_norm_forward(to_device(x_host), gamma, beta, eps=eps)

    bshape = (1, shape[1]) + (1,) * (len(shape) - 2)  # (1, C) or (1, C, 1, 1)
    x_hat = (to_numpy(y) - to_numpy(beta).reshape(bshape)) / to_numpy(gamma).reshape(bshape)
    axes = channel_axes(shape)
    sigma2 = x_host.var(axis=axes)  # the biased batch variance of each channel
    np.testing.assert_allclose(x_hat.mean(axis=axes), 0.0, atol=1e-9)
    # Dividing by sqrt(sigma2 + eps) instead of sqrt(sigma2) leaves the variance a little under 1:
    # exactly sigma2 / (sigma2 + eps), that is 1 - eps / (sigma2 + eps).
    np.testing.assert_allclose(x_hat.var(axis=axes), sigma2 / (sigma2 + eps), rtol=1e-9)
    assert np.all(np.abs(x_hat.var(axis=axes) - 1) <= eps / sigma2 + 1e-9)


@given(shape=shapes, eps=epsilons, seed=seeds)
def test_training_mode_matches_its_reference_and_finite_differences(shape, eps, seed):
    """The plain kernel (the derivation's steps) and the fast one (the collapsed formula), against
    the reference's per-channel Jacobian and against central differences."""
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    gamma, beta = channel_params(rng, shape[1])
    helper_test_op("batch_norm", x, gamma, beta, eps=eps, seed=seed, atol=1e-10)


@given(shape=shapes, eps=epsilons, seed=seeds)
def test_eval_mode_matches_its_reference_and_finite_differences(shape, eps, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    gamma, beta = channel_params(rng, shape[1])
    running_mean = random_array(rng, (shape[1],))
    running_var = to_device(rng.uniform(0.5, 2.0, size=shape[1]))
    # The running statistics are constants, not inputs: passed by name, they are not perturbed.
    helper_test_op("batch_norm", x, gamma, beta, forward_name="batch_norm_eval", seed=seed,
                   running_mean=running_mean, running_var=running_var, eps=eps)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 4)])
def test_eval_mode_uses_running_statistics(shape, rng):
    x = random_array(rng, shape)
    gamma, beta = channel_params(rng, shape[1])
    running_mean = to_device(np.array([0.5, -1.0, 2.0]))
    running_var = to_device(np.array([1.0, 4.0, 0.25]))
    y, _ = batch_norm_eval_forward(x, gamma, beta, running_mean, running_var, eps=1e-5)

    bshape = (1, 3) + (1,) * (len(shape) - 2)
    mean, var, g, b = (to_numpy(a).reshape(bshape)
                       for a in (running_mean, running_var, gamma, beta))
    expected = g * (to_numpy(x) - mean) / np.sqrt(var + 1e-5) + b
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-12)
    # No batch statistics are involved, so the first example alone gives the same output.
    y_first, _ = batch_norm_eval_forward(x[:1], gamma, beta, running_mean, running_var)
    np.testing.assert_allclose(to_numpy(y_first), to_numpy(y)[:1], rtol=1e-12)


def test_running_statistics_worked_by_hand():
    # Two channels, four values each (m = 4):
    #   channel 0: 1, 2, 3, 4  mean 2.5  biased var 5/4  unbiased var 5/3
    #   channel 1: 0, 0, 2, 2  mean 1.0  biased var 1    unbiased var 4/3
    x = to_device(np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 2.0], [4.0, 2.0]]))
    ones, zeros = to_device(np.ones(2)), to_device(np.zeros(2))
    _, cache = batch_norm_forward(x, ones, zeros)
    # Fresh running statistics are mean 0, var 1. With momentum 0.1:
    #   mean: 0.9 * 0 + 0.1 * 2.5 = 0.25         0.9 * 0 + 0.1 * 1 = 0.1
    #   var:  0.9 * 1 + 0.1 * 5/3 = 1.0666...    0.9 * 1 + 0.1 * 4/3 = 1.0333...
    new_mean, new_var = update_running_stats(zeros, ones, cache, momentum=0.1)
    np.testing.assert_allclose(to_numpy(new_mean), [0.25, 0.1], rtol=1e-12)
    np.testing.assert_allclose(to_numpy(new_var), [0.9 + 0.1 * 5 / 3, 0.9 + 0.1 * 4 / 3],
                               rtol=1e-12)


@given(shape=shapes, momentum=st.floats(min_value=0.0, max_value=1.0), seed=seeds)
def test_running_statistics_follow_pytorch_rule(shape, momentum, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    gamma, beta = channel_params(rng, shape[1])
    old_mean = random_array(rng, (shape[1],))
    old_var = to_device(rng.uniform(0.5, 2.0, size=shape[1]))
    _, cache = batch_norm_forward(x, gamma, beta)
    new_mean, new_var = update_running_stats(old_mean, old_var, cache, momentum)

    axes, x_host = channel_axes(shape), to_numpy(x)
    expected_mean = (1 - momentum) * to_numpy(old_mean) + momentum * x_host.mean(axis=axes)
    expected_var = (1 - momentum) * to_numpy(old_var) + momentum * x_host.var(axis=axes, ddof=1)
    np.testing.assert_allclose(to_numpy(new_mean), expected_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(new_var), expected_var, rtol=1e-10)


def test_running_statistics_need_a_training_batch(rng):
    x = random_array(rng, (4, 2))
    ones, zeros = to_device(np.ones(2)), to_device(np.zeros(2))
    _, eval_cache = batch_norm_eval_forward(x, ones, zeros, zeros, ones)
    with pytest.raises(ValueError, match="training-mode"):
        update_running_stats(zeros, ones, eval_cache)
    _, one_row_cache = batch_norm_forward(x[:1], ones, zeros)
    with pytest.raises(ValueError, match="more than one value"):
        update_running_stats(zeros, ones, one_row_cache)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 4)])
def test_float32_stays_float32(shape, rng):
    f32 = np.float32
    x, dy = random_array(rng, shape, dtype=f32), random_array(rng, shape, dtype=f32)
    gamma, beta = to_device(np.ones(3, dtype=f32)), to_device(np.zeros(3, dtype=f32))
    # eps and momentum as float64 NumPy scalars, the kind that would promote if used as they are
    y, cache = batch_norm_forward(x, gamma, beta, eps=np.float64(1e-5))
    dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    mean, var = update_running_stats(beta, gamma, cache, momentum=np.float64(0.1))
    y_eval, eval_cache = batch_norm_eval_forward(x, gamma, beta, mean, var, eps=np.float64(1e-5))
    dx_eval, dgamma_eval, dbeta_eval = batch_norm_backward(dy, eval_cache)
    outputs = (y, dx, dgamma, dbeta, mean, var, y_eval, dx_eval, dgamma_eval, dbeta_eval)
    assert [a.dtype for a in outputs] == [f32] * len(outputs)
    assert dgamma.shape == dbeta.shape == mean.shape == var.shape == (3,)


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 4, 5)])
def test_eval_fast_variant_equals_the_plain_lines_and_works_out_x_hat_when_asked(shape):
    """batch_norm_eval_forward_fast (one fused scale-and-shift, no x_hat kept) gives the plain
    forward's y, and its cache gives the plain x_hat and the same gradients, whichever backward
    reads it."""
    from minigan.ops import fast_kernels
    from minigan.ops.batchnorm import BatchNormEvalFastCache

    rng = np.random.default_rng(7)
    x, dy = random_array(rng, shape) * 3 + 1, random_array(rng, shape)
    gamma, beta, mean = (random_array(rng, (3,)) for _ in range(3))
    var = to_device(rng.uniform(0.5, 2.0, 3))
    outputs = {}
    for fast in (False, True):
        with fast_kernels(fast):
            outputs[fast] = batch_norm_eval_forward(x, gamma, beta, mean, var)
    (y_plain, plain), (y_fast, cache) = outputs[False], outputs[True]
    assert isinstance(cache, BatchNormEvalFastCache) and not cache.training
    np.testing.assert_allclose(to_numpy(y_fast), to_numpy(y_plain), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(cache.x_hat), to_numpy(plain.x_hat), rtol=1e-12,
                               atol=1e-12)
    expected = batch_norm_backward(dy, plain)
    for fast in (False, True):
        with fast_kernels(fast):
            grads = batch_norm_backward(dy, cache)
        for got, want in zip(grads, expected):
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)
