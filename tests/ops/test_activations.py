"""Element-wise activations: each backward pass is dy times the local derivative.

Every activation gets the same two checks. Its gradient agrees with finite differences for
shapes drawn by hypothesis (inputs to ReLU and leaky ReLU are kept at least 1e-3 away from the
kink at 0, where the derivative jumps and a central difference straddling it would be
meaningless). And a float32 input gives float32 outputs and gradients. Sigmoid also has to
survive inputs far outside the range where the textbook formula overflows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from tests.helpers import random_array, seeds

shapes = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4).map(tuple)


@given(shape=shapes, seed=seeds)
def test_relu_gradient(shape, seed):
    x = random_array(np.random.default_rng(seed), shape, low=1e-3)  # stay off the kink at 0
    assert check_op(relu_forward, relu_backward, x) < 1e-6


# A slope of 0 (ReLU) or one finite differences can measure: below about 1e-290, slope * dx
# underflows (Hypothesis once drew 5e-324, where the numeric gradient is exactly 0).
slopes = st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=0.5))


@given(shape=shapes, slope=slopes, seed=seeds)
def test_leaky_relu_gradient(shape, slope, seed):
    x = random_array(np.random.default_rng(seed), shape, low=1e-3)
    assert check_op(leaky_relu_forward, leaky_relu_backward, x, negative_slope=slope) < 1e-6


@given(shape=shapes, seed=seeds)
def test_tanh_gradient(shape, seed):
    x = random_array(np.random.default_rng(seed), shape)
    assert check_op(tanh_forward, tanh_backward, x) < 1e-6


@given(shape=shapes, seed=seeds)
def test_sigmoid_gradient(shape, seed):
    x = random_array(np.random.default_rng(seed), shape)
    assert check_op(sigmoid_forward, sigmoid_backward, x) < 1e-6


def test_forward_values():
    x = to_device(np.array([-2.0, -0.5, 0.0, 0.5, 2.0]))
    np.testing.assert_array_equal(to_numpy(relu_forward(x)[0]), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(to_numpy(leaky_relu_forward(x, 0.2)[0]),
                               [-0.4, -0.1, 0, 0.5, 2], rtol=1e-15)
    np.testing.assert_allclose(to_numpy(tanh_forward(x)[0]), np.tanh(to_numpy(x)), rtol=1e-15)
    np.testing.assert_allclose(to_numpy(sigmoid_forward(x)[0]),
                               1 / (1 + np.exp(-to_numpy(x))), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    # exp(1000) overflows even in float64; the stable form only ever takes exp of -|x|.
    x = to_device(np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = sigmoid_forward(x)
        dx = sigmoid_backward(to_device(np.ones(5, dtype=dtype)), cache)
    y = to_numpy(y)
    assert y[0] == 0.0 and y[2] == 0.5 and y[4] == 1.0
    assert 0 <= y[1] < 1e-40  # sigmoid(-100) = 3.7e-44: tiny, but not a NaN or a warning
    assert np.all(np.isfinite(to_numpy(dx)))


FORWARD_BACKWARD = [
    (relu_forward, relu_backward, {}),
    (leaky_relu_forward, leaky_relu_backward, {"negative_slope": 0.2}),
    (leaky_relu_forward, leaky_relu_backward, {"negative_slope": np.float64(0.2)}),
    (tanh_forward, tanh_backward, {}),
    (sigmoid_forward, sigmoid_backward, {}),
]


@pytest.mark.parametrize("forward, backward, kwargs", FORWARD_BACKWARD)
def test_float32_stays_float32(forward, backward, kwargs, rng):
    x = random_array(rng, (2, 3, 4, 4), dtype=np.float32)
    y, cache = forward(x, **kwargs)
    dx = backward(random_array(rng, y.shape, dtype=np.float32), cache)
    assert y.dtype == np.float32 and dx.dtype == np.float32


def test_relu_fast_variant_equals_the_plain_kernel_with_either_cache():
    """relu_forward_fast keeps y instead of a mask; both backward passes give the plain dx from
    both caches (zeros, negatives and a NaN included: y > 0 exactly where x > 0)."""
    from minigan.ops import fast_kernels

    x = to_device(np.array([[-2.0, -0.0, 0.0, 1e-30, 3.0, np.nan]]))
    dy = to_device(np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]))
    results = {}
    for fast in (False, True):
        with fast_kernels(fast):
            results[fast] = relu_forward(x)
    np.testing.assert_array_equal(to_numpy(results[True][0]), to_numpy(results[False][0]))
    expected = [[0.0, 0.0, 0.0, 4.0, 5.0, 0.0]]
    for _, cache in results.values():
        for fast in (False, True):
            with fast_kernels(fast):
                np.testing.assert_array_equal(to_numpy(relu_backward(dy, cache)), expected)


def test_leaky_relu_fast_backward_lays_dx_out_like_x():
    """leaky_relu_backward_fast: the plain product, written in x's memory order, so that a dy
    in NCHW order (from a Flatten's backward) still gives a channels-last dx when x was
    channels-last (and batch norm's backward then reads it as rows without a copy)."""
    from minigan.ops import fast_kernels

    rng = np.random.default_rng(1)
    x = to_device(rng.standard_normal((2, 4, 3, 5))).transpose(0, 3, 1, 2)   # channels-last
    dy = to_device(rng.standard_normal((2, 5, 4, 3)))                         # NCHW
    results = {}
    for fast in (False, True):
        with fast_kernels(fast):
            _, cache = leaky_relu_forward(x, 0.2)
            results[fast] = leaky_relu_backward(dy, cache)
    np.testing.assert_array_equal(to_numpy(results[True]), to_numpy(results[False]))
    assert results[True].transpose(0, 2, 3, 1).flags.c_contiguous
    assert results[False].flags.c_contiguous           # NumPy's own choice: NCHW
