"""Shared test settings.

* The backend comes from ``MINIGAN_BACKEND`` (``numpy`` by default), so the whole suite can be run
  on a GPU with ``MINIGAN_BACKEND=cupy python -m pytest``. Tests create their arrays with
  ``to_device`` so that they follow it.
* Hypothesis draws a moderate number of examples with no deadline: the suite must stay quick on
  two CPU cores, and gradient checks are slow by nature.
* Real data lives beside the repository in ``../shared/data`` (or ``MINIGAN_TEST_DATA``); tests
  that need it skip when it is missing.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minigan.backend as backend

settings.register_profile(
    "default", max_examples=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

@pytest.fixture
def xp():
    """The array module of the active backend (numpy, or cupy when MINIGAN_BACKEND=cupy)."""
    return backend.array_module()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _restore_backend_state():
    """Tests may change the backend or default dtype; put them back afterwards."""
    name, dtype = backend.backend_name(), backend.default_dtype()
    yield
    backend._active = name
    backend._default_dtype = dtype


def pytest_collection_modifyitems(config, items):
    try:
        backend._import_cupy()
        has_gpu = True
    except backend.BackendError:
        has_gpu = False
    skip = pytest.mark.skip(reason="needs CuPy and a visible GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip)
