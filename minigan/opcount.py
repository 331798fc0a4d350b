"""Counting array operations on the CPU: how many kernel launches a step would make on a GPU.

A GPU runs each array operation (``a + b``, ``x.sum()``, ``xp.zeros(...)``, a copy) as one
kernel launch, and a launch costs several microseconds however small the array. A DCGAN step on
32x32 images makes hundreds of them, so on a fast GPU their number, not the arithmetic, sets the
step time. This module counts them on NumPy, so that the count can be measured (and kept down)
on a machine without a GPU:

    with count_array_ops() as counter:
        trainer = GANTrainer(...)        # build inside: every array is then a counted one
        trainer.train_step(real)         # a first step, untimed
        counter.reset()
        trainer.train_step(real)
    print(counter.total, counter.by_name.most_common(5), counter.host_reads)

While it is active, ``minigan.backend`` hands out a stand-in for the ``numpy`` module
(``CountingNumpy``) and every array made through it is a ``CountingArray``: an ordinary NumPy
array (a subclass) whose ufuncs (operators, ``xp.exp``, reductions such as ``.sum()``), NumPy
functions (``xp.einsum``, ``xp.where``, ...) and copying methods (``.astype``, ``.copy``,
``a[...] = b``) each add one to the count. Views (``.reshape`` without a copy, ``.T``, basic
slicing) are free, as on a GPU. A function decorated with ``minigan.backend.fuse`` counts once,
because on CuPy it is one kernel. Reading a value on the host (``float(loss)``, ``to_numpy``) is
counted apart, as ``host_reads``: on a GPU each one waits until every queued launch has run.

It is a model of a GPU, not a GPU: it counts the calls minigan makes, not the kernels a library
function runs inside (CuPy's einsum, for one, may copy its operands first, which counts as one
here), and it says nothing about time. Use it to compare versions of the code.

Counting changes no branch a kernel takes but one: the counted arrays are NumPy arrays, and a
kernel that does something else for CuPy arrays (batch norm's fast variants sum with einsum on
the host, with a product and a column sum on a GPU) takes its host path while counted, exactly as
it does uncounted (``tests/test_counting_changes_nothing.py`` runs a training step both ways and
compares the functions called and the numbers). Where the paths differ, a GPU makes one more
launch than counted here. The one exception is a choice made for launches' sake: a kernel that
asks ``backend.launches_dominate`` (the fast input gradient of a convolution, which on a CPU
takes the faster of two ways and on a GPU the one with fewer operations) gets the GPU's answer
here, so that the count stays the GPU's (``tests/ops/test_input_grad_fast.py``).
The only thing of minigan's this module replaces is ``minigan.backend.HostArrays``, the seam
through which host arrays are made, fused functions run and values read.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy

from minigan import backend

# NumPy functions that only make a view (or read metadata): no kernel on a GPU.
VIEW_FUNCTIONS = frozenset({
    "reshape", "transpose", "moveaxis", "swapaxes", "broadcast_to", "broadcast_arrays",
    "expand_dims", "squeeze", "atleast_1d", "atleast_2d", "atleast_3d", "shape", "ndim", "size",
    "result_type", "may_share_memory", "shares_memory", "sliding_window_view", "iscomplexobj",
    "isrealobj", "real", "imag",
})
# ndarray methods that compute (one kernel each on a GPU) without going through a ufunc call of
# their own, or that would count as several ufunc calls (``mean`` is a sum and a division).
COMPUTE_METHODS = ("sum", "mean", "var", "std", "max", "min", "prod", "any", "all", "argmax",
                   "argmin", "dot", "clip", "cumsum", "round", "fill", "copy", "flatten", "take",
                   "nonzero")
# ndarray methods that return a view when they can and a copy when they must.
VIEW_OR_COPY_METHODS = ("reshape", "ravel", "transpose", "swapaxes", "squeeze")


class OpCounter:
    """The running count: ``total`` operations, ``by_name`` per operation, ``host_reads``."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()
        self.host_reads = 0
        self.depth = 0   # > 0 while inside a counted operation: what it calls is not counted

    @property
    def total(self) -> int:
        return sum(self.by_name.values())

    def reset(self) -> None:
        self.by_name.clear()
        self.host_reads = 0

    def note(self, name: str) -> None:
        if self.depth == 0:
            self.by_name[name] += 1

    def note_host_read(self) -> None:
        if self.depth == 0:
            self.host_reads += 1

    @contextlib.contextmanager
    def one_op(self, name: str, counts: bool = True) -> Iterator[None]:
        """Count ``name`` once (if ``counts``), and nothing that runs inside the block."""
        if counts:
            self.note(name)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


