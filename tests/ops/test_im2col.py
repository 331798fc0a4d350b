"""im2col and col2im: a convolution's windows as the rows of a matrix, and the adjoint that puts
them back.

Three ideas are checked here:

* im2col is a *copy*: every entry of its output is one pixel of the padded input, at the place
  the documented layout says (compared with ``im2col_reference``, a loop over the windows),
  with the plain kernel (a slice per kernel offset) and the fast one (one copy of a view);
* col2im is the *adjoint* (transpose) of im2col, plain (an add per kernel offset) and fast:
  for every x and every cols,
  ``<im2col(x), cols> == <x, col2im(cols)>``. That single identity is why col2im is the right
  tool for the backward pass: the gradient of ``L = <im2col(x), G>`` with respect to x is
  ``col2im(G)``;
* col2im of all-ones counts, for each pixel, how many windows cover it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.ops import fast_kernels
from minigan.ops.im2col import col2im, conv_output_size, im2col, pair
from minigan.ops.layout import channels_last_view, to_rows
from minigan.ops.reference import im2col_reference
from tests.helpers import conv_geometries, random_array


@st.composite
def geometries(draw, rectangular: bool = False):
    """A small image shape (N, C, H, W) and a kernel size, stride and padding that fit it.

    Square (ints) by default; with ``rectangular=True`` each is an (h, w) pair drawn per axis.
    """
    geometry = draw(conv_geometries(rectangular=rectangular))
    kernel_size = geometry["w"][2:] if rectangular else geometry["w"][2]
    return geometry["x"], kernel_size, geometry["stride"], geometry["padding"]


kernel_paths = pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])


@kernel_paths
@given(geometry=st.booleans().flatmap(lambda rectangular: geometries(rectangular)))
def test_im2col_copies_each_window_into_a_row(fast, geometry):
    """Against ``im2col_reference``, which reads the windows one at a time."""
    shape, K, S, P = geometry
    x = random_array(np.random.default_rng(0), shape)
    with fast_kernels(fast):
        cols = im2col(x, K, S, P)
    N, C, H, W = shape
    (KH, KW), (SH, SW), (PH, PW) = pair(K), pair(S), pair(P)
    assert cols.shape == (N * conv_output_size(H, KH, SH, PH) * conv_output_size(W, KW, SW, PW),
                          KH * KW * C)
    np.testing.assert_array_equal(to_numpy(cols), to_numpy(im2col_reference(x, K, S, P)))


def test_fast_im2col_reuses_its_padded_buffer_without_stale_or_shared_numbers():
    """im2col_fast copies padded images into a zero-bordered buffer kept per shape. The same
    padded shape (1, 8, 8, 2) comes from a 6 x 6 image with padding 1 and a 4 x 4 one with
    padding 2; each must see zeros in its own border, and no result may change afterwards."""
    rng = np.random.default_rng(0)
    calls = [(random_array(rng, (1, 2, 6, 6)), 3, 1, 1), (random_array(rng, (1, 2, 4, 4)), 3, 1, 2),
             (random_array(rng, (1, 2, 6, 6)), 3, 1, 1),
             (random_array(rng, (1, 2, 3, 3)), 1, 1, 1),    # K = 1: the window view is all of
             (random_array(rng, (1, 2, 3, 3)), 1, 1, 1)]    # the buffer, yet cols is a copy
    with fast_kernels(True):
        results = [im2col(x, K, S, P) for x, K, S, P in calls]
    expected = [to_numpy(im2col_reference(x, K, S, P)) for x, K, S, P in calls]
    for cols, want in zip(results, expected):
        np.testing.assert_array_equal(to_numpy(cols), want)



@kernel_paths
@given(geometry=st.booleans().flatmap(lambda rectangular: geometries(rectangular)),
       seed=st.integers(0, 2**32 - 1))
def test_col2im_is_the_adjoint_of_im2col(fast, geometry, seed):
    """<im2col(x), c> == <x, col2im(c)> for random x and c."""
    shape, K, S, P = geometry
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    with fast_kernels(fast):
        cols = im2col(x, K, S, P)
        c = random_array(rng, cols.shape)
        back = col2im(c, shape, K, S, P)
    lhs = float(to_numpy(cols * c).sum())
    rhs = float(to_numpy(x * back).sum())
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


def test_col2im_of_ones_counts_the_windows_covering_each_pixel():
    """A 3 x 3 kernel, stride 1, padding 1 on a 4 x 4 image: the corners are in 4 windows, the
    other border pixels in 6, the inner pixels in all 9."""
    shape = (1, 1, 4, 4)
    ones = to_device(np.ones((16, 9)))
    counts = to_numpy(col2im(ones, shape, kernel_size=3, stride=1, padding=1))[0, 0]
    expected = np.array([[4, 6, 6, 4],
                         [6, 9, 9, 6],
                         [6, 9, 9, 6],
                         [4, 6, 6, 4]])
    np.testing.assert_array_equal(counts, expected)


def test_col2im_of_ones_with_a_1x3_kernel_counts_along_rows_only():
    """A 1 x 3 kernel, stride 1, padding (0, 1) on a 2 x 4 image: each row on its own, the end
    pixels in 2 windows and the others in 3; rows never share a window."""
    shape = (1, 1, 2, 4)
    ones = to_device(np.ones((2 * 4, 3)))
    counts = to_numpy(col2im(ones, shape, kernel_size=(1, 3), stride=1, padding=(0, 1)))[0, 0]
    np.testing.assert_array_equal(counts, [[2, 3, 3, 2], [2, 3, 3, 2]])


def test_windows_that_do_not_overlap_make_col2im_the_inverse_of_im2col():
    """With stride == kernel size (and the image an exact multiple of it) every pixel is in
    exactly one window, so putting the windows back gives the image back."""
    x = random_array(np.random.default_rng(1), (2, 3, 6, 4))
    cols = im2col(x, kernel_size=2, stride=2)
    np.testing.assert_array_equal(to_numpy(col2im(cols, x.shape, kernel_size=2, stride=2)),
                                  to_numpy(x))


def test_rows_layout_round_trips():
    x = random_array(np.random.default_rng(2), (2, 3, 4, 5))
    rows = to_rows(x)
    assert rows.shape == (2 * 4 * 5, 3)
    np.testing.assert_array_equal(to_numpy(rows[7]), to_numpy(x[0, :, 1, 2]))   # pixel (0, 1, 2)
    np.testing.assert_array_equal(to_numpy(channels_last_view(rows, x.shape)), to_numpy(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = random_array(np.random.default_rng(3), (2, 3, 5, 5), dtype=dtype)
    cols = im2col(x, 3, 2, 1)
    assert cols.dtype == dtype
    assert col2im(cols, x.shape, 3, 2, 1).dtype == dtype


def test_a_kernel_larger_than_the_padded_image_is_a_clear_error():
    x = random_array(np.random.default_rng(4), (1, 1, 2, 2))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        im2col(x, kernel_size=5, padding=1)
