"""The array backend: the one module that knows whether arrays live in NumPy (CPU) or CuPy (GPU).

Everything else follows two rules:

* kernels in ``minigan.ops`` start with ``xp = get_array_module(x)`` and then call only functions
  that NumPy and CuPy both provide, so the same line of code runs on either device;
* new arrays (weights, noise, batches) are made by ``to_device`` / the random helpers below, which
  put them on the backend chosen with ``use_backend`` or the ``MINIGAN_BACKEND`` variable.

Random numbers are always drawn on the host with a ``numpy.random.Generator`` and then moved to the
device. That costs a small copy on the GPU, and buys two things a learner wants: the same seed
gives the same numbers on NumPy and CuPy, and a generator's state is a small dict that a
checkpoint can store, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy

from minigan import hostmem

BACKENDS = ("numpy", "cupy")
DEFAULT_DTYPE = numpy.float32

_CUPY_HELP = (
    "install CuPy for your CUDA version: `pip install -e \".[cuda]\"` in the minigan folder "
    "(CUDA 12) or `pip install cupy-cuda13x` (CUDA 13); or use the NumPy backend "
    "(--backend numpy)"
)


class BackendError(RuntimeError):
    """Raised when the requested backend cannot be used (for example CuPy without a GPU)."""


def _check_name(name: str) -> str:
    name = str(name).strip().lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return name


# Checked on first use, not here: a typo in the variable must give one clear line from the
# script that uses the backend, not a traceback from ``import minigan``.
_active = (os.environ.get("MINIGAN_BACKEND") or "numpy").strip().lower()
_default_dtype = numpy.dtype(DEFAULT_DTYPE)


def _import_cupy() -> ModuleType:
    """Import CuPy and make sure a GPU is visible, or raise one clear BackendError."""
    try:
        import cupy
    except ImportError:
        raise BackendError(f"the cupy backend needs CuPy, which is not installed: {_CUPY_HELP}") \
            from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken: CuPy raises its own error types
        raise BackendError(f"CuPy is installed but cannot reach a GPU ({error}); {_CUPY_HELP}") \
            from None
    if count == 0:
        raise BackendError(f"CuPy is installed but no GPU is visible; {_CUPY_HELP}")
    return cupy


def check_backend(name: str) -> str:
    """The backend's name, checked: a BackendError saying what is missing if ``name`` is not
    one, or is ``"cupy"`` where CuPy or a GPU is missing. Nothing is switched."""
    name = _check_name(name)
    if name == "cupy":
        _import_cupy()
    return name


def use_backend(name: str) -> None:
    """Choose where new arrays are created: ``"numpy"`` (CPU) or ``"cupy"`` (NVIDIA GPU)."""
    global _active
    name = check_backend(name)  # fail now, with a clear message, rather than at the first array
    if name == "numpy":
        # Training makes many large temporaries; reusing their memory is what keeps the CPU
        # backend fast. The why and the cost are in minigan/hostmem.py.
        hostmem.cache_host_memory()
    _active = name


class HostArrays:
    """How arrays that are not on a GPU are made and read: by NumPy itself.

    It is the one seam of this module: ``minigan.opcount`` puts a counting stand-in in its
    place (``host_arrays``) for as long as it counts, and nothing else in minigan knows.
    """

    module: Any = numpy   # what array_module / get_array_module hand out for host arrays
    # Whether a kernel should take its way with the fewest array operations over its fastest
    # way on this device (``launches_dominate``): not on a CPU, where each operation costs its
    # arithmetic and its passes over memory and little more.
    launches_dominate: bool = False

    @staticmethod
    def run_fused(function: Callable[..., Any], args: tuple) -> Any:
        """Run a ``fuse`` function on host arrays: as the plain Python it is."""
        return function(*args)

    @staticmethod
    def note_read(a: Any) -> None:
        """Called by ``to_numpy`` before an array is read on the host (nothing to do here)."""


_host = HostArrays()


@contextlib.contextmanager
def host_arrays(host: HostArrays) -> Iterator[None]:
    """Use ``host`` in place of NumPy's own HostArrays inside the block (``minigan.opcount``)."""
    global _host
    previous, _host = _host, host
    try:
        yield
    finally:
        _host = previous


def backend_name() -> str:
    """The name of the active backend: ``"numpy"`` or ``"cupy"``."""
    return _check_name(_active)


def array_module() -> ModuleType:
    """The module (``numpy`` or ``cupy``) that new arrays are created with."""
    if backend_name() == "cupy":
        return _import_cupy()
    return _host.module


