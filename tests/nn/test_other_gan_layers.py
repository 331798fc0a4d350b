"""The layers that adversarial training beyond DCGAN adds: GradientReversal, LogSumExp and
FeatureMatchingLoss, each checked against finite differences like every other layer.

The gradient-reversal layer is the interesting one: it is the identity, yet its backward pass
is *not* the identity's. A finite-difference check of the layer alone would fail (the true
derivative of the identity is +1); what it implements is "the gradient of -scale times the
identity", so that is what it is checked against. Inside a network, its effect is that the
parameters below it get exactly -scale times the gradient they would get without it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import nn, ops
from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.gradcheck import check_module, gradcheck
from tests.helpers import random_array

TOLERANCE = 1e-6
seeds = st.integers(0, 2**16)


@pytest.fixture(autouse=True)
def float64_layers():
    set_default_dtype(np.float64)   # restored by conftest after each test


class MinusScale(nn.Module):
    """y = -scale * x: the function whose true gradient GradientReversal's backward returns."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return -self.scale * x

    def backward(self, dy):
        return -self.scale * dy


@given(n=st.integers(1, 4), d=st.integers(1, 6), scale=st.floats(0.01, 3.0), seed=seeds)
def test_gradient_reversal_backward_is_minus_scale_times_dy(n, d, scale, seed):
    layer = nn.GradientReversal(scale)
    x = random_array(np.random.default_rng(seed), (n, d))
    assert layer(x) is x                                   # forward: the identity, no copy
    dy = random_array(np.random.default_rng(seed + 1), (n, d))
    np.testing.assert_allclose(to_numpy(layer.backward(dy)), -scale * to_numpy(dy), rtol=0)

    # The check: GradientReversal's backward is the true gradient of y = -scale * x.
    class ReversedBackward(nn.Module):
        def forward(self, x):
            return MinusScale(scale)(x)

        def backward(self, dy):
            layer(x)
            return layer.backward(dy)

    assert check_module(ReversedBackward(), x) < TOLERANCE


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_reversal_inside_a_network(seed):
    """Features -> reversal -> domain head: the head's gradient is unchanged, and the feature
    layer's gradient is exactly -scale times what it would be without the reversal, which is
    what the gradient check of the same network with an explicit -scale layer confirms."""
    rng = np.random.default_rng(seed)
    features = nn.Linear(5, 4, rng=rng)
    head = nn.Linear(4, 2, rng=rng)
    x = random_array(rng, (3, 5))
    dy = random_array(rng, (3, 2))

    def gradients(middle):
        net = nn.Sequential(features, nn.Tanh(), middle, head)
        net.zero_grad()
        net(x)
        dx = net.backward(dy)
        return [to_numpy(g).copy() for g in (dx, features.weight.grad, head.weight.grad)]

    plain_dx, plain_feature_grad, plain_head_grad = gradients(nn.GradientReversal(0.0))
    dx, feature_grad, head_grad = gradients(nn.GradientReversal(0.7))
    identity = gradients(MinusScale(-1.0))  # y = x, an honest identity
    np.testing.assert_allclose(head_grad, identity[2], rtol=1e-12)
    np.testing.assert_allclose(feature_grad, -0.7 * identity[1], rtol=1e-12)
    np.testing.assert_allclose(dx, -0.7 * identity[0], rtol=1e-12)
    assert not plain_dx.any() and not plain_feature_grad.any()   # scale 0: nothing flows back
    np.testing.assert_allclose(plain_head_grad, identity[2], rtol=1e-12)

    net = nn.Sequential(features, nn.Tanh(), MinusScale(0.7), head)   # what reversal computes
    assert check_module(net, x) < TOLERANCE


def test_gradient_reversal_keeps_float32():
    layer = nn.GradientReversal(0.5)
    x = to_device(np.ones((2, 3), dtype=np.float32))
    assert layer.backward(layer(x)).dtype == np.float32


@pytest.mark.parametrize("scale", [-0.1, float("nan")])
def test_gradient_reversal_refuses_a_negative_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        nn.GradientReversal(scale)
    layer = nn.GradientReversal()
    with pytest.raises(ValueError, match="scale"):
        layer.scale = scale


def test_gradient_reversal_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.GradientReversal().backward(to_device(np.ones(2)))


@given(n=st.integers(1, 4), k=st.integers(1, 5), seed=seeds)
def test_logsumexp_layer(n, k, seed):
    assert check_module(nn.LogSumExp(), random_array(np.random.default_rng(seed), (n, k))) \
        < TOLERANCE


@given(n_real=st.integers(1, 4), n_fake=st.integers(1, 4), d=st.integers(1, 5), seed=seeds)
def test_feature_matching_loss_module(n_real, n_fake, d, seed):
    rng = np.random.default_rng(seed)
    real, fake = random_array(rng, (n_real, d)), random_array(rng, (n_fake, d))
    criterion = nn.FeatureMatchingLoss()

    def forward():
        return np.asarray(criterion(real, fake))

    def backward(dloss):   # the generator's gradient: the real features are data
        criterion(real, fake)
        return [criterion.backward(float(dloss))]

    assert gradcheck(forward, backward, [fake]) < TOLERANCE
    criterion(real, fake)
    d_fake = to_numpy(criterion.backward())
    _, cache = ops.feature_matching_forward(real, fake)
    np.testing.assert_array_equal(d_fake, to_numpy(ops.feature_matching_backward(1.0, cache)[1]))


def test_feature_matching_loss_refuses_mismatched_widths():
    with pytest.raises(nn.ShapeError, match="FeatureMatchingLoss"):
        nn.FeatureMatchingLoss()(to_device(np.zeros((2, 3))), to_device(np.zeros((2, 4))))
