"""Every layer's backward pass, checked against finite differences.

``check_module`` perturbs the input and each parameter of a layer, one element (or one random
direction) at a time, and compares the change of ``sum(layer(x) * dy)`` with what
``layer.backward(dy)`` put into ``dx`` and ``Parameter.grad``. Hypothesis draws the shapes, so each
layer is checked on many sizes, strides and paddings, not one hand-picked case. Everything runs in
float64: in float32 the rounding error is larger than the signal being measured.
"""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minigan import nn
from minigan.backend import set_default_dtype, to_device
from minigan.gradcheck import check_module, gradcheck
from tests.helpers import random_array

TOLERANCE = 1e-6
small = st.integers(min_value=1, max_value=3)


@pytest.fixture(autouse=True)
def float64_layers():
    set_default_dtype(np.float64)   # restored by conftest after each test


def away_from_zero(shape, seed):
    """Inputs kept at least 0.05 from 0, where ReLU-type functions have a kink."""
    return random_array(np.random.default_rng(seed), shape, low=0.05)


@given(n=st.integers(1, 4), d_in=st.integers(1, 6), d_out=st.integers(1, 5), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_linear(n, d_in, d_out, bias, seed):
    layer = nn.Linear(d_in, d_out, bias=bias, rng=np.random.default_rng(seed))
    assert check_module(layer, away_from_zero((n, d_in), seed)) < TOLERANCE


@given(n=st.integers(1, 2), c_in=small, c_out=small, k=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 1), size=st.integers(3, 6),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d(n, c_in, c_out, k, stride, padding, size, bias, seed):
    layer = nn.Conv2d(c_in, c_out, k, stride, padding, bias=bias, rng=np.random.default_rng(seed))
    assert check_module(layer, away_from_zero((n, c_in, size, size), seed)) < TOLERANCE


@given(n=st.integers(1, 2), c_in=small, c_out=small, kernel=st.tuples(small, small),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 1), st.integers(0, 1)), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_conv2d_with_rectangular_kernels_strides_and_paddings(n, c_in, c_out, kernel, stride,
                                                               padding, bias, seed):
    """(h, w) pairs, as torch.nn.Conv2d takes them: e.g. a 1 x 3 kernel with padding (0, 1)."""
    layer = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias,
                      rng=np.random.default_rng(seed))
    assert layer.weight.shape == (c_out, c_in, *kernel)
    assert check_module(layer, away_from_zero((n, c_in, 4, 5), seed)) < TOLERANCE


@given(n=st.integers(1, 2), c_in=small, c_out=small, k=st.integers(1, 4),
       stride=st.integers(1, 2), padding=st.integers(0, 1), output_padding=st.integers(0, 1),
       size=st.integers(2, 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_transpose2d(n, c_in, c_out, k, stride, padding, output_padding, size, bias, seed):
    output_padding = min(output_padding, stride - 1)
    if (size - 1) * stride - 2 * padding + k + output_padding < 1:
        return  # no output pixels for this combination
    layer = nn.ConvTranspose2d(c_in, c_out, k, stride, padding, output_padding, bias=bias,
                               rng=np.random.default_rng(seed))
    assert check_module(layer, away_from_zero((n, c_in, size, size), seed)) < TOLERANCE


@given(n=st.integers(1, 2), c_in=small, c_out=small, kernel=st.tuples(small, small),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_conv_transpose2d_with_rectangular_kernels_and_strides(n, c_in, c_out, kernel, stride,
                                                               bias, seed):
    layer = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding=(1, 0),
                               output_padding=(stride[0] - 1, 0), bias=bias,
                               rng=np.random.default_rng(seed))
    assert layer.weight.shape == (c_in, c_out, *kernel)
    assert check_module(layer, away_from_zero((n, c_in, 3, 2), seed)) < TOLERANCE


# In training mode batch norm needs at least 3 values per channel for a meaningful check: with
# two, x_hat is +-1 whatever x is, so dL/dx is ~0 and the check would compare rounding noise.
# For the same reason gamma stays away from 0: dL/dx is gamma times the rest, and a gamma of
# 4e-5 (seed 116) made the relative error of that tiny gradient 1.3e-6, rounding noise.
@given(n=st.integers(3, 5), c=small, seed=st.integers(0, 2**16), training=st.booleans())
@example(n=4, c=1, seed=116, training=False)
def test_batchnorm1d(n, c, seed, training):
    layer = nn.BatchNorm1d(c).train(training)
    layer.weight.data = away_from_zero((c,), seed + 1)
    layer.bias.data = random_array(np.random.default_rng(seed + 2), (c,))
    assert check_module(layer, away_from_zero((n, c), seed)) < TOLERANCE


@given(n=st.integers(1, 3), c=small, h=st.integers(1, 4), seed=st.integers(0, 2**16),
       training=st.booleans())
def test_batchnorm2d(n, c, h, seed, training):
    if training and n * h * (h + 1) < 3:
        return  # see test_batchnorm1d: too few values per channel to check
    layer = nn.BatchNorm2d(c).train(training)
    layer.weight.data = away_from_zero((c,), seed + 1)   # see test_batchnorm1d
    assert check_module(layer, away_from_zero((n, c, h, h + 1), seed)) < TOLERANCE


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.LeakyReLU(1.5), nn.Tanh(),
                                   nn.Sigmoid(), nn.Flatten(), nn.Reshape(3, 2, 2)],
                         ids=repr)
