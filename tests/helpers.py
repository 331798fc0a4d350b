"""Small helpers shared by the tests: real-data paths, random inputs on the active backend, and
the convolution geometries that hypothesis draws."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

import minigan.backend as backend

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MINIGAN_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """Path to a file of the real test data, or skip the test if it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path


def random_array(rng: np.random.Generator, shape, dtype=np.float64, low=None):
    """A standard-normal array on the active backend (tests' usual input)."""
    a = rng.standard_normal(shape).astype(dtype)
    if low is not None:
        a = np.where(np.abs(a) < low, np.sign(a + 1e-300) * low, a)
    return backend.to_device(a)


@st.composite
def conv_geometries(draw, max_kernel: int = 4, max_size: int = 7, rectangular: bool = False):
    """x (N, C, H, W), w (F, C, KH, KW), a stride and a padding with at least one output pixel.

    Small by default, so that a finite-difference gradient check of each example stays quick.
    With ``rectangular=True`` the kernel size, stride and padding are drawn separately for H and
    W (w is (F, C, KH, KW); stride and padding are (h, w) pairs); otherwise KH == KW and stride
    and padding are ints. ``seed`` is for the random values of x and w.
    """
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    axes = 2 if rectangular else 1
    K = [draw(st.integers(1, max_kernel)) for _ in range(axes)] * (3 - axes)
    S = [draw(st.integers(1, 3)) for _ in range(axes)] * (3 - axes)
    P = [draw(st.integers(0, 2)) for _ in range(axes)] * (3 - axes)
    H = draw(st.integers(max(1, K[0] - 2 * P[0]), max_size))
    W = draw(st.integers(max(1, K[1] - 2 * P[1]), max_size))
    stride, padding = (tuple(S), tuple(P)) if rectangular else (S[0], P[0])
    return dict(x=(N, C, H, W), w=(F, C, K[0], K[1]), stride=stride, padding=padding,
                seed=draw(st.integers(0, 2**32 - 1)))
