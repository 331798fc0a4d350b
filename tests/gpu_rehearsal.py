"""A rehearsal, on the CPU, of the test suite run on a GPU: ``MINIGAN_BACKEND=cupy pytest``.

    python -m pytest -q -p tests.gpu_rehearsal            # the whole suite, as on a GPU
    python -m pytest -q -p tests.gpu_rehearsal tests/gan  # a part of it

A machine with a GPU is lent rarely and for minutes, and a suite run there that stops at its
thirtieth failure (the shared GPU check allows 30) should not spend them on tests that only
pass NumPy arrays to a model on the GPU. This plugin runs each test (its fixtures included) as
if the backend were CuPy: ``backend_name()`` says "cupy", ``array_module()`` and ``to_device``
hand out ``tests/device_standin.py``'s device arrays, ``get_array_module`` answers the stand-in
for those and NumPy for NumPy arrays (as it answers CuPy and NumPy on a GPU), and the kernels
take their CuPy branches. A NumPy array meeting a device array in one operation, or a device
array read as a NumPy array without ``to_numpy``, then fails as it would on the GPU.

It is a rehearsal, not the GPU: the stand-in runs NumPy underneath, so it says nothing about
CuPy's numbers, compilers or speed, and it is stricter than CuPy in one place (CuPy copies a
NumPy array assigned into a device array's slice to the device; the stand-in refuses). Tests
that use the stand-in themselves (``tests/test_cupy_api.py``) run as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy
import pytest

from minigan import backend
from tests import device_standin
from tests.device_standin import DeviceArray

_device_module: Any = None   # the stand-in's module, while a test runs


def _host_module() -> Any:
    """NumPy, or what stands in for it on the host meanwhile (the op counter's module)."""
    module = backend._host.module
    return numpy if module is _device_module else module


def _array_module() -> Any:
    return _device_module if backend._active == "cupy" else _host_module()


def _get_array_module(*arrays: Any) -> Any:
    return _device_module if any(isinstance(a, DeviceArray) for a in arrays) else _host_module()


def _patch(name: str, replacement: Any) -> list[Any]:
    """Replace ``name`` in the backend and in every module that imported it from the backend
    (minigan's, the tests', the examples'); returns the modules patched."""
    original = getattr(backend, name)
    modules = [m for m in list(sys.modules.values())
               if m is not None and getattr(m, name, None) is original]
    for module in modules:
        setattr(module, name, replacement)
    return modules


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Iterator[None]:
    global _device_module
    if item.path.name == "test_cupy_api.py":      # it runs the stand-in itself
        yield
        return
    originals = {name: getattr(backend, name) for name in ("array_module", "get_array_module")}
    backend._active = "numpy"                     # the stand-in starts from the NumPy backend
    stand_in = device_standin.on_fake_device()
    stand_in.__enter__()
    _device_module = backend._host.module
    patched = {"array_module": _patch("array_module", _array_module),
               "get_array_module": _patch("get_array_module", _get_array_module)}
    import_cupy, backend._import_cupy = backend._import_cupy, lambda: _device_module
    backend._active = "cupy"
    try:
        yield
    finally:
        for name, modules in patched.items():
            for module in modules:
                setattr(module, name, originals[name])
        backend._import_cupy, backend._active = import_cupy, "numpy"
        stand_in.__exit__(None, None, None)
        _device_module = None

