"""conv2d: a convolution as one matrix product, checked against its definition and calculus.

* the fast kernel (im2col + one matrix product) agrees with ``conv2d_reference``, a plain loop
  over output pixels, for every shape, stride and padding drawn;
* its output size follows H_out = (H + 2P - K) // S + 1;
* its backward pass agrees with finite differences (``minigan.gradcheck``) for x, w and b;
* a hand-worked example: a [-1, 0, 1] filter measures horizontal change.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.conv2d import Conv2dCache, conv2d_backward, conv2d_forward
from minigan.ops.reference import conv2d_reference
from tests.helpers import conv_geometries, random_array


def make_inputs(case, bias=True, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = random_array(rng, case["x"], dtype=dtype)
    w = random_array(rng, case["w"], dtype=dtype)
    b = random_array(rng, case["w"][:1], dtype=dtype) if bias else None
    return x, w, b


@given(conv_geometries())
def test_forward_matches_the_loop_definition(case):
    x, w, b = make_inputs(case)
    S, P = case["stride"], case["padding"]
    y, _ = conv2d_forward(x, w, b, stride=S, padding=P)

    N, C, H, W = case["x"]
    F, _, K, _ = case["w"]
    assert y.shape == (N, F, (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1)
    np.testing.assert_allclose(to_numpy(y), to_numpy(conv2d_reference(x, w, b, S, P)),
                               rtol=1e-12, atol=1e-12)


@given(conv_geometries(), st.booleans())
def test_backward_matches_finite_differences(case, bias):
    """dx, dw and (when there is a bias) db, each element against a central difference."""
    x, w, b = make_inputs(case, bias=bias)
    err = check_op(conv2d_forward, conv2d_backward, x, w, b,
                   stride=case["stride"], padding=case["padding"])
    assert err < 1e-6


@given(conv_geometries())
def test_skipping_the_weight_gradient_gives_the_same_input_gradient(case):
    """The generator step only needs dL/dx through the discriminator: need_weight_grad=False."""
    x, w, b = make_inputs(case)
    y, cache = conv2d_forward(x, w, b, stride=case["stride"], padding=case["padding"])
    dy = random_array(np.random.default_rng(0), y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    dx_only, no_dw, no_db = conv2d_backward(dy, cache, need_weight_grad=False)
    assert no_dw is None and no_db is None
    np.testing.assert_array_equal(to_numpy(dx_only), to_numpy(dx))


def test_no_bias_means_no_bias_gradient():
    x, w, _ = make_inputs(dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), seed=0), bias=False)
    y, cache = conv2d_forward(x, w, None, padding=1)
    dx, dw, db = conv2d_backward(random_array(np.random.default_rng(1), y.shape), cache)
    assert db is None
    assert dx.shape == x.shape and dw.shape == w.shape


def test_the_cache_is_a_named_tuple_of_what_backward_needs():
    x, w, b = make_inputs(dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), seed=0))
    _, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    assert isinstance(cache, Conv2dCache)
    assert cache.x_shape == (2, 3, 5, 5) and cache.stride == 2 and cache.padding == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_is_dtype_out(dtype):
    x, w, b = make_inputs(dict(x=(2, 3, 6, 6), w=(4, 3, 4, 4), seed=0), dtype=dtype)
    y, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dx, dw, db = conv2d_backward(random_array(np.random.default_rng(1), y.shape, dtype), cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_a_difference_filter_measures_horizontal_change():
    """Each row of the filter computes x[w + 2] - x[w]; on a ramp 0, 1, 2, ... that is 2, and the
    three rows add up to 6 at every (valid) position."""
    x = to_device(np.tile(np.arange(6.0), (1, 1, 3, 1)))       # (1, 1, 3, 6), each row 0 .. 5
    w = to_device(np.array([[[[-1.0, 0.0, 1.0],
                              [-1.0, 0.0, 1.0],
                              [-1.0, 0.0, 1.0]]]]))          # (1, 1, 3, 3)
    y, _ = conv2d_forward(x, w)
    np.testing.assert_array_equal(to_numpy(y), np.full((1, 1, 1, 4), 6.0))


def test_channel_mismatch_is_a_clear_error():
    x, w, _ = make_inputs(dict(x=(1, 3, 5, 5), w=(2, 4, 3, 3), seed=0))
    with pytest.raises(ValueError, match="channels"):
        conv2d_forward(x, w)
