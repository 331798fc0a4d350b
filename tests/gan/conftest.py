"""Fixtures shared by the training-step tests."""

from __future__ import annotations

import pytest

from minigan.backend import default_dtype, set_default_dtype


@pytest.fixture
def float64_default():
    """New parameters and latent vectors in float64 during the test, as before afterwards."""
    before = default_dtype()
    set_default_dtype("float64")
    yield
    set_default_dtype(before)
