"""Bilinear resizing, as pytorch-fid brings images to Inception-v3's 299x299.

* the kernel (two interpolation matrices, y = A_h x A_w^T) agrees with
  ``resize_bilinear_reference``, which mixes each output pixel's four neighbours in a loop;
* its backward pass (the transposes) agrees with finite differences;
* a constant image stays constant, and a hand-worked 2 -> 4 upsampling shows where the output
  pixels sit (centres aligned, clamped at the border);
* with torch installed (never a dependency), it matches ``torch.nn.functional.interpolate(...,
  mode="bilinear", align_corners=False)``, including 32 -> 299.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.pooling_reference import resize_bilinear_reference
from minigan.ops.resize import resize_bilinear_backward, resize_bilinear_forward
from tests.helpers import random_array

sizes = st.integers(1, 9)


@given(st.integers(1, 2), st.integers(1, 2), sizes, sizes, sizes, sizes, st.integers(0, 2**32 - 1))
def test_resize_matches_the_loop_and_finite_differences(N, C, H, W, H_out, W_out, seed):
    x = random_array(np.random.default_rng(seed), (N, C, H, W))
    y, _ = resize_bilinear_forward(x, (H_out, W_out))
    assert y.shape == (N, C, H_out, W_out)
    np.testing.assert_allclose(to_numpy(y), to_numpy(resize_bilinear_reference(x, (H_out, W_out))),
                               rtol=1e-12, atol=1e-12)
    err = check_op(resize_bilinear_forward, resize_bilinear_backward, x, size=(H_out, W_out))
    assert err < 1e-6


def test_a_constant_image_stays_constant():
    x = to_device(np.full((1, 1, 5, 3), 0.25))
    y, _ = resize_bilinear_forward(x, (11, 8))
    np.testing.assert_allclose(to_numpy(y), 0.25, rtol=1e-15)


def test_doubling_two_pixels_by_hand():
    """Input [0, 1] to 4 pixels: they sit at src = -0.25 (clamped to 0), 0.25, 0.75, 1.25 ->
    values 0, 0.25, 0.75 and 1 (the last one past the end, so h1 = h0 = 1)."""
    x = to_device(np.array([[[[0.0, 1.0]]]]))
    y, _ = resize_bilinear_forward(x, (1, 4))
    np.testing.assert_allclose(to_numpy(y).ravel(), [0.0, 0.25, 0.75, 1.0], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_is_dtype_out(dtype):
    x = random_array(np.random.default_rng(0), (2, 3, 4, 4), dtype=dtype)
    y, cache = resize_bilinear_forward(x, (7, 5))
    assert y.dtype == resize_bilinear_backward(y, cache).dtype == dtype


@pytest.mark.parametrize("size_in,size_out", [((32, 32), (299, 299)), ((7, 5), (3, 11)),
                                               ((4, 9), (4, 9))])
def test_matches_torch_interpolate(size_in, size_out):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3) + size_in)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size_out,
                                               mode="bilinear", align_corners=False).numpy()
    y, _ = resize_bilinear_forward(to_device(x), size_out)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-12, atol=1e-12)
    y32, _ = resize_bilinear_forward(to_device(x.astype(np.float32)), size_out)
    np.testing.assert_allclose(to_numpy(y32), expected, rtol=1e-4, atol=1e-5)
