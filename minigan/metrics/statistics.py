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
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from minigan.backend import to_numpy
from minigan.checkpoint import atomic_savez

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
    try:
        # allow_pickle=False: an .npz can hold pickled objects, and unpickling runs code.
        # Open the file here rather than give np.load the path: then it is closed even when
        # np.load fails halfway through a damaged archive.
        with open(path, "rb") as f:
            data = np.load(f, allow_pickle=False)
            if isinstance(data, np.ndarray):
                raise ValueError("a single .npy array, not an .npz archive")
            with data:
                arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not a readable statistics file ({reason})") from None
    missing = [key for key in ("mu", "sigma") if key not in arrays]
    if missing:
        raise ValueError(f"{path} is not a statistics file: missing {', '.join(missing)}")
    return arrays


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(mu, sigma)`` (float64, shapes (D,) and (D, D)) saved by ``save_statistics``."""
    arrays = _read(path)
    mu, sigma = arrays["mu"], arrays["sigma"]
    if mu.dtype.kind != "f" or sigma.dtype.kind != "f":
        raise ValueError(f"{path}: mu and sigma must be floating-point arrays")
    try:
        _check_mu_sigma(mu, sigma)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return mu.astype(np.float64), sigma.astype(np.float64)


def load_statistics_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` dict saved with the statistics (empty if the file has none)."""
    arrays = _read(path)
    if "meta" not in arrays:
        return {}
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError:
        raise ValueError(f"{path}: the meta entry is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the meta entry is not a JSON object")
    return meta
