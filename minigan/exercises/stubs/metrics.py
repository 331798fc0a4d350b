"""Exercise: the two numbers that evaluate a GAN, the Inception Score and the Fréchet distance.

Inception Score. A classifier gives each generated image class probabilities p(y|x) (one row
per image). Good images make each row peaked; varied images make the mean row p(y) flat.
KL(p(y|x) || p(y)) = sum_y p(y|x) log(p(y|x) / p(y)) is large when both hold, and

    IS = exp( mean over images of KL(p(y|x) || p(y)) )

between 1 (all rows alike, or all uniform) and K, the number of classes. As in the original
code, the rows are cut into ``splits`` consecutive chunks (chunk i holds rows i*N//splits to
(i+1)*N//splits), each chunk is scored with its own p(y), and the mean and std of the chunks'
scores are reported.

Fréchet distance (the number behind FID). Real and generated images' features are each
summarised by a Gaussian (mean mu, covariance sigma), and

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

0 for identical statistics; lower is better.

The grader compares with minigan's scipy-based versions (minigan/metrics) on random inputs and
with the values known in closed form: uniform predictions give IS 1, one class per image spread
evenly gives IS K, identical statistics give 0, one dimension gives (m1 - m2)^2 + (s1 - s2)^2.
"""

from __future__ import annotations

from typing import Any

# Both metrics run on the host, in float64. scipy.linalg.sqrtm is a matrix square root;
# scipy.special.rel_entr(p, q) = p log(p / q), and 0 where p = 0.
import numpy as np  # noqa: F401
import scipy.linalg  # noqa: F401
import scipy.special  # noqa: F401

from minigan.backend import to_numpy  # noqa: F401  (CuPy arrays to NumPy)


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
    # Hint: one loop over the chunks; in each, the marginal, the KL of every row against it,
    # the exp of their mean. What happens to p log p where p is 0?
    raise NotImplementedError("inception_score: write me")


def frechet_distance(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6
) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: means of the two feature sets, shape (D,).
        sigma1, sigma2: their covariance matrices, shape (D, D), symmetric positive semi-definite.
        eps: added to the diagonal of both covariances if the matrix square root of their
            product comes out non-finite.

    Returns:
        ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 @ sigma2))`` as a float.
    """
    # Hint: the formula term by term, in float64 on the host; the square root is of a matrix
    # product, and what comes back from it may be complex.
    raise NotImplementedError("frechet_distance: write me")
