"""Inverted dropout: random zeros at training time, the identity at evaluation time.

Dropout is random, so most of its tests are statistical: on a large input, about a fraction p
of the entries are zero, and because the survivors are scaled by 1/(1-p) the mean is unchanged.
The tolerances are five standard errors of the quantity measured: loose enough that an unlucky
seed would not trip them, tight enough to catch a wrong p or a wrong scale. The randomness is also
reproducible: the mask comes from a seeded generator, so the same seed gives the same mask, and
that is what lets the gradient be checked like any other op's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan.backend as backend
from minigan.backend import make_rng, to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops.dropout import dropout_backward, dropout_forward
from tests.helpers import random_array, seeds

shapes = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4).map(tuple)


@given(shape=shapes, p=st.floats(min_value=0.0, max_value=0.9), seed=seeds)
def test_gradient(shape, p, seed):
    x = random_array(np.random.default_rng(seed), shape)

    def forward(x):  # a fresh generator from the same seed: the same mask on every call
        return dropout_forward(x, p, make_rng(seed))

    assert check_op(forward, dropout_backward, x) < 1e-6


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drops_a_fraction_p_and_preserves_the_mean(p):
    n = 200_000
    x = to_device(np.ones(n))
    y = to_numpy(dropout_forward(x, p, make_rng(0))[0])

    dropped = np.mean(y == 0)
    # Each entry is dropped independently with probability p: the fraction dropped has
    # standard error sqrt(p (1 - p) / n), about 0.001 here. Allow 5 of them.
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    # The survivors are all exactly 1 / (1 - p)...
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-15)
    # ...so the mean stays 1 in expectation. One entry has variance p / (1 - p) (0 or 1/(1-p)).
    assert abs(y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)


def test_same_seed_same_mask(rng):
    x = random_array(rng, (8, 16))
    y1, _ = dropout_forward(x, 0.5, make_rng(42))
    y2, _ = dropout_forward(x, 0.5, make_rng(42))
    y3, _ = dropout_forward(x, 0.5, make_rng(43))
    np.testing.assert_array_equal(to_numpy(y1), to_numpy(y2))
    assert not np.array_equal(to_numpy(y1), to_numpy(y3))


def test_generator_moves_on_between_calls(rng):
    # One generator used twice gives two different masks, as a layer needs from step to step.
    x, gen = random_array(rng, (8, 16)), make_rng(0)
    y1, _ = dropout_forward(x, 0.5, gen)
    y2, _ = dropout_forward(x, 0.5, gen)
    assert not np.array_equal(to_numpy(y1), to_numpy(y2))


@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True)])
def test_identity_in_eval_mode_or_with_p_zero(p, training, rng):
    x, dy = random_array(rng, (4, 5)), random_array(rng, (4, 5))
    y, cache = dropout_forward(x, p, make_rng(0), training=training)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x))
    np.testing.assert_array_equal(to_numpy(dropout_backward(dy, cache)), to_numpy(dy))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_rejects_p_outside_0_1(p, rng):
    with pytest.raises(ValueError, match="probability"):
        dropout_forward(random_array(rng, (2, 2)), p, make_rng(0))


def test_float32_stays_float32(rng):
    x = random_array(rng, (4, 5), dtype=np.float32)
    y, cache = dropout_forward(x, np.float64(0.3), make_rng(0))
    dx = dropout_backward(random_array(rng, (4, 5), dtype=np.float32), cache)
    assert y.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.gpu
def test_numpy_and_cupy_draw_the_same_mask():
    x = np.ones((64, 64), dtype=np.float32)
    backend.use_backend("numpy")
    y_cpu, _ = dropout_forward(x, 0.5, make_rng(3))
    backend.use_backend("cupy")
    y_gpu, _ = dropout_forward(to_device(x), 0.5, make_rng(3))
    np.testing.assert_array_equal(to_numpy(y_gpu), y_cpu)
