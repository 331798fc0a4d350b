"""Small helpers shared by the tests: real-data paths and random inputs on the active backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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
