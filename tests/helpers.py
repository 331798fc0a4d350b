"""Small helpers shared by the tests: real-data paths, random inputs on the active backend, the
convolution geometries that hypothesis draws (built on the exercises' cases,
``minigan.exercises.cases``, and its ``seeds``), and ``helper_test_op``, which checks a kernel
pair against its reference and finite differences in one line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import minigan.backend as backend
from minigan import ops
from minigan.exercises import cases
from minigan.exercises.cases import seeds as seeds
from minigan.gradcheck import check_op
from minigan.ops import reference

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

    The exercises' own convolution cases (``minigan.exercises.cases.conv_cases``, without their
    bias flag), small by default so that a finite-difference gradient check of each example
    stays quick. With ``rectangular=True`` the H numbers (H, KH, stride and padding along H) come
    from one such case and the W numbers from another (stride and padding are then (h, w)
    pairs); otherwise KH == KW and stride and padding are ints. ``seed`` is for the random
    values of x and w.
    """
    rows = draw(cases.conv_cases(max_kernel, max_size))
    cols = draw(cases.conv_cases(max_kernel, max_size)) if rectangular else rows
    (N, C, H, _), (F, _, KH, _) = rows["x"], rows["w"]
    W, KW = cols["x"][3], cols["w"][3]
    if rectangular:
        stride, padding = (rows["stride"], cols["stride"]), (rows["padding"], cols["padding"])
    else:
        stride, padding = rows["stride"], rows["padding"]
    return dict(x=(N, C, H, W), w=(F, C, KH, KW), stride=stride, padding=padding,
                seed=rows["seed"])


def helper_test_op(name: str, *inputs, seed: int = 0, atol: float = 1e-12,
                   grad_tolerance: float = 1e-6, forward_name: str | None = None, **options):
    """Check the kernel pair ``minigan.ops.<name>_forward`` / ``<name>_backward`` in one line.

    In the style of tinygrad's ``helper_test_op``: with the fast kernels and with the plain ones
    (``ops.fast_kernels``), the forward output and every gradient of a random dy must match
    ``minigan.ops.reference.<name>_forward_reference`` / ``_backward_reference`` (to ``atol``,
    relative and absolute), and the backward pass must match finite differences (a relative
    error under ``grad_tolerance``). Inputs that are None (no bias) are passed through.
    ``forward_name`` picks another forward of the same op (``batch_norm_eval``).

        helper_test_op("conv2d", x, w, b, stride=2, padding=1)
    """
    forward_name = forward_name or name
    forward = getattr(ops, f"{forward_name}_forward")
    backward = getattr(ops, f"{name}_backward")
    y_ref, cache_ref = getattr(reference, f"{forward_name}_forward_reference")(*inputs, **options)
    dy = random_array(np.random.default_rng([seed, 1]), y_ref.shape, dtype=y_ref.dtype)
    grads_ref = getattr(reference, f"{name}_backward_reference")(dy, cache_ref)
    for fast in (True, False):
        path = "fast" if fast else "plain"
        with ops.fast_kernels(fast):
            y, cache = forward(*inputs, **options)
            assert y.shape == y_ref.shape, (path, y.shape, y_ref.shape)
            np.testing.assert_allclose(backend.to_numpy(y), backend.to_numpy(y_ref), rtol=atol,
                                       atol=atol, err_msg=f"{name} forward ({path} kernels)")
            grads = backward(dy, cache)
            assert len(grads) == len(grads_ref)
            for index, (g, g_ref) in enumerate(zip(grads, grads_ref)):
                assert (g is None) == (g_ref is None), (path, index)
                if g is not None:
                    np.testing.assert_allclose(
                        backend.to_numpy(g), backend.to_numpy(g_ref), rtol=atol, atol=atol,
                        err_msg=f"{name} backward, gradient {index} ({path} kernels)")
            err = check_op(forward, backward, *inputs, **options)
            assert err < grad_tolerance, f"{name} ({path} kernels): gradcheck error {err:.2e}"


@contextmanager
def two_blas_threads() -> Iterator[None]:
    """BLAS at two threads inside the block, as the split step wants them
    (``minigan/gan/split_step.py``); skips the test where that cannot be: one core, or a BLAS
    that takes no second thread."""
    from minigan.gan import split_step

    with threadpool_limits(2, user_api="blas"):
        if split_step.blas_threads() != 2 or split_step.usable_cores() < 2:
            pytest.skip("no two cores, or a BLAS that takes no second thread")
        yield
