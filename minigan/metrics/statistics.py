"""Feature statistics for FID: the mean and covariance of a set of feature vectors, and their file.

FID compares two Gaussians, one fitted to the features of real images and one to the features of
generated images. Fitting a Gaussian means estimating

    mu    = (1/N) sum_i f_i                              shape (D,)
    sigma = 1/(N-1) sum_i (f_i - mu)(f_i - mu)^T          shape (D, D)

from N feature vectors ``f_i`` (the unbiased covariance, as ``np.cov`` and the reference FID code
compute it). The real-data statistics never change, so they are computed once and saved as an
``.npz`` file: two arrays ``mu`` and ``sigma``, plus a ``meta`` text (JSON) saying where they
came from (feature network, dataset, sample count). No pickles, and the file is written to a
temporary name and renamed into place, so an interrupted save never leaves half a file.

A D x D covariance needs many samples to be estimated well: with N <= D it is singular (rank at
most N - 1), and FID is biased for small N. Reference numbers use N >= 2048 or more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minigan.backend import to_numpy
from minigan.checkpoint import (
    DamagedFileError,
    atomic_savez,
    check_arrays,
    read_json,
    read_npz,
    require,
)
from minigan.metrics.frechet import check_covariance

__all__ = ["feature_statistics", "load_statistics", "load_statistics_meta", "save_statistics"]


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of feature vectors.

    Args:
        features: (N, D) array, one feature vector per row (NumPy or CuPy), N >= 2.

    Returns:
        ``(mu, sigma)``: mu (D,) and sigma (D, D), float64 NumPy arrays, with
        ``sigma = np.cov(features, rowvar=False)`` (divides by N - 1).
    """
    features = to_numpy(features)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got an array of shape {features.shape}")
    n = features.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors to estimate a covariance, got {n}")
    features = features.astype(np.float64)  # float32 sums over thousands of rows lose digits
    if not np.isfinite(features).all():
        raise ValueError("features contain inf or NaN")
    mu = features.mean(axis=0)
    # atleast_2d: for D = 1, np.cov returns a 0-d array rather than a (1, 1) matrix.
    sigma = np.atleast_2d(np.cov(features, rowvar=False))
    return mu, sigma


def _check_mu_sigma(mu: np.ndarray, sigma: np.ndarray) -> None:
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"need mu (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")


def save_statistics(path: str | Path, mu: Any, sigma: Any, **meta: Any) -> Path:
    """Write ``mu`` (D,) and ``sigma`` (D, D) to the .npz file ``path``, atomically.

    ``meta`` holds short facts about the statistics, for example
    ``features="svhn-classifier", dataset="svhn/test", count=10000``. The values must be
    JSON-compatible (str, int, float, bool, None, lists of them); they are stored as one JSON text.
    Returns the path written.
    """
    mu = to_numpy(mu).astype(np.float64)
    sigma = to_numpy(sigma).astype(np.float64)
    _check_mu_sigma(mu, sigma)
    # NumPy scalars (np.int64(10000), ...) are not JSON-serializable; turn them into Python's.
    meta = {k: v.item() if isinstance(v, np.generic) else v for k, v in meta.items()}
    try:
        meta_text = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"statistics metadata must be plain JSON values: {error}") from None
    return atomic_savez(path, {"mu": mu, "sigma": sigma, "meta": np.asarray(meta_text)})


def _read(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no statistics file at {path}")
    # read_npz: allow_pickle=False (unpickling runs code), and any damage is one named line.
    arrays = read_npz(path, "statistics file")
    require(arrays, path, ("mu", "sigma"), file_kind="statistics file")
    return arrays


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(mu, sigma)`` (float64, shapes (D,) and (D, D)) saved by ``save_statistics``.

    A file whose arrays are damaged, of the wrong shapes, not finite, or whose ``sigma`` is not
    a covariance (symmetric, positive semi-definite: ``frechet.check_covariance``) raises a
    one-line ``DamagedFileError`` naming the file."""
    arrays = _read(path)
    mu, sigma = arrays["mu"], arrays["sigma"]
    if mu.dtype.kind != "f" or sigma.dtype.kind != "f":
        raise DamagedFileError(path, "mu and sigma must be floating-point arrays")
    check_arrays({"mu": mu, "sigma": sigma}, path, "statistics")   # no NaN or infinity
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    try:
        _check_mu_sigma(mu, sigma)
        # Not symmetric, or a negative eigenvalue: not a covariance (FID came out -127.991
        # from one such file, 0.015 from an asymmetric one). Refused here, naming the file.
        check_covariance(sigma, "sigma")
    except ValueError as error:
        raise DamagedFileError(path, str(error)) from None
    return mu, sigma


def load_statistics_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` dict saved with the statistics (empty if the file has none)."""
    arrays = _read(path)
    if "meta" not in arrays:
        return {}
    return read_json(arrays["meta"], path, "the meta entry")
