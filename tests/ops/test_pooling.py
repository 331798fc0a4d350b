"""Pooling: a window slides over each channel and keeps its maximum or its mean.

* the kernels (a loop over the K*K window offsets, one strided slice each) agree with
  ``pooling_reference``, a loop over output pixels, for every shape, stride and padding drawn;
* their backward passes agree with finite differences;
* max pooling sends all of a window's gradient to its maximum; on ties, to the first one;
* ``count_include_pad=False`` (the FID Inception network's choice) divides a border window by
  the pixels it really covers, which the hand-worked corner example shows;
* global average pooling is the mean of each channel.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from minigan.ops.pooling_reference import avg_pool2d_reference, max_pool2d_reference
from tests.helpers import random_array


@st.composite
def pool_geometries(draw):
    """x (N, C, H, W), a window K, stride S and padding P <= K // 2 with at least one output."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    K, S = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    P = draw(st.integers(0, K // 2))
    H = draw(st.integers(max(1, K - 2 * P), 7))
    W = draw(st.integers(max(1, K - 2 * P), 7))
    return dict(x=(N, C, H, W), kernel_size=K, stride=S, padding=P,
                seed=draw(st.integers(0, 2**32 - 1)))


def distinct_values(case, dtype=np.float64):
    """Entries 0.1 apart in a random order: no two tie, and a finite-difference step of 1e-6
    cannot change which entry of a window is the largest."""
    rng = np.random.default_rng(case["seed"])
    size = int(np.prod(case["x"]))
    return to_device((rng.permutation(size) * 0.1 - size * 0.05).reshape(case["x"]).astype(dtype))


def geometry(case):
    return dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"])


@given(pool_geometries())
def test_max_pool_matches_the_loop_definition(case):
    x = distinct_values(case)
    y, _ = max_pool2d_forward(x, **geometry(case))
    N, C, H, W = case["x"]
    K, S, P = case["kernel_size"], case["stride"], case["padding"]
    assert y.shape == (N, C, (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(max_pool2d_reference(x, **geometry(case))))


@given(pool_geometries(), st.booleans())
def test_avg_pool_matches_the_loop_definition(case, count_include_pad):
    x = random_array(np.random.default_rng(case["seed"]), case["x"])
    y, _ = avg_pool2d_forward(x, **geometry(case), count_include_pad=count_include_pad)
    expected = avg_pool2d_reference(x, **geometry(case), count_include_pad=count_include_pad)
    np.testing.assert_allclose(to_numpy(y), to_numpy(expected), rtol=1e-12, atol=1e-12)


@given(pool_geometries())
def test_max_pool_backward_matches_finite_differences(case):
    err = check_op(max_pool2d_forward, max_pool2d_backward, distinct_values(case),
                   **geometry(case))
    assert err < 1e-6


@given(pool_geometries(), st.booleans())
def test_avg_pool_backward_matches_finite_differences(case, count_include_pad):
    x = random_array(np.random.default_rng(case["seed"]), case["x"])
    err = check_op(avg_pool2d_forward, avg_pool2d_backward, x, **geometry(case),
                   count_include_pad=count_include_pad)
    assert err < 1e-6


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5),
       st.integers(0, 2**32 - 1))
def test_global_avg_pool_is_the_channel_mean_and_its_gradient_checks(N, C, H, W, seed):
    x = random_array(np.random.default_rng(seed), (N, C, H, W))
    y, _ = global_avg_pool_forward(x)
    assert y.shape == (N, C)
    loop = np.array([[to_numpy(x)[n, c].sum() / (H * W) for c in range(C)] for n in range(N)])
    np.testing.assert_allclose(to_numpy(y), loop, rtol=1e-12, atol=1e-12)
    assert check_op(global_avg_pool_forward, global_avg_pool_backward, x) < 1e-6


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    """A 2x2 window of equal values: PyTorch gives the whole gradient to the top-left one."""
    x = to_device(np.ones((1, 1, 2, 2)))
    y, cache = max_pool2d_forward(x, kernel_size=2)
    dx = max_pool2d_backward(to_device(np.array([[[[5.0]]]])), cache)
    np.testing.assert_array_equal(to_numpy(dx), [[[[5.0, 0.0], [0.0, 0.0]]]])


def test_count_include_pad_false_averages_only_real_pixels_at_a_corner():
    """3x3 window, stride 1, padding 1 on a 3x3 image of ones: every window's real pixels average
    to exactly 1 with count_include_pad=False; with True the corner sees 4 ones in 9 places."""
    x = to_device(np.ones((1, 1, 3, 3)))
    real_only, _ = avg_pool2d_forward(x, 3, stride=1, padding=1, count_include_pad=False)
    with_pad, _ = avg_pool2d_forward(x, 3, stride=1, padding=1, count_include_pad=True)
    np.testing.assert_allclose(to_numpy(real_only), np.ones((1, 1, 3, 3)), rtol=1e-15)
    np.testing.assert_allclose(to_numpy(with_pad)[0, 0],
                               [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1.0, 6 / 9], [4 / 9, 6 / 9, 4 / 9]],
                               rtol=1e-15)


