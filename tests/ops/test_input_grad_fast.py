"""The fast input gradient of a convolution: two ways to the plain kernel's sums, and the choice.

``conv2d_input_grad_fast`` (``minigan/ops/input_grad_fast.py``) takes the sub-pixel way
(``subpixel.py``, tested in ``test_subpixel.py``) or the blocked way: the plain product, then
col2im's adds S_h x S_w kernel offsets at a time, into an image that starts as the bias. The
tests show:

* ``conv2d_input_grad_blocked`` gives the same numbers as the col2im formula (plus the bias, if
  given), for every geometry drawn; both ways keep the dtype, with channels-last memory;
* the rule, ``subpixel_pays``, on the course DCGAN's layers: the blocked way for the 4 x 4 -> 8 x 8
  layers, and for the RGB ones where BLAS runs one thread; the sub-pixel way for 8 x 8 -> 16 x 16
  and for layers whose gradient has fewer than 32 channels;
* counted by ``minigan.opcount`` (a model of a GPU's launches), the same layer takes the
  sub-pixel way, with the same numbers, and fewer operations;
* a dy of the wrong shape is a clear error, for both ways.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from minigan.backend import is_cupy_array, to_numpy
from minigan.opcount import count_array_ops
from minigan.ops.input_grad_fast import (
    conv2d_input_grad_blocked,
    conv2d_input_grad_fast,
    subpixel_pays,
)
from minigan.ops.subpixel import conv2d_input_grad_subpixel
from tests.helpers import conv_geometries, random_array, two_blas_threads
from tests.ops.test_subpixel import case, make_dy_and_w, plain_input_grad


def with_bias(dx, bias):
    """The plain sums plus a bias at every pixel, as a transposed convolution adds it."""
    return dx if bias is None else dx + bias.reshape(1, -1, 1, 1)


@example(case((1, 2, 6, 6), (2, 2, 3, 3), 2, 0), False, False)   # (6-3) % 2 = 1: a last row
                                                                 # and column that get nothing
@example(case((1, 1, 7, 5), (1, 1, 1, 1), 3, 0), False, True)    # K < S: blocks of one offset
@example(case((2, 3, 8, 8), (3, 3, 4, 4), 2, 1), True, True)     # the DCGAN layer
@example(case((1, 2, 1, 1), (1, 2, 1, 1), 1, 2), False, True)    # P >= K: the bias only
@example(case((1, 2, 5, 9), (3, 2, 1, 7), 1, (0, 3)), True, False)   # Inception-v3's 1 x 7
@example(case((1, 2, 7, 6), (2, 2, 3, 4), (2, 3), (1, 0)), False, True)   # per axis
@given(st.booleans().flatmap(
    lambda rectangular: conv_geometries(max_kernel=5, max_size=9, rectangular=rectangular)),
    st.booleans(), st.booleans())
def test_blocked_equals_the_col2im_definition(geometry, channels_last, biased):
    dy, w = make_dy_and_w(geometry, channels_last=channels_last)
    S, P = geometry["stride"], geometry["padding"]
    bias = random_array(np.random.default_rng(1), (geometry["x"][1],)) if biased else None
    dx = conv2d_input_grad_blocked(dy, w, geometry["x"], S, P, bias)
    assert dx.shape == geometry["x"]
    expected = with_bias(plain_input_grad(dy, w, geometry["x"], S, P), bias)
    np.testing.assert_allclose(to_numpy(dx), to_numpy(expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("way", [conv2d_input_grad_subpixel, conv2d_input_grad_blocked])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_ways_keep_the_dtype_and_memory_is_channels_last(way, dtype):
    geometry = case((2, 3, 8, 8), (4, 3, 4, 4), 2, 1)
    dy, w = make_dy_and_w(geometry, dtype=dtype)
    dx = way(dy, w, geometry["x"], 2, 1)
    assert dx.dtype == dtype
    # An (N, C, H, W) array whose numbers are stored as (N, H, W, C): the crop of a padded
    # image (8 + 2 * 1 pixels a side), a view, with each row of W * C numbers contiguous.
    nhwc = dx.transpose(0, 2, 3, 1)
    itemsize = np.dtype(dtype).itemsize
    assert nhwc.strides == (10 * 10 * 3 * itemsize, 10 * 3 * itemsize, 3 * itemsize, itemsize)
    assert not dx.flags.c_contiguous   # C = 3 > 1, so the two layouts really differ
    assert to_numpy(dx * 1).transpose(0, 2, 3, 1).flags.c_contiguous   # kept by the next op
    expected = plain_input_grad(dy.astype(np.float64), w.astype(np.float64), geometry["x"], 2, 1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_numpy(dx), to_numpy(expected), rtol=tol, atol=tol)


# The input gradients of the course DCGAN (conv_dim 32), as conv2d_input_grad sees them:
# dy's channels F, dx's channels C, dy's size (dx is twice it), K = 4, S = 2, P = 1; and
# whether the sub-pixel way is taken with BLAS at one thread, and at two.
DCGAN_LAYERS = {
    "G convT 128->64 (D conv 64->128's input gradient)": (128, 64, 4, False, False),
    "G convT 64->32 (D conv 32->64's)": (64, 32, 8, True, True),
    "G convT 32->3 (D conv 3->32's)": (32, 3, 16, False, True),   # narrow: on one thread only
    "conv_dim 4: G convT 16->8": (16, 8, 4, True, True),   # too few channels for the blocked way
    "conv_dim 4: G convT 4->3": (4, 3, 16, True, True),
}


def dcgan_layer(F, C, size, dtype=np.float32):
    rng = np.random.default_rng(0)
    dy = random_array(rng, (2, F, size, size), dtype=dtype)
    return dy, random_array(rng, (F, C, 4, 4), dtype=dtype), (2, C, 2 * size, 2 * size)


@pytest.mark.parametrize("layer", DCGAN_LAYERS)
def test_the_rule_on_the_dcgan_layers(layer):
    F, C, size, one_thread, two_threads = DCGAN_LAYERS[layer]
    dy, w, x_shape = dcgan_layer(F, C, size)
    with threadpool_limits(1, user_api="blas"):
        assert subpixel_pays(dy, w, x_shape, 2) is (one_thread or is_cupy_array(dy))
    with two_blas_threads():
        assert subpixel_pays(dy, w, x_shape, 2) is (two_threads or is_cupy_array(dy))


def test_counted_as_a_gpu_the_4x4_layer_takes_the_subpixel_way_with_the_same_numbers():
    dy, w, x_shape = dcgan_layer(128, 64, 4, dtype=np.float64)
    if is_cupy_array(dy):
        pytest.skip("counts operations on the NumPy backend")
    bias = random_array(np.random.default_rng(2), (64,))
    on_the_cpu = conv2d_input_grad_fast(dy, w, x_shape, 2, 1, bias)
    with count_array_ops() as counter:
        dy_c, w_c, bias_c = (counter_array(a) for a in (dy, w, bias))
        assert subpixel_pays(dy_c, w_c, x_shape, 2)
        conv2d_input_grad_fast(dy_c, w_c, x_shape, 2, 1, bias_c)   # makes the reused buffer
        counter.reset()
        as_on_a_gpu = conv2d_input_grad_fast(dy_c, w_c, x_shape, 2, 1, bias_c)
    # A copy into the zero-bordered buffer, the window copy, the phase weights, the product and
    # the shuffle with the bias; the blocked way would make a copy to rows (dy is NCHW here), the
    # product, the fill and four adds.
    assert counter.total == 5
    np.testing.assert_allclose(np.asarray(as_on_a_gpu), to_numpy(on_the_cpu),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        to_numpy(on_the_cpu), to_numpy(with_bias(plain_input_grad(dy, w, x_shape, 2, 1), bias)),
        rtol=1e-12, atol=1e-12)


def counter_array(a):
    """``a`` as a counted array (made through the counter's stand-in for NumPy)."""
    from minigan.backend import array_module

    return array_module().asarray(a)


@pytest.mark.parametrize("way", [conv2d_input_grad_subpixel, conv2d_input_grad_blocked])
def test_dy_of_the_wrong_shape_is_a_clear_error(way):
    """x (1, 2, 8, 8), K = 4, S = 2, P = 1 gives a 4 x 4 output, so a 5 x 5 dy is a mistake."""
    rng = np.random.default_rng(0)
    dy = random_array(rng, (1, 3, 5, 5))
    w = random_array(rng, (3, 2, 4, 4))
    with pytest.raises(ValueError, match=r"dy has shape \(1, 3, 5, 5\).*\(1, 3, 4, 4\)"):
        way(dy, w, (1, 2, 8, 8), stride=2, padding=1)
