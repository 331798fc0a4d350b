"""Two guards around a learner's code while it is graded, so that a wrong answer never passes.

The checks compare what the learner's function returns with minigan's own answer, computed on
the same inputs. Two things a learner's file can do, by mistake more often than not, would
make that comparison meaningless:

* **Rebind a minigan name.** A file that says ``dcgan.Discriminator = Discriminator`` (to make
  training use it, say) would have the check build "minigan's" model from the learner's class,
  and compare the learner's code with itself. ``minigan_read_only`` makes minigan's modules
  refuse such an assignment while the grader runs: the learner's line raises, and the row says
  so. (Training needs no such line: ``use_kernels`` puts the finished functions in place, and
  loads the files under the same guard, so that no rebinding outlives its ``with`` block.)
* **Change an input in place.** ``x *= slope`` in a forward pass, or ``diff = mu1;
  diff -= mu2``, writes into the caller's array. In a network that corrupts what the layer
  before still needs; in the grader, an expected value computed afterwards from the same array
  would be wrong, failing a right answer with a wrong "should be", or passing a wrong one.
  ``LeaveInputsAlone`` hands the checks the learner's functions wrapped so that each call
  copies its array arguments first and compares them after: a change fails the check, named.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy

from minigan.backend import is_cupy_array, to_numpy
from minigan.exercises.checks import KernelCheckFailed
from minigan.exercises.records import EXERCISES, FUNCTION_NAMES

# The exercise functions whose job is to update their arguments in place (Adam's parameter and
# moments, as PyTorch's optimizers do); their checks test that the update happened.
UPDATE_IN_PLACE = frozenset({"adam_update"})


class _ReadOnlyModule(ModuleType):
    """A minigan module while the grader runs: its existing names cannot be rebound."""

    def __setattr__(self, name: str, value: Any) -> None:
        # New names and submodules stay allowed: importing minigan.x.y binds y on minigan.x.
        if name in self.__dict__ and not isinstance(value, ModuleType):
            raise AttributeError(f"{self.__name__}.{name} cannot be changed by a kernel "
                                 f"file: it only defines its functions (the grader and training "
                                 f"put the finished ones in place themselves)")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self.__name__}.{name} cannot be deleted by a kernel file")


@contextmanager
def minigan_read_only() -> Iterator[None]:
    """Inside the block, every minigan module imported so far refuses to have a name rebound
    (``minigan.gan.dcgan.Discriminator = ...`` raises AttributeError). Assignments a module
    makes to its own globals (``global`` statements) are not attribute assignments and are
    unaffected. The modules that hold minigan's answers are imported first, so that they are
    among them."""
    for exercise in EXERCISES:
        importlib.import_module(exercise.solutions)
        if exercise.swap is not None:
            importlib.import_module(exercise.swap.module)
    modules = [m for name, m in list(sys.modules.items())
               if (name == "minigan" or name.startswith("minigan.")) and type(m) is ModuleType]
    for module in modules:
        module.__class__ = _ReadOnlyModule
    try:
        yield
    finally:
        for module in modules:
            module.__class__ = ModuleType   # not in the module's names: allowed


class LeaveInputsAlone:
    """``kernels`` (an object whose attributes are the exercise functions) with each function
    wrapped by ``untouched_inputs``, except those whose job is an in-place update. Classes and
    anything else are handed out as they are. ``last_called``: the name of the exercise
    function called last (what the grader was using when something went wrong)."""

    def __init__(self, kernels: Any):
        self._kernels = kernels
        self.last_called: str | None = None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._kernels, name)
        if name not in FUNCTION_NAMES or not callable(value) or inspect.isclass(value):
            return value
        function = value if name in UPDATE_IN_PLACE else untouched_inputs(name, value)

        @functools.wraps(value)
        def noted(*args: Any, **kwargs: Any) -> Any:
            self.last_called = name
            return function(*args, **kwargs)

        return noted


def untouched_inputs(name: str, function: Any) -> Any:
    """``function`` that raises KernelCheckFailed if a call changed one of its array
    arguments (or an array inside a tuple argument, such as a cache)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        before = [(label, array, to_numpy(array).copy())
                  for label, array in _arrays(function, args, kwargs)]
        result = function(*args, **kwargs)
        for label, array, copy in before:
            now = to_numpy(array)
            if not numpy.array_equal(now, copy, equal_nan=now.dtype.kind in "fc"):
                raise KernelCheckFailed(
                    f"{name} changed its argument {label} in place: a kernel must leave its "
                    f"inputs as they were (the caller still needs them); write the result "
                    f"into a new array (for example y = x * s, not x *= s)")
        return result

    return guarded


def _arrays(function: Any, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """(name, array) for each array argument, and each array inside a tuple argument."""
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):   # a signature the call does not fit: the call will say so
        bound = {f"argument {i + 1}": a for i, a in enumerate(args)} | kwargs
    found = []
    for label, value in bound.items():
        if is_array(value):
            found.append((label, value))
        elif isinstance(value, tuple):   # a cache: a tuple or NamedTuple of arrays
            fields = getattr(value, "_fields", range(len(value)))
            found += [(f"{label}.{field}" if isinstance(field, str) else f"{label}[{field}]",
                       item) for field, item in zip(fields, value) if is_array(item)]
    return found


def is_array(value: Any) -> bool:
    """A NumPy or CuPy array (or a NumPy scalar, which has a dtype too)."""
    return isinstance(value, numpy.ndarray | numpy.generic) or is_cupy_array(value)
