"""The Inception Score counts the classes a generator produces, checked on cases with known answers.

``IS = exp(mean_x KL(p(y|x) || p(y)))``. If every prediction is the uniform distribution, each
``p(y|x)`` equals the marginal and the score is exp(0) = 1. If the predictions are one-hot and
spread evenly over k classes, each KL term is ``log(1 / (1/k)) = log k`` and the score is exactly
k: the "effective number of classes". Anything in between scores in between. The mean KL is also
the mutual information ``H(p(y)) - mean_x H(p(y|x))``, which gives a second way to compute it.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigan.backend import to_device
from minigan.metrics import inception_score


def one_hot_spread(k, num_classes, n):
    """n one-hot rows cycling through the first k of num_classes classes."""
    return np.eye(num_classes)[np.arange(n) % k]


def test_uniform_predictions_score_one():
    probs = np.full((100, 10), 0.1)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_identical_predictions_score_one(rng):
    # Confident but always the same class (mode collapse): p(y|x) = p(y), no information.
    row = rng.dirichlet(np.ones(10))
    mean, std = inception_score(np.tile(row, (50, 1)), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_confident_predictions_over_k_classes_score_k(k):
    # 10 splits of 4k rows each: every chunk sees each of the k classes 4 times. The other
    # 10 - k classes never occur, so p(y) has zeros there too.
    probs = one_hot_spread(k, num_classes=10, n=10 * 4 * k)
    mean, std = inception_score(to_device(probs.astype(np.float32)), splits=10)
    assert mean == pytest.approx(k, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_mixture_scores_in_between():
    k = 5
    confident = one_hot_spread(k, num_classes=k, n=100)
    uniform = np.full((100, k), 1.0 / k)
    # Interleave them, so that every chunk holds the same mixture.
    mixed = np.empty((200, k))
    mixed[0::2], mixed[1::2] = confident, uniform
    mean, std = inception_score(mixed, splits=10)
    assert 1.0 < mean < k
    # By hand: p(y) is uniform, so half the rows contribute log k and half contribute 0.
    assert mean == pytest.approx(np.sqrt(k), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_matches_entropy_form_and_chunking(rng):
    probs = rng.dirichlet(np.full(7, 0.3), size=103)  # 103 rows: chunks of 10 and 11
    mean, std = inception_score(probs, splits=10)

    def entropy(p):
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)

    scores = []
    for i in range(10):
        part = probs[i * 103 // 10 : (i + 1) * 103 // 10]
        mutual_information = entropy(part.mean(axis=0)) - entropy(part).mean()
        scores.append(np.exp(mutual_information))
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)
    assert std > 0  # random predictions: the chunks disagree a little


def test_one_split_uses_the_whole_set():
    probs = one_hot_spread(3, num_classes=3, n=9)
    assert inception_score(probs, splits=1) == pytest.approx((3.0, 0.0))


@pytest.mark.parametrize(
    "probs, splits, message",
    [
        (np.full((10, 4), 0.3), 2, "sum to 1"),
        (np.array([[1.5, -0.5]] * 10), 2, "non-negative"),
        (np.full((5, 2), 0.5), 10, "at least one row per split"),
        (np.full(10, 0.1), 1, r"must be \(N, K\)"),
        (np.full((10, 2), 0.5), 0, "positive integer"),
        (np.full((10, 2), np.nan), 2, "inf or NaN"),
    ],
)
def test_bad_input_raises(probs, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(probs, splits=splits)
