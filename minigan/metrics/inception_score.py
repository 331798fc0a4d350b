"""The Inception Score: how confident and how varied a classifier finds the generated images.

Run N generated images through a classifier and keep its class probabilities ``p(y|x)``, one row
per image. Two things make a good generator:

* each image looks like *something*: ``p(y|x)`` is peaked (low entropy);
* the images together cover many classes: the marginal ``p(y) = mean_x p(y|x)`` is flat
  (high entropy).

The KL divergence ``KL(p(y|x) || p(y)) = sum_y p(y|x) log(p(y|x) / p(y))`` is large exactly when
both hold, and the score is

    IS = exp( mean_x KL(p(y|x) || p(y)) )

It runs from 1 (every image gets the same prediction, or every prediction is uniform) up to K,
the number of classes (confident predictions spread evenly over all of them). The mean of the KL
terms equals ``H(p(y)) - mean_x H(p(y|x))``, the mutual information between image and label, so
``exp`` of it reads as "the effective number of classes the generator produces".

As in the original code, the N rows are cut into ``splits`` consecutive chunks, the score is
computed on each chunk (with that chunk's own marginal), and the mean and the (population)
standard deviation over the chunks are reported. Higher is better; it never looks at real data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import rel_entr

from minigan.backend import to_numpy

__all__ = ["MIN_SCORED_SAMPLES", "inception_score"]

# The fewest generated images the scripts score: the Inception Score is a mean over 10 splits,
# and a split of one image always scores 1 (its p(y) is its own p(y|x)), whatever G does.
MIN_SCORED_SAMPLES = 20


def inception_score(probs: Any, splits: int = 10) -> tuple[float, float]:
    """Inception Score of a set of class-probability rows.

    Args:
        probs: (N, K) array of class probabilities ``p(y|x)``, one row per image: non-negative,
            each row summing to 1 (a softmax output). NumPy or CuPy.
        splits: number of consecutive chunks to score separately; N >= splits.

    Returns:
        ``(mean, std)`` over the chunks of ``exp(mean_x sum_y p(y|x) log(p(y|x) / p(y)))``,
        where ``p(y)`` is the mean row of the chunk.
    """
    probs = to_numpy(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got an array of shape {probs.shape}")
    n = probs.shape[0]
    if not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    if n < splits:
        raise ValueError(f"need at least one row per split: got {n} rows for {splits} splits")
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all():
        raise ValueError("probs contain inf or NaN")
    if (probs < 0).any():
        raise ValueError(f"probs must be non-negative, found {probs.min():.3g}")
    row_sums = probs.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0, atol=1e-3):
        worst = row_sums[np.argmax(np.abs(row_sums - 1.0))]
        raise ValueError(
            f"each row of probs must sum to 1 (softmax outputs, not logits); found a sum of "
            f"{worst:.6g}"
        )

    scores = []
    for i in range(splits):
        # The same chunk boundaries as the original code: sizes differ by at most one row.
        part = probs[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)  # p(y) for this chunk, shape (1, K)
        # rel_entr(p, q) = p * log(p / q), with the limit 0 * log(0 / q) = 0 built in. A
        # one-hot row has K - 1 zeros, and p * (log p - log q) would give 0 * -inf = NaN there.
        # q = 0 only where every p in the column is 0, so no term is ever p > 0 over q = 0.
        kl = rel_entr(part, marginal).sum(axis=1)  # KL(p(y|x) || p(y)) per image, shape (n_i,)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
