"""The fully connected layer, y = x @ w.T + b, and its three gradients.

The idea: a backward pass is right when it agrees with finite differences of the forward pass.
Hypothesis draws the batch size and the layer's widths; ``check_op`` perturbs every input entry
and compares. A second test pins the forward pass to the formula itself, and a third shows that
float32 stays float32 all the way through.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_numpy
from minigan.gradcheck import check_op
from minigan.ops.linear import linear_backward, linear_forward
from tests.helpers import random_array, seeds

sizes = st.integers(min_value=1, max_value=5)


@given(n=sizes, d_in=sizes, d_out=sizes, bias=st.booleans(), seed=seeds)
def test_gradients_match_finite_differences(n, d_in, d_out, bias, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (n, d_in))
    w = random_array(rng, (d_out, d_in))  # PyTorch layout: (out_features, in_features)
    b = random_array(rng, (d_out,)) if bias else None
    assert check_op(linear_forward, linear_backward, x, w, b) < 1e-6


def test_forward_is_the_affine_formula(rng):
    x, w, b = random_array(rng, (4, 3)), random_array(rng, (2, 3)), random_array(rng, (2,))
    y, _ = linear_forward(x, w, b)
    xn, wn, bn = to_numpy(x), to_numpy(w), to_numpy(b)
    expected = np.array([[sum(xn[i, k] * wn[j, k] for k in range(3)) + bn[j] for j in range(2)]
                         for i in range(4)])
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-12)


def test_without_bias_or_weight_gradient(rng):
    x, w = random_array(rng, (4, 3)), random_array(rng, (2, 3))
    y, cache = linear_forward(x, w)
    dy = random_array(rng, y.shape)
    dx, dw, db = linear_backward(dy, cache)
    assert db is None and dw.shape == w.shape
    # A frozen layer (say, D while G trains) still passes the gradient on, but computes no dw.
    dx_frozen, dw, db = linear_backward(dy, cache, need_weight_grad=False)
    assert dw is None and db is None
    np.testing.assert_array_equal(to_numpy(dx_frozen), to_numpy(dx))


def test_float32_stays_float32(rng):
    x, w, b = (random_array(rng, s, dtype=np.float32) for s in [(4, 3), (2, 3), (2,)])
    y, cache = linear_forward(x, w, b)
    dx, dw, db = linear_backward(random_array(rng, y.shape, dtype=np.float32), cache)
    assert [a.dtype for a in (y, dx, dw, db)] == [np.float32] * 4
