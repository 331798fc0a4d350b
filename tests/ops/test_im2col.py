"""im2col and col2im: a convolution's windows as the rows of a matrix, and the adjoint that puts
them back.

Three ideas are checked here:

* im2col is a *copy*: every entry of its output is one pixel of the padded input, at the place
  the documented layout says (compared with a plain loop over the windows);
* col2im is the *adjoint* (transpose) of im2col: for every x and every cols,
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
from minigan.ops.im2col import col2im, conv_output_size, im2col
from minigan.ops.layout import channels_last_view, to_rows
from tests.helpers import random_array


@st.composite
def geometries(draw):
    """A small image shape (N, C, H, W) and a kernel size, stride and padding that fit it."""
    K = draw(st.integers(1, 4))
    S = draw(st.integers(1, 3))
    P = draw(st.integers(0, 2))
    N = draw(st.integers(1, 2))
    C = draw(st.integers(1, 3))
    H = draw(st.integers(max(1, K - 2 * P), 7))
    W = draw(st.integers(max(1, K - 2 * P), 7))
    return (N, C, H, W), K, S, P


def windows_by_loop(x: np.ndarray, K: int, S: int, P: int) -> np.ndarray:
    """The documented layout, spelled out: one row per output pixel, columns in (i, j, c)."""
    N, C, H, W = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    H_out, W_out = conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)
    rows = []
    for n in range(N):
        for ho in range(H_out):
            for wo in range(W_out):
                window = x_pad[n, :, S * ho:S * ho + K, S * wo:S * wo + K]   # (C, K, K)
                rows.append(window.transpose(1, 2, 0).reshape(-1))          # (i, j, c) order
    return np.array(rows)


@given(geometries())
def test_im2col_copies_each_window_into_a_row(geometry):
    shape, K, S, P = geometry
    x = random_array(np.random.default_rng(0), shape)
    cols = im2col(x, K, S, P)
    N, C, H, W = shape
    assert cols.shape == (N * conv_output_size(H, K, S, P) * conv_output_size(W, K, S, P),
                          K * K * C)
    np.testing.assert_array_equal(to_numpy(cols), windows_by_loop(to_numpy(x), K, S, P))


@given(geometries(), st.integers(0, 2**32 - 1))
def test_col2im_is_the_adjoint_of_im2col(geometry, seed):
    """<im2col(x), c> == <x, col2im(c)> for random x and c."""
    shape, K, S, P = geometry
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    cols = im2col(x, K, S, P)
    c = random_array(rng, cols.shape)
    lhs = float(to_numpy(cols * c).sum())
    rhs = float(to_numpy(x * col2im(c, shape, K, S, P)).sum())
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
