"""conv2d: a convolution as one matrix product, checked against its definition and calculus.

* the kernel (im2col + one matrix product), with the fast and with the plain kernels, agrees
  with ``conv2d_forward_reference`` / ``conv2d_backward_reference``, plain loops over output
  pixels, and its backward pass with finite differences, for every shape, stride and padding
  drawn, rectangular ones included (a KH x KW kernel, (h, w) strides and paddings: Inception-v3's
  1 x 7 and 7 x 1 layers). ``helper_test_op`` does all of that in one line;
* its output size follows H_out = (H + 2P - K) // S + 1, per axis;
* a hand-worked example: a [-1, 0, 1] filter measures horizontal change.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.ops.conv2d import Conv2dCache, conv2d_backward, conv2d_forward
from minigan.ops.im2col import pair
from tests.helpers import conv_geometries, helper_test_op, random_array


def make_inputs(case, bias=True, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = random_array(rng, case["x"], dtype=dtype)
    w = random_array(rng, case["w"], dtype=dtype)
    b = random_array(rng, case["w"][:1], dtype=dtype) if bias else None
    return x, w, b


def case(x, w, stride, padding, seed=0):
    return dict(x=x, w=w, stride=stride, padding=padding, seed=seed)


# Inception-v3's rectangular layers, which hypothesis might not draw exactly:
INCEPTION_CASES = [
    case((1, 2, 5, 9), (3, 2, 1, 7), 1, (0, 3)),     # 1 x 7, "same" padding along W only
    case((1, 2, 9, 5), (3, 2, 7, 1), 1, (3, 0)),     # 7 x 1
    case((2, 1, 4, 6), (2, 1, 1, 3), (1, 2), (0, 1)),   # 1 x 3 with a stride along W only
    case((1, 3, 6, 4), (2, 3, 3, 1), (2, 1), (1, 0)),   # 3 x 1 with a stride along H only
]


def with_examples(test):
    """Each Inception case as an explicit example, with and without a bias in turn."""
    for index, example_case in enumerate(INCEPTION_CASES):
        test = example(example_case, index % 2 == 0)(test)
    return test


@with_examples
@given(conv_geometries(rectangular=True), st.booleans())
def test_kernel_matches_its_reference_and_finite_differences(case, bias):
    """Forward and backward, fast and plain kernels, against the loops of
    ``minigan.ops.reference`` and against central differences (dx, dw and db when there is a
    bias)."""
    x, w, b = make_inputs(case, bias=bias)
    helper_test_op("conv2d", x, w, b, stride=case["stride"], padding=case["padding"])


@given(conv_geometries(rectangular=True))
def test_output_size_follows_the_rule_per_axis(case):
    x, w, b = make_inputs(case)
    S, P = case["stride"], case["padding"]
    y, _ = conv2d_forward(x, w, b, stride=S, padding=P)
    N, C, H, W = case["x"]
    F, _, KH, KW = case["w"]
    (SH, SW), (PH, PW) = pair(S), pair(P)
    assert y.shape == (N, F, (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1)


@given(conv_geometries(rectangular=True))
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
    assert cache.x_shape == (2, 3, 5, 5) and cache.stride == (2, 2) and cache.padding == (1, 1)


def test_a_1x3_kernel_only_looks_along_the_row():
    """A (1, 3) kernel [-1, 0, 1] with padding (0, 1): each output is x[w + 1] - x[w - 1], with
    zeros past the ends; the rows never mix, and the output keeps the input's size."""
    x = to_device(np.array([[[[0.0, 1.0, 4.0, 9.0],
                              [2.0, 2.0, 2.0, 2.0]]]]))           # (1, 1, 2, 4)
    w = to_device(np.array([[[[-1.0, 0.0, 1.0]]]]))            # (1, 1, 1, 3)
    y, _ = conv2d_forward(x, w, padding=(0, 1))
    np.testing.assert_array_equal(to_numpy(y), [[[[1.0, 4.0, 8.0, -4.0],
                                                   [2.0, 0.0, 0.0, -2.0]]]])


def test_rectangular_output_size_follows_the_rule_per_axis():
    """H: (10 + 2*3 - 7) // 2 + 1 = 5;  W: (9 + 2*0 - 1) // 1 + 1 = 9."""
    x, w, b = make_inputs(case((1, 2, 10, 9), (4, 2, 7, 1), (2, 1), (3, 0)))
    y, cache = conv2d_forward(x, w, b, stride=(2, 1), padding=(3, 0))
    assert y.shape == (1, 4, 5, 9)
    assert cache.cols.shape == (5 * 9, 7 * 1 * 2)


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
