"""A stand-in for CuPy on the CPU: records which array functions, methods and keywords the code
asks of ``xp``, and refuses to turn a device array into a NumPy array behind the code's back.

CuPy's namespace is not NumPy's: some functions are missing, some take fewer keywords (its
ufuncs take ``out``, ``dtype`` and ``casting``, not ``where``), and ``numpy.asarray`` on a CuPy
array raises instead of copying it to the host. Without a GPU the CuPy backend never runs, so
tests/test_cupy_api.py runs the code on this stand-in instead and compares what was recorded
with the installed ``cupy`` package, which imports without a GPU.

It plugs in where ``minigan.opcount`` does: the backend's seam for host arrays
(``backend.host_arrays`` with a ``backend.HostArrays``; before that seam, the hooks object in
``backend._op_counting``), whose ``module`` the backend hands out as ``xp`` (``array_module``,
``get_array_module``, ``to_device``), and which runs the ``fuse`` functions and is told of
reads to the host (``to_numpy``). Kernels that do something else for CuPy arrays ask
``is_cupy_array``; while the stand-in runs, that name in minigan's modules (not in the backend,
which must keep running ``fuse`` functions as Python) answers True for its arrays, so their CuPy
branches are the ones recorded. Here:

* ``FakeCupy`` is that module: every attribute asked of it is recorded (with the keywords of the
  call), and what it returns makes ``DeviceArray`` objects;
* ``DeviceArray`` holds a NumPy array but is not one. Its ufuncs (operators included), NumPy
  functions called on it, methods and attributes are recorded. Mixed with a NumPy array in a
  ufunc or a function it raises, as CuPy does; ``numpy.asarray`` on it raises, as on a CuPy
  array, except inside ``minigan.backend.to_numpy`` (the explicit copy, ``.get()`` on CuPy).
  ``float()``, ``int()``, ``bool()``, ``.item()`` and ``.tolist()`` work, as on CuPy (each a wait
  for the GPU, which the op counter counts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

from minigan import backend

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed (as on a CuPy "
                       "array): copy it to the host with minigan.backend.to_numpy")


class HostArrayMixed(TypeError):
    """A NumPy (host) array met a device array in one operation: CuPy raises TypeError too."""


@dataclass
class Calls:
    """What was asked of ``xp``: (kind, name) -> the keyword names used with it.

    kind: "function" (``xp.name(...)``, dotted for submodules: "lib.stride_tricks.as_strided"),
    "ufunc" (``xp.exp``, an operator, or a NumPy ufunc on a device array), "ufunc method"
    ("add.reduce"), "attribute" (``xp.float32``, ``xp.newaxis``), "method" (``a.sum(...)``),
    "array attribute" (``a.shape``, ``a.T``).
    """

    used: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def note(self, kind: str, name: str, keywords: Any = ()) -> None:
        self.used.setdefault((kind, name), set()).update(keywords)


_calls: Calls | None = None
_explicit_reads: list[Any] = []   # the arrays ``to_numpy`` is copying to the host right now


def _note(kind: str, name: str, keywords: Any = ()) -> None:
    if _calls is not None:
        _calls.note(kind, name, keywords)


def _to_host(a: Any, host_ok: bool) -> Any:
    """Arguments for NumPy: device arrays unwrapped (in tuples and lists too); a NumPy array
    is refused unless ``host_ok`` (conversions such as ``xp.asarray`` copy it to the device)."""
    if isinstance(a, DeviceArray):
        return a._data
    if isinstance(a, numpy.ndarray) and not host_ok:
        raise HostArrayMixed(f"a NumPy array {a.shape} {a.dtype} given to a device operation: "
                             f"CuPy does not accept host arrays; move it with to_device")
    if isinstance(a, (tuple, list)):
        return type(a)(_to_host(x, host_ok) for x in a)
    return a


def _to_device(result: Any) -> Any:
    """NumPy's results as device arrays; NumPy scalars as 0-d arrays, as CuPy returns them."""
    if isinstance(result, numpy.ndarray):
        return DeviceArray(result)
    if isinstance(result, numpy.generic):
        return DeviceArray(numpy.asarray(result))
    if isinstance(result, tuple):
        return tuple(_to_device(x) for x in result)
    if isinstance(result, list):
        return [_to_device(x) for x in result]
    return result


def _call(function: Callable, args: tuple, kwargs: dict, host_ok: bool = False) -> Any:
    return _to_device(function(*_to_host(args, host_ok),
                               **{k: _to_host(v, host_ok) for k, v in kwargs.items()}))


