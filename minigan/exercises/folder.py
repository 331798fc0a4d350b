"""A learner's exercise folder: making it from the stubs, and loading it; and minigan's answers.

A learner's folder (made by ``python -m minigan.exercises init my_kernels/``) holds the stub
files of ``minigan/exercises/stubs``, filled in. ``load_kernels`` imports it as a package of its
own (so that ``conv2d.py`` can say ``from .im2col import im2col`` and get the learner's im2col),
fresh on every call, and returns a namespace with one attribute per exercise function.
``minigan_kernels`` returns the same namespace filled with minigan's own functions, the
solutions. Which files hold which functions comes from the exercise records
(``minigan.exercises.records``).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from minigan.exercises.limits import CaseTimedOut
from minigan.exercises.records import EXERCISES, STUB_FILES

STUBS = Path(__file__).resolve().parent / "stubs"


class KernelImportError(ValueError):
    """A file of a kernel folder cannot be imported (a syntax error, a bad import...)."""


_fresh_names = itertools.count()
LEARNER_PACKAGE = "minigan_learner_kernels"   # each load's package: this, _ and a number


def init_folder(folder: str | Path) -> list[Path]:
    """Copy the stubs (and the folder's ``__init__.py``) into ``folder``; return the new files.

    Never overwrites: only the files missing from ``folder`` are copied, so that deleting one
    stub and running init again starts that exercise afresh and leaves the others alone.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file: give init the name of a new folder")
    missing = [n for n in ["__init__.py", *STUB_FILES] if not (folder / n).exists()]
    if not missing:
        raise FileExistsError(f"{folder} already holds every stub: init never overwrites your "
                              f"work (to start one exercise afresh, delete or rename its file "
                              f"and run init again)")
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in missing:
        target = folder / name
        tmp = target.with_name(name + ".tmp")
        tmp.write_text((STUBS / name).read_text(encoding="utf-8"), encoding="utf-8")
        tmp.replace(target)
        copied.append(target)
    return copied


def check_kernel_folder(folder: str | Path | None) -> str | Path | None:
    """``folder`` if it is a folder (or None: minigan's own solutions); else one line saying
    what it is instead and how to make one."""
    if folder is not None and not Path(folder).is_dir():
        what = "is a file, not a folder" if Path(folder).exists() else "does not exist"
        raise FileNotFoundError(f"no kernel folder {folder}: it {what}; make one with "
                                f"`python -m minigan.exercises init FOLDER`")
    return folder


def minigan_kernels() -> SimpleNamespace:
    """minigan's own functions: the solutions to the exercises (each record names the module
    that holds them)."""
    found = {}
    for exercise in EXERCISES:
        module = importlib.import_module(exercise.solutions)
        found.update({name: getattr(module, name) for name in exercise.functions})
    return SimpleNamespace(**found, source="minigan's own solutions")


def load_kernels(folder: str | Path, files: tuple[str, ...] | None = None) -> SimpleNamespace:
    """Import a learner's folder afresh and return its exercise functions by name.

    A function the folder does not define becomes one that raises NotImplementedError, so a
    deleted stub reads as "not started". A file that cannot be imported (a syntax error, a
    missing module, a ``sys.exit`` at its top level) makes each of its functions raise
    KernelImportError, naming the file (and line) in one sentence; the other files still load
    and are graded. An error in the folder's ``__init__.py`` does the same for every file.
    ``files`` (say ``("conv2d.py",)``) imports only those files (and what they import), so
    that a file which never finishes importing holds up only its own exercises.
    """
    folder = Path(check_kernel_folder(folder))
    package, package_error = _import_folder(folder)
    found: dict[str, Any] = {}
    for filename, names in STUB_FILES.items():
        module_name = filename.removesuffix(".py")
        module, error = None, package_error
        wanted = files is None or filename in files
        if error is None and wanted and (folder / filename).is_file():
            try:
                module = _import_module(f"{package.__name__}.{module_name}", folder / filename)
            except KernelImportError as failure:
                error = failure
        for name in names:
            found[name] = (_broken(name, error) if error else
                           getattr(module, name, None) or _missing(name, folder / filename))
    return SimpleNamespace(**found, source=str(folder))


def _import_folder(folder: Path) -> tuple[ModuleType, KernelImportError | None]:
    """The folder as a package with a name of its own, so relative imports between its files
    work and an edited file is read again on the next load; and the error of its
    ``__init__.py``, if it has one that fails."""
    name = f"{LEARNER_PACKAGE}_{next(_fresh_names)}"
    init = folder / "__init__.py"
    if not init.is_file():   # no __init__.py: an empty package
        package = ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
        return package, None
    spec = importlib.util.spec_from_file_location(name, init,
                                                  submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        _execute(spec, package, init)
    except KernelImportError as error:
        return package, error
    return package, None


def _execute(spec: Any, module: ModuleType, path: Path) -> None:
    """Run a learner's file; whatever goes wrong (even ``sys.exit``) becomes one sentence."""
    try:
        spec.loader.exec_module(module)
    except KernelImportError:
        raise
    except SyntaxError as error:
        raise KernelImportError(f"{path}, line {error.lineno}: {error.msg}") from None
    except (KeyboardInterrupt, CaseTimedOut):
        raise
    except BaseException as error:   # SystemExit too: a file must not end the grader
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise KernelImportError(f"{path} could not be imported: {what}") from None


def is_import_failure(sentence: str, folder: str | Path) -> bool:
    """Whether a grader's sentence says that a file of ``folder`` does not import: ``_execute``
    begins every such sentence with the file's path (the folder resolved, as the grader's
    children load it), and no other sentence begins so."""
    return sentence.startswith(str(Path(folder).resolve()))


def _import_module(name: str, path: Path) -> ModuleType:
    if name in sys.modules:   # already imported by a sibling's relative import
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _execute(spec, module, path)
    return module


def _broken(name: str, error: KernelImportError) -> Any:
    def cannot_import(*args: Any, **kwargs: Any) -> Any:
        raise error

    cannot_import.__name__ = name
    cannot_import.import_error = error   # type: ignore[attr-defined]  (for use_kernels)
    return cannot_import


def _missing(name: str, path: Path) -> Any:
    def not_there(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{name} is not defined in {path}")

    not_there.__name__ = name
    return not_there