def test_stride_defaults_to_the_kernel_size():
    x = to_device(np.arange(16.0).reshape(1, 1, 4, 4))
    y, _ = max_pool2d_forward(x, kernel_size=2)
    np.testing.assert_array_equal(to_numpy(y), [[[[5.0, 7.0], [13.0, 15.0]]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_is_dtype_out(dtype):
    x = random_array(np.random.default_rng(0), (2, 3, 6, 6), dtype=dtype)
    for forward, backward in [(max_pool2d_forward, max_pool2d_backward),
                              (avg_pool2d_forward, avg_pool2d_backward)]:
        y, cache = forward(x, 3, stride=2, padding=1)
        dx = backward(random_array(np.random.default_rng(1), y.shape, dtype), cache)
        assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    y, cache = global_avg_pool_forward(x)
    assert y.dtype == global_avg_pool_backward(y, cache).dtype == dtype


def test_bad_geometry_is_a_clear_error():
    x = to_device(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="at most half the kernel"):
        max_pool2d_forward(x, 2, padding=2)
    with pytest.raises(ValueError, match="smaller than the pooling window"):
        avg_pool2d_forward(x, 5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        max_pool2d_forward(to_device(np.zeros((4, 4))), 2)


@given(pool_geometries(), st.booleans(), st.booleans())
@example({"x": (1, 2, 1, 1), "kernel_size": 2, "stride": 1, "padding": 1, "seed": 0}, True, False)
def test_max_pool_fast_variant_equals_the_plain_kernel(case, channels_last, ties):
    """max_pool2d_forward_fast / _backward_fast (a running maximum in place, no argmax; the
    maxima found again in backward) give the plain kernel's maxima and gradients, ties included
    (integers 0..2: many equal entries per window), and keep a channels-last input's memory
    order. A cache from one path works with the other path's backward."""
    from minigan.ops import fast_kernels

    rng = np.random.default_rng(case["seed"])
    N, C, H, W = case["x"]
    values = rng.integers(0, 3, (N, H, W, C)) if ties else rng.standard_normal((N, H, W, C))
    x = to_device(values.astype(np.float64)).transpose(0, 3, 1, 2)   # channels-last memory
    if not channels_last:
        x = to_device(np.ascontiguousarray(to_numpy(x)))
    results = {}
    for fast in (False, True):
        with fast_kernels(fast):
            y, cache = max_pool2d_forward(x, **geometry(case))
            dy = to_device(rng.standard_normal(y.shape))
            results[fast] = y, cache, dy
    for fast_forward in (False, True):
        y, cache, dy = results[fast_forward]
        for fast_backward in (False, True):
            with fast_kernels(fast_backward):
                dx = max_pool2d_backward(results[False][2], cache)
            with fast_kernels(False):
                expected = max_pool2d_backward(results[False][2], results[False][1])
            np.testing.assert_array_equal(to_numpy(dx), to_numpy(expected))
        np.testing.assert_array_equal(to_numpy(y), to_numpy(results[False][0]))
    y_fast = results[True][0]
    # An input of one pixel (H = W = 1) is in both memory orders, and the kernel takes it as
    # NCHW: only an input that is channels-last and nothing else must give one back.
    if channels_last and C > 1 and H * W > 1 and y_fast.shape[2] * y_fast.shape[3] > 1:
        assert y_fast.transpose(0, 2, 3, 1).flags.c_contiguous   # still channels-last


@given(pool_geometries(), st.booleans(), st.booleans())
def test_avg_pool_fast_variant_equals_the_plain_kernel(case, channels_last, include_pad):
    """avg_pool2d_forward_fast (x's memory order, sums and division in place) gives the plain
    kernel's numbers exactly, and keeps a channels-last input channels-last."""
    from minigan.ops import fast_kernels

    rng = np.random.default_rng(case["seed"])
    N, C, H, W = case["x"]
    x = to_device(rng.standard_normal((N, H, W, C))).transpose(0, 3, 1, 2)
    if not channels_last:
        x = to_device(np.ascontiguousarray(to_numpy(x)))
    outputs = {}
    for fast in (False, True):
        with fast_kernels(fast):
            outputs[fast] = avg_pool2d_forward(x, **geometry(case),
                                               count_include_pad=include_pad)
    np.testing.assert_array_equal(to_numpy(outputs[True][0]), to_numpy(outputs[False][0]))
    np.testing.assert_array_equal(to_numpy(outputs[True][1].count),
                                  to_numpy(outputs[False][1].count))
    y = outputs[True][0]
    if channels_last and C > 1 and y.shape[2] * y.shape[3] > 1:
        assert y.transpose(0, 2, 3, 1).flags.c_contiguous
