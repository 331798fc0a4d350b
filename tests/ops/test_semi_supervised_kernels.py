"""The semi-supervised GAN's two kernels: logsumexp (the real/fake logit of a K-class
discriminator) and the feature-matching loss (its generator's objective).

Each is held to its textbook formula on moderate inputs, to its derivation's identities (the
"fake" class with a logit fixed at 0 gives p(real) = sigmoid(logsumexp)), to stability on huge
logits, and to finite differences for its gradient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_op
from minigan.ops import (
    bce_with_logits_forward,
    feature_matching_backward,
    feature_matching_forward,
    logsumexp_backward,
    logsumexp_forward,
)
from tests.helpers import random_array, seeds

batch_and_classes = st.tuples(st.integers(1, 6), st.integers(1, 5))


# --- logsumexp ------------------------------------------------------------------------------


@given(nk=batch_and_classes, seed=seeds)
def test_logsumexp_matches_the_naive_formula(nk, seed):
    z = 3 * np.random.default_rng(seed).standard_normal(nk)
    y, _ = logsumexp_forward(to_device(z))
    assert y.shape == (nk[0],)
    np.testing.assert_allclose(to_numpy(y), np.log(np.exp(z).sum(axis=1)), rtol=1e-12)


@given(nk=batch_and_classes, seed=seeds)
def test_logsumexp_gradient(nk, seed):
    assert check_op(logsumexp_forward, logsumexp_backward,
                    random_array(np.random.default_rng(seed), nk)) < 1e-6


def test_logsumexp_gradient_is_the_softmax():
    z = to_device(np.array([[0.0, np.log(3.0)], [1.0, 1.0]]))
    _, cache = logsumexp_forward(z)
    dz = logsumexp_backward(to_device(np.array([1.0, 2.0])), cache)
    np.testing.assert_allclose(to_numpy(dz), [[0.25, 0.75], [1.0, 1.0]], rtol=1e-12)


@given(nk=batch_and_classes, seed=seeds)
def test_real_probability_is_the_sigmoid_of_logsumexp(nk, seed):
    """Appending a "fake" logit fixed at 0 to K class logits: the softmax's mass on the K real
    classes equals sigmoid(logsumexp(l)), the formula the semi-supervised GAN relies on."""
    z = 2 * np.random.default_rng(seed).standard_normal(nk)
    with_fake = np.concatenate([z, np.zeros((nk[0], 1))], axis=1)
    softmax = np.exp(with_fake) / np.exp(with_fake).sum(axis=1, keepdims=True)
    y, _ = logsumexp_forward(to_device(z))
    np.testing.assert_allclose(1 / (1 + np.exp(-to_numpy(y))), softmax[:, :-1].sum(axis=1),
                               rtol=1e-12)


def test_unsupervised_loss_is_binary_cross_entropy_on_logsumexp():
    """-log p(real) on a real image is BCE(logsumexp, 1); -log p(fake) on a fake one BCE(., 0)."""
    z = np.array([[2.0, -1.0, 0.5], [-3.0, -2.0, -4.0]])
    y, _ = logsumexp_forward(to_device(z))
    p_real = np.exp(z).sum(axis=1) / (np.exp(z).sum(axis=1) + 1)
    real_loss, _ = bce_with_logits_forward(y, to_device(np.ones(2)))
    fake_loss, _ = bce_with_logits_forward(y, to_device(np.zeros(2)))
    np.testing.assert_allclose(float(real_loss), -np.log(p_real).mean(), rtol=1e-12)
    np.testing.assert_allclose(float(fake_loss), -np.log(1 - p_real).mean(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_is_exact_for_huge_logits(dtype):
    z = to_device(np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [1000.0, -1000.0]],
                           dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow or log(0) would raise here
        y, cache = logsumexp_forward(z)
        dz = logsumexp_backward(to_device(np.ones(3, dtype=dtype)), cache)
    assert y.dtype == dtype and dz.dtype == dtype
    np.testing.assert_allclose(to_numpy(y), [1000 + np.log(2), -1000 + np.log(2), 1000],
                               rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dz), [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], atol=1e-7)


def test_logsumexp_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        logsumexp_forward(to_device(np.zeros(3)))


# --- feature matching -----------------------------------------------------------------------


@given(n_real=st.integers(1, 5), n_fake=st.integers(1, 5), d=st.integers(1, 6), seed=seeds)
def test_feature_matching_matches_the_formula(n_real, n_fake, d, seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal((n_real, d)), rng.standard_normal((n_fake, d))
    loss, _ = feature_matching_forward(to_device(real), to_device(fake))
    assert loss.shape == ()
    expected = np.mean((real.mean(axis=0) - fake.mean(axis=0)) ** 2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-12)


@given(n_real=st.integers(1, 5), n_fake=st.integers(1, 5), d=st.integers(1, 6), seed=seeds)
def test_feature_matching_gradient(n_real, n_fake, d, seed):
    rng = np.random.default_rng(seed)
    real, fake = random_array(rng, (n_real, d)), random_array(rng, (n_fake, d))
    assert check_op(feature_matching_forward, feature_matching_backward, real, fake) < 1e-6


def test_feature_matching_is_zero_when_the_means_agree():
    """Different batches with the same mean feature vector cost nothing, and get no gradient:
    the generator is asked to match statistics, not to copy images."""
    real = to_device(np.array([[0.0, 2.0], [2.0, 0.0]]))
    fake = to_device(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]))
    loss, cache = feature_matching_forward(real, fake)
    d_real, d_fake = feature_matching_backward(1.0, cache)
    assert float(loss) == 0.0
    assert not to_numpy(d_real).any() and not to_numpy(d_fake).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_feature_matching_keeps_the_dtype(dtype):
    real = to_device(np.ones((2, 3), dtype=dtype))
    loss, cache = feature_matching_forward(real, real * 0)
    d_real, d_fake = feature_matching_backward(1.0, cache)
    assert loss.dtype == d_real.dtype == d_fake.dtype == dtype
    np.testing.assert_allclose(float(loss), 1.0)


def test_feature_matching_refuses_mismatched_features():
    with pytest.raises(ValueError, match="feature_matching"):
        feature_matching_forward(to_device(np.zeros((2, 3))), to_device(np.zeros((2, 4))))