_counter: OpCounter | None = None   # the active counter, while ``count_array_ops`` runs


def _plain(a: Any) -> Any:
    """A CountingArray as a plain ndarray view (so NumPy's own code does not recurse)."""
    return numpy.ndarray.view(a, numpy.ndarray) if isinstance(a, CountingArray) else a


def counted(a: Any) -> Any:
    """Arrays (and NumPy scalars, as 0-d arrays, which is what CuPy returns) as CountingArrays;
    tuples element by element; anything else unchanged."""
    if isinstance(a, CountingArray):
        return a
    if isinstance(a, numpy.ndarray):
        return a.view(CountingArray)
    if isinstance(a, numpy.generic):
        return numpy.asarray(a).view(CountingArray)
    if isinstance(a, tuple):
        return tuple(counted(x) for x in a)
    if isinstance(a, list):
        return [counted(x) for x in a]
    return a


def _active() -> OpCounter:
    # Arrays made while counting may outlive it; afterwards they count into a throwaway counter.
    return _counter if _counter is not None else OpCounter()


class CountingArray(numpy.ndarray):
    """A NumPy array that reports each operation on it to the active ``OpCounter``."""

    def __array_ufunc__(self, ufunc: numpy.ufunc, method: str, *inputs: Any, **kwargs: Any):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        with _active().one_op(name):
            result = getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)
        if out is not None:   # in place: hand back the caller's own arrays
            return out[0] if len(out) == 1 else out
        return counted(result)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any):
        name = func.__name__
        with _active().one_op(name, counts=name not in VIEW_FUNCTIONS):
            result = super().__array_function__(func, types, args, kwargs)
        return counted(result)

    # ---- copies that NumPy does not route through a ufunc or an array function
    def astype(self, dtype: Any, *args: Any, **kwargs: Any):
        plain = _plain(self)
        result = plain.astype(dtype, *args, **kwargs)
        if result is plain:   # copy=False and nothing to convert: the array itself
            return self
        _active().note("astype")
        return counted(result)

    def __getitem__(self, index: Any):
        result = _plain(self)[_plain(index)]
        if isinstance(result, numpy.ndarray) and not numpy.may_share_memory(result, self):
            _active().note("gather")    # advanced (integer or boolean) indexing copies
        return counted(result)

    def __setitem__(self, index: Any, value: Any) -> None:
        with _active().one_op("setitem"):   # a copy or fill kernel
            _plain(self)[_plain(index)] = _plain(value)

    # ---- reading a value on the host: a device-to-host copy and a wait on a GPU
    def __float__(self) -> float:
        _active().note_host_read()
        return float(_plain(self))

    def __int__(self) -> int:
        _active().note_host_read()
        return int(_plain(self))

    def __bool__(self) -> bool:
        _active().note_host_read()
        return bool(_plain(self))

    def item(self, *args: Any) -> Any:
        _active().note_host_read()
        return _plain(self).item(*args)

    def tolist(self) -> Any:
        _active().note_host_read()
        return _plain(self).tolist()


def _compute_method(name: str) -> Callable:
    def method(self: CountingArray, *args: Any, **kwargs: Any) -> Any:
        with _active().one_op(name):
            result = getattr(_plain(self), name)(*(_plain(a) for a in args), **kwargs)
        return counted(result)
    method.__name__ = name
    return method


def _view_or_copy_method(name: str) -> Callable:
    def method(self: CountingArray, *args: Any, **kwargs: Any) -> Any:
        result = getattr(_plain(self), name)(*args, **kwargs)
        if isinstance(result, numpy.ndarray) and not numpy.may_share_memory(result, self):
            _active().note(name)
        return counted(result)
    method.__name__ = name
    return method


for _name in COMPUTE_METHODS:
    setattr(CountingArray, _name, _compute_method(_name))
for _name in VIEW_OR_COPY_METHODS:
    setattr(CountingArray, _name, _view_or_copy_method(_name))


