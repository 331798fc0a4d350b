"""Losses on logits: the same numbers as the textbook formulas, without their overflows.

For moderate logits, binary cross-entropy and softmax cross-entropy must agree with the naive
formulas written straight from their definitions. For huge logits (a discriminator that is very
sure of itself produces them) the naive formulas give inf or nan, while the stable forms used by
minigan stay finite, exact and silent. And, as for every op, the gradient agrees with finite
differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.losses import (
    bce_with_logits_backward,
    bce_with_logits_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from minigan.ops.reference import bce_with_logits_reference, softmax_cross_entropy_reference
from tests.helpers import random_array, seeds

shapes = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3).map(tuple)
batch_and_classes = st.tuples(st.integers(1, 6), st.integers(2, 5))


# --- binary cross-entropy -------------------------------------------------------------------


@given(shape=shapes, seed=seeds)
def test_bce_matches_the_naive_formula(shape, seed):
    rng = np.random.default_rng(seed)
    x, t = 3 * rng.standard_normal(shape), rng.uniform(0, 1, shape)  # soft targets are allowed
    loss, _ = bce_with_logits_forward(to_device(x), to_device(t))
    assert loss.shape == ()
    np.testing.assert_allclose(float(loss), bce_with_logits_reference(x, t), rtol=1e-10)


@given(shape=shapes, seed=seeds)
def test_bce_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    x, t = random_array(rng, shape), to_device(rng.uniform(0, 1, shape))

    def forward(x):  # the targets are data, not something we differentiate
        return bce_with_logits_forward(x, t)

    assert check_op(forward, bce_with_logits_backward, x) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_is_exact_for_huge_logits(dtype):
    # Very confident and wrong costs about |x|; very confident and right costs about 0.
    x = to_device(np.array([1000.0, -1000.0, 100.0, -100.0, 1000.0], dtype=dtype))
    t = to_device(np.array([0.0, 1.0, 0.0, 1.0, 1.0], dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow or log(0) would raise here
        loss, cache = bce_with_logits_forward(x, t)
        dx = bce_with_logits_backward(1.0, cache)
    np.testing.assert_allclose(float(loss), (1000 + 1000 + 100 + 100 + 0) / 5, rtol=1e-6)
    # d loss / dx = (sigmoid(x) - t) / n: +-1/5 when wrong, 0 when right.
    np.testing.assert_allclose(to_numpy(dx), [0.2, -0.2, 0.2, -0.2, 0.0], atol=1e-7)


def test_bce_logit_1000_target_0_costs_1000():
    loss, _ = bce_with_logits_forward(to_device(np.array([1000.0])), to_device(np.array([0.0])))
    assert float(loss) == pytest.approx(1000.0)
    with np.errstate(over="ignore", divide="ignore"):
        # what the stable form avoids:
        assert bce_with_logits_reference(np.array([1000.0]), np.array([0.0])) == np.inf


# --- softmax cross-entropy ------------------------------------------------------------------


@given(nk=batch_and_classes, seed=seeds)
def test_softmax_cross_entropy_matches_the_naive_formula(nk, seed):
    rng = np.random.default_rng(seed)
    n, k = nk
    z, labels = 3 * rng.standard_normal((n, k)), rng.integers(0, k, n)
    loss, _ = softmax_cross_entropy_forward(to_device(z), to_device(labels))
    assert loss.shape == ()
    np.testing.assert_allclose(float(loss), softmax_cross_entropy_reference(z, labels), rtol=1e-10)


@given(nk=batch_and_classes, seed=seeds)
def test_softmax_cross_entropy_gradient(nk, seed):
    rng = np.random.default_rng(seed)
    n, k = nk
    z, labels = random_array(rng, (n, k)), to_device(rng.integers(0, k, n))

    def forward(z):
        return softmax_cross_entropy_forward(z, labels)

    assert check_op(forward, softmax_cross_entropy_backward, z) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_exact_for_huge_logits(dtype):
    z = to_device(np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], dtype=dtype))
    labels = to_device(np.array([0, 2]))  # right with certainty, then wrong by 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = softmax_cross_entropy_forward(z, labels)
        dz = softmax_cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(float(loss), (0 + 2000) / 2, rtol=1e-6)
    # (softmax - one_hot) / N: the softmax is [1, 0, 0] in both rows.
    np.testing.assert_allclose(to_numpy(dz), [[0, 0, 0], [0.5, 0, -0.5]], atol=1e-7)


def test_softmax_cross_entropy_rejects_bad_labels():
    z = to_device(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels"):
        softmax_cross_entropy_forward(z, to_device(np.array([0, 3])))
    with pytest.raises(ValueError, match="integer"):
        softmax_cross_entropy_forward(z, to_device(np.array([0.0, 1.0])))


# --- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dloss", [1.0, np.float64(2.0), np.array(1.0)])
def test_float32_stays_float32(dloss, rng):
    x = random_array(rng, (4, 3), dtype=np.float32)
    targets = to_device(np.full((4, 3), 0.9))  # float64 targets must not promote float32 logits
    labels = to_device(np.array([0, 2, 1, 1]))
    loss, cache = bce_with_logits_forward(x, targets)
    dx = bce_with_logits_backward(dloss, cache)
    ce_loss, ce_cache = softmax_cross_entropy_forward(x, labels)
    dz = softmax_cross_entropy_backward(dloss, ce_cache)
    assert [a.dtype for a in (loss, dx, ce_loss, dz)] == [np.float32] * 4
