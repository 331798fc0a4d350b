"""The Fréchet distance between two Gaussians, checked against formulas you can do by hand.

``frechet_distance`` computes ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 @ S2))``. The hard part
is the trace of the matrix square root of a product of two covariances. These tests compute it a
second, more obviously correct way: ``S1 @ S2`` has the same eigenvalues as the symmetric matrix
``S1^(1/2) S2 S1^(1/2)``, so ``Tr sqrtm(S1 S2)`` is the sum of the square roots of the
eigenvalues of that symmetric matrix (``np.linalg.eigh``, no Schur form needed). Diagonal and
one-dimensional Gaussians have closed forms. Then the two numerical fall-backs of the reference
code are exercised: ``eps * I`` when the square root is not finite, and the check on imaginary
parts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan.metrics.frechet as frechet
from minigan.backend import to_device
from minigan.metrics import SingularCovarianceWarning, feature_statistics, frechet_distance


def sqrt_psd(s):
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_by_eigh(mu1, s1, mu2, s2):
    """The same distance, with Tr sqrtm(S1 S2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))."""
    r = sqrt_psd(s1)
    eig = np.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_distance_of_a_feature_set_to_itself_is_zero(rng):
    features = rng.standard_normal((500, 16)) * 3.0 + 1.0
    mu, sigma = feature_statistics(to_device(features))
    d = frechet_distance(mu, sigma, mu, sigma)
    assert abs(d) < 1e-6 * np.trace(sigma)


def test_one_dimensional_gaussians():
    # For N(m1, s1^2) and N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
    d = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx((1 - (-2)) ** 2 + (2 - 3) ** 2, abs=1e-12)
    # Scalars are accepted for D = 1, as in the reference code.
    assert frechet_distance(1.0, 4.0, -2.0, 9.0) == pytest.approx(10.0, abs=1e-12)


def test_diagonal_covariances_match_closed_form(rng):
    m1, m2 = rng.standard_normal(8), rng.standard_normal(8)
    v1, v2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    expected = np.sum((m1 - m2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    d = frechet_distance(m1, np.diag(v1), m2, np.diag(v2))
    assert d == pytest.approx(expected, rel=1e-10)


def test_commuting_covariances_match_closed_form(rng):
    # Same eigenvectors Q, different eigenvalues: sqrtm(S1 S2) = Q diag(sqrt(a b)) Q^T.
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    a, b = rng.uniform(0.1, 2.0, 10), rng.uniform(0.1, 2.0, 10)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    mu = np.zeros(10)
    expected = np.sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)


@given(d=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_general_covariances_match_eigh_computation(d, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    expected = frechet_by_eigh(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-10)
    # A distance: symmetric in its two arguments, and never negative.
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-8, abs=1e-10)
    assert expected >= -1e-10


def test_sample_statistics_from_features(rng):
    x = rng.standard_normal((400, 6))
    y = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) + 0.5
    mx, sx = feature_statistics(x)
    my, sy = feature_statistics(y)
    assert frechet_distance(mx, sx, my, sy) == pytest.approx(frechet_by_eigh(mx, sx, my, sy),
                                                             rel=1e-8)


# Two feature vectors in three dimensions per set: each covariance has rank 1,
# sigma_x = a a^T / 2 and sigma_y = b b^T / 2 with a = (0, 1, 2), b = (1, 1, 1).
SINGULAR_X = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
SINGULAR_Y = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
# By hand: ||mu_x - mu_y||^2 = 0.5, Tr sigma_x = 2.5, Tr sigma_y = 1.5, and
# sigma_x sigma_y = (a.b / 4) a b^T has the single non-zero eigenvalue (a.b)^2 / 4 = 9/4,
# so Tr sqrtm(sigma_x sigma_y) = 3/2 and the distance is 0.5 + 2.5 + 1.5 - 3 = 1.5.
SINGULAR_FID = 1.5


def test_singular_product_takes_the_eps_path_and_stays_close():
    mx, sx = feature_statistics(SINGULAR_X)
    my, sy = feature_statistics(SINGULAR_Y)
    # The Schur form of sx @ sy has two exact zeros on its diagonal and a rounding error of
    # about 1e-17 above them, which the square-root recurrence divides by 0 + 0.
    raw = frechet._sqrtm(sx @ sy)
    if not np.isfinite(raw).all():
        with pytest.warns(SingularCovarianceWarning, match="adding 1e-06 to the diagonal"):
            d = frechet_distance(mx, sx, my, sy)
    else:  # another SciPy or LAPACK may find the root directly: then no fall-back, no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error", SingularCovarianceWarning)
            d = frechet_distance(mx, sx, my, sy)
    assert np.isfinite(d)
    # eps = 1e-6 moves the answer only slightly away from the exact value.
    assert d == pytest.approx(SINGULAR_FID, abs=1e-4)
    assert frechet_by_eigh(mx, sx, my, sy) == pytest.approx(SINGULAR_FID, abs=1e-12)


def test_fewer_samples_than_dimensions_gives_a_finite_value(rng):
    # 5 samples in 16 dimensions: both covariances have rank 4.
    mx, sx = feature_statistics(rng.standard_normal((5, 16)))
    my, sy = feature_statistics(rng.standard_normal((5, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularCovarianceWarning)
        d = frechet_distance(mx, sx, my, sy)
    assert np.isfinite(d)
    assert d == pytest.approx(frechet_by_eigh(mx, sx, my, sy), rel=1e-4)


def test_non_finite_square_root_retries_with_eps(monkeypatch, rng):
    # Force the first square root to fail, whatever this SciPy does, and check the retry.
    s1, s2 = random_spd(rng, 4), random_spd(rng, 4)
    mu = np.zeros(4)
    real_sqrtm, calls = frechet._sqrtm, []

    def failing_once(a):
        calls.append(a)
        if len(calls) == 1:
            return np.full_like(a, np.nan)
        return real_sqrtm(a)

    monkeypatch.setattr(frechet, "_sqrtm", failing_once)
    with pytest.warns(SingularCovarianceWarning):
        d = frechet_distance(mu, s1, mu, s2, eps=1e-3)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-3 * np.eye(4)) @ (s2 + 1e-3 * np.eye(4)))
    offset = 1e-3 * np.eye(4)
    # The retry's trace term uses the regularized matrices, the other traces the originals.
    expected = frechet_by_eigh(mu, s1 + offset, mu, s2 + offset) - 2 * 4 * 1e-3
    assert d == pytest.approx(expected, rel=1e-8)


def test_still_non_finite_after_eps_raises(monkeypatch):
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: np.full_like(a, np.inf))
    with pytest.warns(SingularCovarianceWarning), pytest.raises(ValueError, match="larger eps"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))


def test_large_imaginary_diagonal_raises(monkeypatch):
    fake = np.eye(3) + 0.5j * np.eye(3)
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: fake)
    with pytest.raises(ValueError, match="imaginary component of 0.5"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3))


def test_small_imaginary_part_is_dropped(monkeypatch, rng):
    s1, s2 = random_spd(rng, 5), random_spd(rng, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    expected = frechet_distance(mu1, s1, mu2, s2)
    real_sqrtm = frechet._sqrtm
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: real_sqrtm(a) + 1e-6j)
    d = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(d, float)
    assert d == pytest.approx(expected, rel=1e-12)


def test_not_a_covariance_raises():
    # diag(-1, 1) is not positive semi-definite (sqrt(-1) = i would land on the diagonal):
    # refused before any square root, naming the matrix.
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([-1.0, 1.0]), np.zeros(2), np.eye(2))


def test_a_covariance_with_a_negative_eigenvalue_is_refused_not_scored_negative(rng):
    """Issue 22: such a "covariance" made evaluate.py print FID -127.991. Symmetric, with
    positive diagonal (it looks like a covariance), but eigenvalues 4 and -2."""
    bad = np.array([[1.0, 3.0], [3.0, 1.0]])
    assert np.linalg.eigvalsh(bad).min() == pytest.approx(-2.0)
    with pytest.raises(ValueError, match=r"sigma2 is not positive semi-definite.*-2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), bad)


def test_a_non_symmetric_covariance_is_refused():
    """Issue 22: a non-symmetric one gave FID 0.015, a number that means nothing."""
    lopsided = np.array([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="sigma1 is not symmetric"):
        frechet_distance(np.zeros(2), lopsided, np.zeros(2), np.eye(2))


def test_rounding_asymmetry_and_tiny_negative_eigenvalues_are_accepted(rng):
    """Covariances as files really hold them: float32 storage and rank-deficient estimates."""
    mu, sigma = feature_statistics(rng.standard_normal((8, 32)))   # rank 7 of 32
    sigma32 = sigma.astype(np.float32).astype(np.float64)
    sigma32[0, 1] *= 1 + 1e-7                                      # one ulp-ish of asymmetry
    frechet.check_covariance(sigma32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularCovarianceWarning)
        assert frechet_distance(mu, sigma32, mu, sigma32) >= 0.0


def test_the_distance_is_never_negative(monkeypatch, rng):
    """Rounding just below 0 is 0 (within NEGATIVE_TOLERANCE of the terms' size); a larger
    negative value, which no valid covariances give, raises."""
    s = random_spd(rng, 4)
    mu = np.zeros(4)
    real_sqrtm = frechet._sqrtm
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: real_sqrtm(a) * (1 + 1e-9))
    assert frechet_distance(mu, s, mu, s) == 0.0          # about -2e-9 Tr(s): rounding
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: real_sqrtm(a) * 1.01)
    with pytest.raises(ValueError, match="came out negative"):
        frechet_distance(mu, s, mu, s)
    for seed in range(20):   # and unpatched, identical Gaussians give 0 or more, every time
        monkeypatch.setattr(frechet, "_sqrtm", real_sqrtm)
        m, c = feature_statistics(np.random.default_rng(seed).standard_normal((40, 6)))
        assert frechet_distance(m, c, m, c) >= 0.0


@pytest.mark.parametrize(
    "mu1, sigma1, mu2, sigma2, message",
    [
        (np.zeros(3), np.eye(3), np.zeros(4), np.eye(4), "different lengths"),
        (np.zeros(3), np.eye(4), np.zeros(3), np.eye(3), r"sigma1 must be \(3, 3\)"),
        (np.zeros(3), np.eye(3), np.zeros(3), np.ones((3, 2)), r"sigma2 must be \(3, 3\)"),
        (np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3), "mu1 must be a vector"),
        (np.zeros(3), np.ones((3, 3, 3)), np.zeros(3), np.eye(3), "sigma1 must be a matrix"),
        (np.full(3, np.nan), np.eye(3), np.zeros(3), np.eye(3), "inf or NaN"),
    ],
)
def test_bad_shapes_and_values_raise(mu1, sigma1, mu2, sigma2, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(mu1, sigma1, mu2, sigma2)