class _StrideTricks:
    @staticmethod
    def as_strided(x: Any, *args: Any, **kwargs: Any) -> Any:
        """A view: free. Kept a CountingArray so that what is done with it is counted."""
        return counted(numpy.lib.stride_tricks.as_strided(_plain(x), *args, **kwargs))

    sliding_window_view = staticmethod(numpy.lib.stride_tricks.sliding_window_view)


class _Lib:
    stride_tricks = _StrideTricks()


class CountingNumpy:
    """A stand-in for the ``numpy`` module: array creation and conversion are counted and give
    CountingArrays; every other name is NumPy's own (its functions dispatch to CountingArray)."""

    lib = _Lib()

    def __getattr__(self, name: str) -> Any:
        return getattr(numpy, name)

    # Creation. On a GPU, ``empty`` only takes memory from a pool (no launch); ``zeros`` is a
    # memset and ``ones``, ``full`` and ``arange`` a fill kernel each.
    def empty(self, *args: Any, **kwargs: Any) -> CountingArray:
        return counted(numpy.empty(*args, **kwargs))

    def empty_like(self, a: Any, *args: Any, **kwargs: Any) -> CountingArray:
        """Like ``empty``: memory from the pool, no launch (the layout follows ``a``)."""
        return counted(numpy.empty_like(_plain(a), *args, **kwargs))

    def _created(self, name: str, *args: Any, **kwargs: Any) -> CountingArray:
        _active().note(name)
        return counted(getattr(numpy, name)(*args, **kwargs))

    def zeros(self, *args: Any, **kwargs: Any) -> CountingArray:
        return self._created("zeros", *args, **kwargs)

    def ones(self, *args: Any, **kwargs: Any) -> CountingArray:
        return self._created("ones", *args, **kwargs)

    def full(self, *args: Any, **kwargs: Any) -> CountingArray:
        return self._created("full", *args, **kwargs)

    def arange(self, *args: Any, **kwargs: Any) -> CountingArray:
        return self._created("arange", *args, **kwargs)

    # Conversion: free for an array already on the "device" with the right dtype and layout;
    # a conversion kernel otherwise; a host-to-device copy for anything else (lists, scalars,
    # plain NumPy arrays: what ``to_device`` gets from the host's random generator).
    def asarray(self, a: Any, dtype: Any = None, **kwargs: Any) -> CountingArray:
        if isinstance(a, CountingArray):
            return a.astype(dtype, copy=False) if dtype is not None else a
        _active().note("to_device")
        return counted(numpy.array(a, dtype=dtype, **kwargs))

    array = asarray

    def ascontiguousarray(self, a: Any, dtype: Any = None) -> CountingArray:
        if isinstance(a, CountingArray) and a.flags.c_contiguous and dtype in (None, a.dtype):
            return a
        _active().note("to_device" if not isinstance(a, CountingArray) else "ascontiguousarray")
        return counted(numpy.ascontiguousarray(_plain(a), dtype=dtype))


class _CountingHost(backend.HostArrays):
    """What ``minigan.backend`` uses for host arrays while counting (``backend.host_arrays``)."""

    module = CountingNumpy()
    # The count is of a GPU's launches: where a kernel picks its way by the device
    # (``backend.launches_dominate``), it picks the way a GPU takes.
    launches_dominate = True

    @staticmethod
    def run_fused(function: Callable, args: tuple) -> Any:
        """A ``fuse`` function is one kernel on CuPy: count one, and nothing inside."""
        with _active().one_op(function.__name__):
            return counted(function(*args))

    @staticmethod
    def note_read(a: Any) -> None:
        if isinstance(a, CountingArray):
            _active().note_host_read()


@contextlib.contextmanager
def count_array_ops() -> Iterator[OpCounter]:
    """Count array operations on the NumPy backend until the block ends (not reentrant).

    Arrays made before the block are plain NumPy arrays and not counted until they meet a
    counted one (``counted`` converts one); build the model inside the block.
    """
    global _counter
    if _counter is not None:
        raise RuntimeError("count_array_ops is already active")
    if backend.backend_name() != "numpy":
        raise RuntimeError("count_array_ops counts on the NumPy backend only")
    _counter = OpCounter()
    try:
        with backend.host_arrays(_CountingHost()):
            yield _counter
    finally:
        _counter = None
