"""The Fréchet distance between two Gaussians: the number behind FID.

FID (Fréchet Inception Distance) runs real and generated images through a fixed feature network,
fits one Gaussian to each set of feature vectors (a mean ``mu`` and a covariance ``sigma``, see
``statistics.py``) and reports how far apart the two Gaussians are::

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

The first term compares where the two clouds of features sit, the trace term compares their
shapes and spreads. It is the squared 2-Wasserstein distance between the Gaussians: 0 when they
are identical, and lower is better for a generator. In one dimension it reduces to
``(m1 - m2)^2 + (s1 - s2)^2`` with ``s`` the standard deviations.

``frechet_distance`` follows the reference FID code (TTUR's ``fid.py`` and pytorch-fid) step by
step, including its fall-backs, so that numbers computed here can be compared with theirs when
the same features are used. All of it runs on the host in float64: the matrices are only D x D.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import scipy
import scipy.linalg

from minigan.backend import to_numpy

__all__ = ["COVARIANCE_TOLERANCE", "NEGATIVE_TOLERANCE", "SingularCovarianceWarning",
           "check_covariance", "frechet_distance"]

# A covariance is symmetric and positive semi-definite. Rounding (float32 storage, the sums of
# np.cov) leaves it so only up to a tiny fraction of its size: asymmetry up to this fraction of
# its largest entry, and eigenvalues down to minus this fraction of its largest one, are
# accepted as rounding; more means the matrix is not a covariance, and no distance exists.
COVARIANCE_TOLERANCE = 1e-5
# FID is a squared distance, never negative. For two identical Gaussians rounding in sqrtm can
# give -1e-12; anything down to minus this fraction of the size of the terms is that rounding
# and reported as 0, anything below it is an error.
NEGATIVE_TOLERANCE = 1e-6


class SingularCovarianceWarning(UserWarning):
    """``sqrtm(sigma1 @ sigma2)`` was not finite, so ``eps * I`` was added to both covariances.

    A UserWarning rather than a RuntimeWarning: the distance is still computed, just from
    slightly regularized covariances, and the caller decides whether that is acceptable.
    """


def _scipy_version() -> tuple[int, int]:
    major, minor = (int(part) for part in re.findall(r"\d+", scipy.__version__)[:2])
    return major, minor


# SciPy 1.16 rewrote ``sqrtm`` and deprecated its ``disp`` argument (it goes away in 1.18).
# Before 1.16 the reference code's ``sqrtm(A, disp=False)`` is the quiet call: it returns the
# pair (root, error estimate) instead of *printing* a message about singular matrices. From 1.16
# on, the plain call returns just the root and reports a singular input as a LinAlgWarning.
_SQRTM_HAS_DISP = _scipy_version() < (1, 16)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """The principal matrix square root of ``a`` (D, D), quietly, on any SciPy >= 1.10.

    The result may be complex, and may hold inf or NaN: ``frechet_distance`` checks for both,
    so scipy's own warnings about singular input are silenced here rather than shown twice.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        if _SQRTM_HAS_DISP:
            root, _error_estimate = scipy.linalg.sqrtm(a, disp=False)
            return root
        return scipy.linalg.sqrtm(a)


def _as_float64(name: str, a: Any, ndim: int) -> np.ndarray:
    a = to_numpy(a)
    # Like the reference code, accept a scalar for D = 1 (a 1-d Gaussian).
    a = np.atleast_1d(a) if ndim == 1 else np.atleast_2d(a)
    if a.ndim != ndim:
        what = "a vector (D,)" if ndim == 1 else "a matrix (D, D)"
        raise ValueError(f"{name} must be {what}, got an array of shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains inf or NaN (did training diverge?)")
    return a


def check_covariance(sigma: np.ndarray, name: str = "sigma") -> None:
    """Raise ValueError (one line) unless the (D, D) float array ``sigma`` is symmetric and
    positive semi-definite, up to ``COVARIANCE_TOLERANCE`` (see there). Costs one symmetric
    eigenvalue decomposition (``eigvalsh``), a fraction of ``sqrtm``'s time."""
    scale = float(np.max(np.abs(sigma))) if sigma.size else 0.0
    asymmetry = float(np.max(np.abs(sigma - sigma.T))) if sigma.size else 0.0
    if asymmetry > COVARIANCE_TOLERANCE * scale:
        raise ValueError(f"{name} is not symmetric (entries differ from their mirror image "
                         f"by up to {asymmetry:.3g}, the largest entry is {scale:.3g}): not a "
                         f"covariance matrix")
    eigenvalues = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    largest = float(np.max(np.abs(eigenvalues))) if sigma.size else 0.0
    if sigma.size and eigenvalues[0] < -COVARIANCE_TOLERANCE * largest:
        raise ValueError(f"{name} is not positive semi-definite (an eigenvalue of "
                         f"{eigenvalues[0]:.3g}, the largest is {largest:.3g}): not a "
                         f"covariance matrix")