class DeviceArray(NDArrayOperatorsMixin):
    """An array "on the device": a NumPy array inside, none of NumPy's conversions outside."""

    __slots__ = ("_data",)

    def __init__(self, data: numpy.ndarray):
        self._data = data

    # ---- what NumPy asks of an object before converting it
    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        if any(a is self for a in _explicit_reads):
            _explicit_reads.clear()   # once: a later numpy.asarray of it is implicit again
            return self._data if dtype is None else self._data.astype(dtype)
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_ufunc__(self, ufunc: numpy.ufunc, method: str, *inputs: Any, **kwargs: Any):
        if method == "__call__":
            _note("ufunc", ufunc.__name__, kwargs)
        else:
            _note("ufunc method", f"{ufunc.__name__}.{method}", kwargs)
        out = kwargs.get("out")
        result = _call(getattr(ufunc, method), inputs, kwargs)
        if out is not None:   # in place: hand back the caller's own arrays
            return out[0] if len(out) == 1 else out
        return result

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any):
        # A NumPy function called on a device array: CuPy runs its own function of that name.
        _note("function", func.__name__, kwargs)
        return _call(func, args, kwargs)

    # ---- methods and attributes: recorded, then NumPy's
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):   # no __array_interface__, __array_struct__, buffers...
            raise AttributeError(name)
        value = getattr(self._data, name)
        if not callable(value):
            _note("array attribute", name)
            return _to_device(value) if isinstance(value, numpy.ndarray) else value

        def method(*args: Any, **kwargs: Any) -> Any:
            _note("method", name, kwargs)
            return _call(value, args, kwargs)
        return method

    def __getitem__(self, index: Any) -> Any:
        return _to_device(self._data[_to_host(index, host_ok=True)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._data[_to_host(index, host_ok=True)] = _to_host(value, host_ok=False)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return (_to_device(row) for row in self._data)

    # ---- reads to the host that CuPy allows (each one waits for the GPU)
    def get(self) -> numpy.ndarray:
        """The explicit copy to the host, as ``cupy.ndarray.get``."""
        _note("method", "get")
        return self._data.copy()

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __repr__(self) -> str:
        return f"DeviceArray({self._data!r})"


class _Ufunc:
    """``xp.exp`` and friends: the call and its methods (``xp.add.reduce``) are recorded."""

    def __init__(self, ufunc: numpy.ufunc):
        self.ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _note("ufunc", self.__name__, kwargs)
        out = kwargs.get("out")
        result = _call(self.ufunc, args, kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return result

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.ufunc, name)
        if not callable(attribute):
            return attribute

        def method(*args: Any, **kwargs: Any) -> Any:
            _note("ufunc method", f"{self.__name__}.{name}", kwargs)
            return _call(attribute, args, kwargs)
        return method


# Functions that take host data and copy it to the device, as CuPy's do.
CONVERSIONS = frozenset({"asarray", "array", "ascontiguousarray", "asanyarray"})


class _Namespace:
    """``xp`` or one of its submodules (``xp.lib.stride_tricks``), as NumPy's ``module``."""

    def __init__(self, module: Any, prefix: str = ""):
        self._module, self._prefix = module, prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        qualified = self._prefix + name
        value = getattr(self._module, name)
        if name == "ndarray" and not self._prefix:
            _note("attribute", qualified)
            return DeviceArray   # isinstance(a, xp.ndarray) holds for device arrays
        if isinstance(value, numpy.ufunc):
            return _Ufunc(value)
        if isinstance(value, type(numpy)):   # a submodule
            return _Namespace(value, qualified + ".")
        if isinstance(value, type) or not callable(value):   # dtypes, constants, finfo...
            _note("attribute", qualified)
            return value

        def function(*args: Any, **kwargs: Any) -> Any:
            _note("function", qualified, kwargs)
            return _call(value, args, kwargs, host_ok=name in CONVERSIONS)
        function.__name__ = name
        return function


class FakeCupy(_Namespace):
    """The stand-in for the ``cupy`` module (NumPy's functions, CuPy's rules)."""

    __name__ = "cupy"   # what code that keys a cache on its array module reads

    def __init__(self) -> None:
        super().__init__(numpy)


class _Hooks(getattr(backend, "HostArrays", object)):
    """What ``minigan.backend`` asks of its host-array seam (see ``minigan.opcount``)."""

    module = FakeCupy()

    @staticmethod
    def run_fused(function: Callable, args: tuple) -> Any:
        return function(*args)   # its lines run on device arrays, and are recorded

    @staticmethod
    def note_read(a: Any) -> None:
        # ``to_numpy`` calls this just before ``numpy.asarray(a)``: the one explicit copy.
        if isinstance(a, DeviceArray):
            _explicit_reads[:] = [a]

    host_read = note_read   # the name before backend.HostArrays


def _is_device_array(a: Any) -> bool:
    return isinstance(a, DeviceArray) or backend.is_cupy_array(a)


@contextlib.contextmanager
def _cupy_branches() -> Iterator[None]:
    """``is_cupy_array``, as imported by minigan's modules other than the backend, answers True
    for device arrays inside the block."""
    import sys

    patched = [module for name, module in list(sys.modules.items())
               if name.startswith("minigan.") and module is not backend
               and getattr(module, "is_cupy_array", None) is backend.is_cupy_array]
    for module in patched:
        module.is_cupy_array = _is_device_array
    try:
        yield
    finally:
        for module in patched:
            module.is_cupy_array = backend.is_cupy_array


@contextlib.contextmanager
def _installed(hooks: _Hooks) -> Iterator[None]:
    if hasattr(backend, "host_arrays"):
        with backend.host_arrays(hooks):
            yield
        return
    if backend._op_counting is not None:
        raise RuntimeError("the op counter is active")
    backend._op_counting = hooks
    try:
        yield
    finally:
        backend._op_counting = None


@contextlib.contextmanager
def on_fake_device() -> Iterator[Calls]:
    """Run the block with the stand-in as the backend's ``xp``, and collect what it asked for.
    Build models inside the block: arrays made before it are NumPy arrays."""
    global _calls
    if _calls is not None:
        raise RuntimeError("the device stand-in is already active")
    if backend.backend_name() != "numpy":
        raise RuntimeError("the device stand-in runs on the NumPy backend")
    if backend.array_module() is not numpy:
        raise RuntimeError("the op counter is active: the stand-in replaces what it replaces")
    _calls = Calls()
    try:
        with _installed(_Hooks()), _cupy_branches():
            yield _calls
    finally:
        _calls = None
        _explicit_reads.clear()