def get_array_module(*arrays: Any) -> ModuleType:
    """The module that owns ``arrays``: ``cupy`` if any of them is a CuPy array, else ``numpy``.

    Kernels call this on their inputs, so they run wherever their inputs live.
    """
    cupy = sys.modules.get("cupy")  # only loaded if someone asked for it
    if cupy is not None and any(isinstance(a, cupy.ndarray) for a in arrays):
        return cupy
    return _host.module


def launches_dominate(a: Any) -> bool:
    """Whether, where ``a`` lives, an array operation costs more than its arithmetic: on a GPU
    yes (each one is a kernel launch of several microseconds, and a DCGAN's arrays are small),
    and in ``minigan.opcount``'s count, which models a GPU's launches; on NumPy no. A kernel
    with two fast ways, one with fewer operations and one that is faster on a CPU, asks this
    (``minigan/ops/input_grad_fast.py``)."""
    return is_cupy_array(a) or _host.launches_dominate


def is_cupy_array(a: Any) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(a, cupy.ndarray)


# Every function decorated with ``fuse``, so that a test can check each one (tests/test_fuse.py).
FUSED_FUNCTIONS: list[Callable[..., Any]] = []


def fuse(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function`` as one GPU kernel when it gets CuPy arrays; as itself when it gets NumPy's.

    On a GPU each array operation is a kernel launch that reads its inputs from GPU memory and
    writes a new array back: ``y = x_hat * gamma + beta`` is two launches and one temporary. The
    arrays of a DCGAN step are small enough that the launches, not the arithmetic, take the time.
    ``cupy.fuse`` traces the Python function once per argument dtype and emits a single kernel
    that evaluates the whole expression for each element in registers. With NumPy arrays (or
    when CuPy is not installed) the function just runs as written: the CPU, the tests and a
    debugger all see plain Python. ``fused.__wrapped__`` is the undecorated function.

    What ``cupy.fuse`` can trace sets the rules for a fused function's body:
    * arguments are arrays, or scalars already converted to the arrays' dtype;
    * only arithmetic, comparison and in-place operators (``+ - * / ** > +=`` ...) and
      ``.astype``: no ``xp.`` functions, no ``.shape``, no arithmetic between two scalars;
    * it returns an array, a tuple of arrays, or None when it updates its arguments in place.
    tests/test_fuse.py runs every fused function on arguments that allow exactly this much.
    """
    compiled = None

    @functools.wraps(function)
    def run(*args: Any) -> Any:
        nonlocal compiled
        if not any(is_cupy_array(a) for a in args):
            return _host.run_fused(function, args)
        if compiled is None:  # compiled on the first call with CuPy arrays, then reused
            compiled = sys.modules["cupy"].fuse(kernel_name=function.__name__)(function)
        return compiled(*args)

    FUSED_FUNCTIONS.append(run)
    return run


def to_numpy(a: Any) -> numpy.ndarray:
    """Copy an array to the host as a NumPy array (a no-op for NumPy arrays)."""
    if is_cupy_array(a):
        return a.get()
    _host.note_read(a)
    return numpy.asarray(a)


def to_device(a: Any, dtype: Any = None) -> Any:
    """Put ``a`` on the active backend (optionally converting the dtype)."""
    xp = array_module()
    if xp is numpy:
        a = to_numpy(a)
    return xp.asarray(a, dtype=dtype)


def default_dtype() -> numpy.dtype:
    """The dtype of new parameters and batches: float32 unless changed."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Change the dtype of new parameters and batches (float64 is useful for gradient checks)."""
    global _default_dtype
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise BackendError(f"the default dtype must be a floating type, got {dtype}")
    _default_dtype = dtype


def make_rng(seed: int | None = None) -> numpy.random.Generator:
    """A seeded NumPy generator: the one source of randomness for every backend."""
    return numpy.random.default_rng(seed)


def randn(rng: numpy.random.Generator, shape: tuple[int, ...], dtype: Any = None) -> Any:
    """Standard-normal samples of ``shape`` on the active backend, drawn on the host by ``rng``."""
    dtype = numpy.dtype(dtype or _default_dtype)
    return to_device(rng.standard_normal(shape).astype(dtype))


def uniform(
    rng: numpy.random.Generator, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0,
    dtype: Any = None,
) -> Any:
    """Uniform samples in ``[low, high)`` on the active backend, drawn on the host by ``rng``."""
    dtype = numpy.dtype(dtype or _default_dtype)
    return to_device(rng.uniform(low, high, size=shape).astype(dtype))


# The generator that layers use for their initial weights when they are not given one, so that
# ``manual_seed(0)`` followed by building a model always gives the same weights (as in PyTorch).
_global_rng = numpy.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the generator used for default weight initialisation."""
    global _global_rng
    _global_rng = numpy.random.default_rng(seed)


def global_rng() -> numpy.random.Generator:
    """The generator behind default weight initialisation (see ``manual_seed``)."""
    return _global_rng