def frechet_distance(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6
) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: means of the two feature sets, shape (D,).
        sigma1, sigma2: their covariance matrices, shape (D, D), symmetric positive semi-definite.
        eps: added to the diagonal of both covariances if the matrix square root of their
            product comes out non-finite (a SingularCovarianceWarning says so).

    Returns:
        ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 @ sigma2))`` as a float.
        NumPy or CuPy arrays are accepted; the computation is float64 on the host.

    Raises:
        ValueError: on mismatched shapes, non-finite input, covariances that are not
            symmetric positive semi-definite (``check_covariance``), or when the square root
            has a large imaginary part on its diagonal. Never a negative distance: one within
            ``NEGATIVE_TOLERANCE`` of 0 is rounding and returned as 0.0, one below it raises.
    """
    mu1, sigma1, mu2, sigma2 = _checked_inputs(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    covmean, regularized = _sqrt_of_product(sigma1, sigma2, eps)
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    if distance < 0:
        # The size of the terms that cancel: rounding is relative to it.
        scale = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)) + regularized
        if distance < -NEGATIVE_TOLERANCE * scale - regularized:
            raise ValueError(f"the Fréchet distance came out negative ({distance:.6g}, the "
                             f"terms are of size {scale:.6g}), which no pair of covariances "
                             f"can give: are sigma1 and sigma2 valid covariances?")
        distance = 0.0   # rounding below an exact 0 (two identical Gaussians)
    return distance


def _checked_inputs(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> tuple[np.ndarray, ...]:
    """The four inputs as float64 host arrays, checked: shapes that match, finite values,
    covariances symmetric positive semi-definite (``check_covariance``)."""
    mu1 = _as_float64("mu1", mu1, 1)
    mu2 = _as_float64("mu2", mu2, 1)
    sigma1 = _as_float64("sigma1", sigma1, 2)
    sigma2 = _as_float64("sigma2", sigma2, 2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 have different lengths: {mu1.shape} vs {mu2.shape}")
    d = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (d, d):
            raise ValueError(
                f"{name} must be ({d}, {d}) to match the means, got shape {sigma.shape}"
            )
        check_covariance(sigma, name)
    return mu1, sigma1, mu2, sigma2


def _sqrt_of_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float
                     ) -> tuple[np.ndarray, float]:
    """(sqrtm(sigma1 @ sigma2) as a real matrix, what eps * I added to the trace term (0.0 if
    it was not needed))."""
    d = sigma1.shape[0]
    # sigma1 @ sigma2 is not symmetric, so sqrtm works on its (complex) Schur form. When both
    # covariances are singular -- fewer samples than feature dimensions, or a feature that never
    # changes, such as a dead ReLU -- the product has eigenvalues that are exactly 0. In exact
    # arithmetic the square root still exists, but the Schur recurrence divides each
    # off-diagonal entry by the sum of two diagonal entries; 0 + 0 meets a rounding error of
    # 1e-17 above the diagonal and the result is inf or NaN.
    covmean = _sqrtm(sigma1 @ sigma2)
    regularized = 0.0   # how much eps * I adds to the trace term, if it is used
    if not np.isfinite(covmean).all():
        # Adding eps * I makes both matrices positive definite, so every eigenvalue of the
        # product is at least about eps^2 > 0 and no division by zero is left. The price is a
        # bias that vanishes as eps -> 0: in the worst case about sqrt(eps * scale) per singular
        # dimension (1-d example: sigma1 = s, sigma2 = 0 gives sqrt((s + eps) * eps), not 0).
        warnings.warn(
            f"sqrtm(sigma1 @ sigma2) is not finite (singular covariances?); adding {eps:g} to "
            "the diagonal of both covariances. Use more samples than feature dimensions.",
            SingularCovarianceWarning,
            stacklevel=3,   # the caller of frechet_distance
        )
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        regularized = 2.0 * d * eps
        if not np.isfinite(covmean).all():
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) is not finite even with {eps:g} added to the "
                "diagonals; try a larger eps or more samples"
            )

    # The product of two symmetric positive semi-definite matrices has real, non-negative
    # eigenvalues, so the true root is real. Rounding can still push an eigenvalue near 0 to
    # -1e-15, whose square root is imaginary, and then sqrtm returns a complex matrix. A tiny
    # imaginary part is noise and is dropped; a large one means a "covariance" was not positive
    # semi-definite (not a covariance at all), and no real distance exists.
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = np.max(np.abs(covmean.imag))
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary component of {largest:.3g}: are "
                "sigma1 and sigma2 symmetric positive semi-definite covariances?"
            )
        covmean = covmean.real
    return covmean, regularized