@given(n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_parameterless_layers(layer, n, seed):
    assert check_module(layer, away_from_zero((n, 12), seed).reshape(n, 3, 4)) < TOLERANCE


@given(p=st.sampled_from([0.1, 0.5, 0.8]), seed=st.integers(0, 2**16))
def test_dropout_with_a_fixed_mask(p, seed):
    layer = nn.Dropout(p)

    class SameMaskEachCall(nn.Module):
        """Reseed before each forward, so finite differences see one fixed mask."""

        def forward(self, x):
            layer.rng = np.random.default_rng(seed)
            return layer(x)

        def backward(self, dy):
            return layer.backward(dy)

    assert check_module(SameMaskEachCall(), away_from_zero((3, 7), seed)) < TOLERANCE


def discriminator_like(seed):
    """A small network shaped like the DCGAN discriminator (conv, BN, LeakyReLU, linear)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 4, stride=2, padding=1, rng=rng), nn.LeakyReLU(0.2),
        nn.Conv2d(4, 8, 4, stride=2, padding=1, bias=False, rng=rng), nn.BatchNorm2d(8),
        nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 1, rng=rng),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_whole_discriminator_end_to_end(seed):
    """One check through every layer at once: errors anywhere in the chain would show up."""
    net = discriminator_like(seed)
    x = random_array(np.random.default_rng(seed), (4, 3, 8, 8))
    assert check_module(net, x, mode="elementwise") < TOLERANCE
    assert check_module(net, x, mode="directional", directions=8) < TOLERANCE


def test_a_small_generator_end_to_end():
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Linear(5, 8 * 2 * 2, rng=rng), nn.Reshape(8, 2, 2),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False, rng=rng),
        nn.BatchNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1, rng=rng), nn.Tanh(),
    )
    assert check_module(net, random_array(rng, (3, 5))) < TOLERANCE


@pytest.mark.parametrize("loss_cls", [nn.BCEWithLogitsLoss, nn.CrossEntropyLoss])
def test_loss_modules(loss_cls):
    """A loss returns a float; its backward(dloss) returns d loss / d logits."""
    rng = np.random.default_rng(0)
    logits = random_array(rng, (5, 3))
    if loss_cls is nn.BCEWithLogitsLoss:
        target = to_device(rng.uniform(0, 1, (5, 3)))
    else:
        target = to_device(np.array([0, 2, 1, 1, 0]))
    criterion = loss_cls()

    def forward():
        return np.asarray(criterion(logits, target))

    def backward(dloss):
        criterion(logits, target)
        return [criterion.backward(float(dloss))]

    assert gradcheck(forward, backward, [logits]) < TOLERANCE
