"""Feature statistics: a Gaussian fitted to feature vectors, and a safe file to keep it in.

FID needs the mean and covariance of the real data's features; they are computed once and saved.
These tests check the estimates against their textbook definitions, and that the file is plain
arrays: it loads with ``allow_pickle=False`` (no code can hide in it), it round-trips exactly, and
saving leaves no temporary file behind.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from minigan.backend import to_device
from minigan.metrics import (
    feature_statistics,
    load_statistics,
    load_statistics_meta,
    save_statistics,
)


def test_mean_and_unbiased_covariance(rng):
    features = rng.standard_normal((50, 4)).astype(np.float32)
    mu, sigma = feature_statistics(to_device(features))
    f = features.astype(np.float64)
    centered = f - f.mean(axis=0)
    assert mu.dtype == sigma.dtype == np.float64
    assert mu.shape == (4,) and sigma.shape == (4, 4)
    np.testing.assert_allclose(mu, f.sum(axis=0) / 50, rtol=1e-12)
    np.testing.assert_allclose(sigma, centered.T @ centered / (50 - 1), rtol=1e-12)


def test_one_feature_dimension_gives_a_1x1_covariance():
    mu, sigma = feature_statistics(np.array([[1.0], [3.0]]))
    assert mu.tolist() == [2.0]
    assert sigma.tolist() == [[2.0]]  # ((1 - 2)^2 + (3 - 2)^2) / (2 - 1)


def test_bad_features_raise():
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        feature_statistics(np.ones(3))
    with pytest.raises(ValueError, match="inf or NaN"):
        feature_statistics(np.array([[1.0, np.nan], [2.0, 3.0]]))


def test_round_trip_without_pickles_or_leftovers(tmp_path, rng):
    mu, sigma = feature_statistics(rng.standard_normal((20, 5)))
    path = tmp_path / "svhn_test.npz"
    written = save_statistics(path, mu, sigma, features="tiny-net", dataset="svhn/test",
                              count=np.int64(20))
    assert written == path
    assert [p.name for p in tmp_path.iterdir()] == ["svhn_test.npz"]  # no temporary file left

    mu2, sigma2 = load_statistics(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    assert load_statistics_meta(path) == {"features": "tiny-net", "dataset": "svhn/test",
                                          "count": 20}

    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert sorted(data.files) == ["meta", "mu", "sigma"]
        assert all(data[key].dtype != object for key in data.files)


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "stats.npz"
    save_statistics(path, np.zeros(2), np.eye(2))
    save_statistics(path, np.ones(3), 2 * np.eye(3))
    mu, sigma = load_statistics(path)
    assert mu.tolist() == [1.0, 1.0, 1.0] and sigma.shape == (3, 3)
    assert load_statistics_meta(path) == {}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.npz"]


def test_failed_save_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="mu \\(D,\\) and sigma \\(D, D\\)"):
        save_statistics(tmp_path / "s.npz", np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="plain JSON"):
        save_statistics(tmp_path / "s.npz", np.zeros(2), np.eye(2), bad=object())
    assert list(tmp_path.iterdir()) == []


def test_malformed_files_raise_one_line_value_errors(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    truncated = tmp_path / "truncated.npz"
    save_statistics(truncated, np.zeros(4), np.eye(4))
    truncated.write_bytes(truncated.read_bytes()[:100])
    missing_sigma = tmp_path / "missing.npz"
    np.savez(missing_sigma, mu=np.zeros(2))
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, mu=np.zeros(2), sigma=np.eye(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mu=np.zeros(2), sigma=np.array([{"x": 1}], dtype=object))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))

    for path in (garbage, truncated, missing_sigma, wrong_shape, pickled, single):
        with pytest.raises(ValueError) as info:
            load_statistics(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message
    assert zipfile.is_zipfile(pickled)  # rejected for its content, not for being unreadable


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no statistics file"):
        load_statistics(tmp_path / "nope.npz")


@pytest.mark.parametrize("sigma, fault", [
    (np.array([[1.0, 3.0], [3.0, 1.0]]), "not positive semi-definite"),   # eigenvalue -2
    (np.array([[1.0, 0.5], [0.0, 1.0]]), "not symmetric"),
    (np.diag([2.0, -1e-3]), "not positive semi-definite"),
])
def test_a_sigma_that_is_not_a_covariance_is_refused_naming_the_file(tmp_path, sigma, fault):
    """Issue 22: evaluate.py printed FID -127.991 for such a file, 0.015 for an asymmetric one."""
    path = tmp_path / "bad_stats.npz"
    np.savez(path, mu=np.zeros(2), sigma=sigma)
    with pytest.raises(ValueError) as info:
        load_statistics(path)
    message = str(info.value)
    assert message.startswith(f"{path}: sigma is {fault}") and "\n" not in message, message


def test_a_float32_covariance_of_a_rank_deficient_estimate_still_loads(tmp_path, rng):
    mu, sigma = feature_statistics(rng.standard_normal((10, 64)))   # rank 9 of 64
    path = tmp_path / "f32.npz"
    np.savez(path, mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
    mu2, sigma2 = load_statistics(path)
    np.testing.assert_allclose(sigma2, sigma, rtol=1e-6, atol=1e-7)
