"""Whose kernels: a learner's folder, minigan's own, and swapping the learner's into minigan.

A learner's folder (made by ``python -m minigan.exercises init my_kernels/``) holds the stub
files of ``minigan/exercises/stubs``, filled in. ``load_kernels`` imports it as a package of its
own (so that ``conv2d.py`` can say ``from .im2col import im2col`` and get the learner's im2col),
fresh on every call, and returns a namespace with one attribute per kernel function.

``use_kernels(folder)`` then puts the learner's functions where minigan's layers look for them.
The layers call kernels late-bound, through the package namespace (``ops.conv2d_forward(...)``),
and Adam calls ``minigan.optim.adam_update``; so setting those attributes for the length of a
``with`` block makes every Conv2d, BatchNorm, LeakyReLU, Tanh, loss and Adam step in it run the
learner's code. Functions travel in groups (a forward, its backward, and what shares their
cache), and a group whose stub is still unfinished stays minigan's.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

# Each stub file and the kernel functions it defines, in the order a course assigns them.
STUB_FILES: dict[str, tuple[str, ...]] = {
    "im2col.py": ("im2col", "col2im"),
    "conv2d.py": ("conv2d_forward", "conv2d_backward"),
    "conv_transpose2d.py": ("conv_transpose2d_forward", "conv_transpose2d_backward"),
    "batchnorm.py": ("batch_norm_forward", "batch_norm_eval_forward", "batch_norm_backward",
                     "update_running_stats"),
    "activations.py": ("leaky_relu_forward", "leaky_relu_backward", "tanh_forward",
                       "tanh_backward"),
    "losses.py": ("bce_with_logits_forward", "bce_with_logits_backward"),
    "adam.py": ("adam_update",),
}
KERNEL_NAMES: tuple[str, ...] = tuple(n for names in STUB_FILES.values() for n in names)

# What ``use_kernels`` swaps, group by group: functions that share a cache go in together.
# im2col and col2im are not swapped on their own: the learner's conv2d calls them directly.
SWAP_GROUPS: dict[str, tuple[str, ...]] = {
    "conv2d": ("conv2d_forward", "conv2d_backward"),
    "conv_transpose2d": ("conv_transpose2d_forward", "conv_transpose2d_backward"),
    "batch_norm": ("batch_norm_forward", "batch_norm_eval_forward", "batch_norm_backward",
                   "update_running_stats"),
    "leaky_relu": ("leaky_relu_forward", "leaky_relu_backward"),
    "tanh": ("tanh_forward", "tanh_backward"),
    "bce_with_logits": ("bce_with_logits_forward", "bce_with_logits_backward"),
    "adam_update": ("adam_update",),
}

STUBS = Path(__file__).resolve().parent / "stubs"


class KernelImportError(ValueError):
    """A file of a kernel folder cannot be imported (a syntax error, a bad import...)."""

_fresh_names = itertools.count()


def init_folder(folder: str | Path) -> list[Path]:
    """Copy the stubs (and the folder's ``__init__.py``) into ``folder``; return the new files.

    Never overwrites: if any of the files is already there, nothing is copied.
    """
    folder = Path(folder)
    names = ["__init__.py", *STUB_FILES]
    existing = [folder / n for n in names if (folder / n).exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists: init never overwrites your work "
                              f"(choose a new folder)")
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        target = folder / name
        tmp = target.with_name(name + ".tmp")
        tmp.write_text((STUBS / name).read_text(encoding="utf-8"), encoding="utf-8")
        tmp.replace(target)
        copied.append(target)
    return copied


def minigan_kernels() -> SimpleNamespace:
    """minigan's own kernels: the solutions to the exercises."""
    from minigan.ops import activations, batchnorm, conv2d, conv_transpose2d, im2col, losses
    from minigan.optim import adam_update

    found = {}
    for module in (im2col, conv2d, conv_transpose2d, batchnorm, activations, losses):
        found.update({n: getattr(module, n) for n in KERNEL_NAMES if hasattr(module, n)})
    found["adam_update"] = adam_update
    return SimpleNamespace(**found, source="minigan's own kernels")


def load_kernels(folder: str | Path) -> SimpleNamespace:
    """Import a learner's kernel folder afresh and return its kernel functions by name.

    A function the folder does not define becomes one that raises NotImplementedError, so a
    deleted stub reads as "not started". A file that cannot be imported (a syntax error, say)
    makes each of its functions raise KernelImportError, naming the file and line in one
    sentence; the other files still load and are graded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no kernel folder {folder}: make one with "
                                f"`python -m minigan.exercises init {folder}`")
    package = _import_folder(folder)
    found: dict[str, Any] = {}
    for filename, names in STUB_FILES.items():
        module_name = filename.removesuffix(".py")
        module, error = None, None
        if (folder / filename).is_file():
            try:
                module = _import_module(f"{package.__name__}.{module_name}", folder / filename)
            except KernelImportError as failure:
                error = failure
        for name in names:
            found[name] = (_broken(name, error) if error else
                           getattr(module, name, None) or _missing(name, folder / filename))
    return SimpleNamespace(**found, source=str(folder))


def _import_folder(folder: Path) -> ModuleType:
    """The folder as a package with a name of its own, so relative imports between its files
    work and an edited file is read again on the next load."""
    name = f"minigan_learner_kernels_{next(_fresh_names)}"
    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, init if init.is_file() else None, submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:   # no __init__.py: an empty package
        package = ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
        return package
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def _import_module(name: str, path: Path) -> ModuleType:
    if name in sys.modules:   # already imported by a sibling's relative import
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KernelImportError:
        raise
    except SyntaxError as error:
        raise KernelImportError(f"{path}, line {error.lineno}: {error.msg}") from None
    except Exception as error:
        raise KernelImportError(f"{path} could not be imported: {type(error).__name__}: "
                                f"{error}") from None
    return module


def _broken(name: str, error: KernelImportError) -> Any:
    def cannot_import(*args: Any, **kwargs: Any) -> Any:
        raise error

    cannot_import.__name__ = name
    return cannot_import


def _missing(name: str, path: Path) -> Any:
    def not_there(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{name} is not defined in {path}")

    not_there.__name__ = name
    return not_there


def started_groups(kernels: SimpleNamespace) -> dict[str, bool]:
    """For each swap group, whether the learner has started it: its simplest case does not
    raise NotImplementedError (it may still be wrong; the grader says)."""
    from minigan.exercises.grader import EXERCISES, first_try

    started = {}
    for group, names in SWAP_GROUPS.items():
        exercises = [e for e in EXERCISES if set(e.targets) & set(names)]
        started[group] = all(first_try(e, kernels) != "not started" for e in exercises)
    return started


@contextmanager
def use_kernels(folder: str | Path) -> Iterator[dict[str, bool]]:
    """Run minigan's layers and Adam on a learner's kernels inside a ``with`` block.

    Yields {group: whether the learner's functions are in use} ("conv2d", "batch_norm", ...);
    groups whose stubs still raise NotImplementedError keep minigan's kernels. Everything is
    put back on exit, also after an error.
    """
    import minigan.ops
    import minigan.optim

    kernels = load_kernels(folder)
    in_use = started_groups(kernels)
    saved: list[tuple[ModuleType, str, Any]] = []
    try:
        for group, names in SWAP_GROUPS.items():
            if not in_use[group]:
                continue
            for name in names:
                module = minigan.optim if name == "adam_update" else minigan.ops
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, getattr(kernels, name))
        yield in_use
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)
