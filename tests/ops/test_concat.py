"""Channel concatenation: the outputs of an Inception block's branches, side by side.

Concatenation only places numbers, so its backward pass only cuts: each input gets back the slice
of the gradient where its channels went. Checked against finite differences and by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.concat import concat_backward, concat_forward
from tests.helpers import random_array


def concat_all(*xs, axis=1):
    return concat_forward(list(xs), axis=axis)


def backward_as_tuple(dy, cache):
    return tuple(concat_backward(dy, cache))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 2),
       st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_concat_places_each_input_and_its_gradient_checks(channels, N, size, seed):
    rng = np.random.default_rng(seed)
    xs = [random_array(rng, (N, c, size, size)) for c in channels]
    y, _ = concat_forward(xs)
    assert y.shape == (N, sum(channels), size, size)
    start = 0
    for x, c in zip(xs, channels):
        np.testing.assert_array_equal(to_numpy(y)[:, start:start + c], to_numpy(x))
        start += c
    assert check_op(concat_all, backward_as_tuple, *xs) < 1e-6


def test_backward_cuts_dy_where_the_inputs_went():
    a, b = to_device(np.zeros((1, 1, 1, 1))), to_device(np.zeros((1, 2, 1, 1)))
    _, cache = concat_forward([a, b])
    da, db = concat_backward(to_device(np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)), cache)
    assert to_numpy(da).ravel().tolist() == [1.0]
    assert to_numpy(db).ravel().tolist() == [2.0, 3.0]


def test_other_axis_along_which_to_join():
    a, b = to_device(np.ones((2, 3))), to_device(np.zeros((2, 1)))
    y, cache = concat_forward([a, b], axis=1)
    assert y.shape == (2, 4) and [d.shape for d in concat_backward(y, cache)] == [(2, 3), (2, 1)]


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match="every other axis to agree"):
        concat_forward([to_device(np.zeros((1, 2, 3, 3))), to_device(np.zeros((1, 2, 4, 4)))])
    with pytest.raises(ValueError, match="at least one"):
        concat_forward([])
