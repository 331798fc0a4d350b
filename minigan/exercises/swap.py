"""Training on a learner's code: check it first, then swap the finished groups into minigan.

minigan looks up everything a learner may replace at call time, through a module attribute:
the layers call ``minigan.ops.conv2d_forward(...)``, Adam calls ``minigan.optim.adam_update``,
the training step calls ``losses.real_loss(...)``, the trainer calls ``step.train_step(...)``,
and the command line builds ``dcgan.Generator(...)``. So setting those attributes for the
length of a ``with`` block makes every Conv2d, BatchNorm, activation, loss, Adam step, model
and training step in it run the learner's code. Functions travel in groups (each exercise
record names its ``swap``: a forward with its backward and what shares their cache, D with G,
the two losses, the three step functions), and a group whose stub is unfinished stays
minigan's.

``check_before_training(folder)`` grades the started groups quickly, in child processes
(``minigan.exercises.isolation``), before anything trains on them: a group that fails is
named with the grader's sentence, instead of an hour of training on a wrong gradient.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from minigan.exercises.folder import (
    LEARNER_PACKAGE,
    check_kernel_folder,
    is_import_failure,
    load_kernels,
)
from minigan.exercises.grader import FAILED, NOT_STARTED, PASSED, Result, first_try
from minigan.exercises.guards import is_array, minigan_read_only
from minigan.exercises.isolation import check_folder
from minigan.exercises.limits import CaseTimedOut, time_limit
from minigan.exercises.records import EXERCISES, swap_groups
from minigan.gan.split_step import split_across_threads

QUICK_EXAMPLES = 5    # cases per exercise in the check before training
QUICK_SECONDS = 10.0  # per case


def _exercises_of(group: str) -> list[Any]:
    return [e for e in EXERCISES if e.swap is not None and e.swap.group == group]


def started_groups(kernels: Any, seconds: float = QUICK_SECONDS) -> dict[str, bool]:
    """For each swap group, whether the learner has started all of it: the simplest case of
    each of its exercises does not raise NotImplementedError (it may still be wrong; the
    grader says). Runs the learner's code in this process, each case for at most ``seconds``
    (where a time limit can be set: the main thread), so that an endless loop is one line."""
    started = {}
    for group in swap_groups():
        try:
            started[group] = all(first_try(e, kernels, seconds) != NOT_STARTED
                                 for e in _exercises_of(group))
        except CaseTimedOut:
            raise KernelsFailGrader(f"your {group} did not finish its simplest case within "
                                    f"{seconds:g} s (an endless loop?): `python -m "
                                    f"minigan.exercises check` on your folder grades it row "
                                    f"by row") from None
    return started


@dataclass(frozen=True)
class PreTrainingCheck:
    """What the quick check before training found, group by group."""

    learners: tuple[str, ...]           # finished and passing: training will use them
    minigans: tuple[str, ...]           # not (fully) started: minigan's own stay
    failures: tuple[tuple[str, str], ...]  # (group, the grader's sentence) for failing groups

    def startup_line(self, folder: str | Path) -> str:
        return (f"your code from {folder}: {', '.join(self.learners) or 'none finished yet'}; "
                f"minigan's: {', '.join(self.minigans) or 'none'}")

    def refusal(self, folder: str | Path) -> str:
        group, sentence = self.failures[0]
        others = [g for g, _ in self.failures[1:]]
        more = f" ({', '.join(others)} too)" if others else ""
        check = f"`python -m minigan.exercises check {folder}`"
        if is_import_failure(sentence, folder):   # nothing to train on, checked or not
            return (f"--kernels: your {group} fails the grader{more}: {sentence} (mend the "
                    f"file; {check} grades it again)")
        return (f"--kernels: your {group} fails the grader{more}: {sentence} (run {check} for "
                f"the table, or pass --kernels-unchecked to train anyway)")


def check_before_training(folder: str | Path, max_examples: int = QUICK_EXAMPLES,
                          seconds: float = QUICK_SECONDS, backend: str = "numpy",
                          ) -> PreTrainingCheck:
    """Grade every swappable exercise of ``folder`` with a few cases, in child processes, and
    sort the groups: the learner's (every exercise passed), minigan's (some not started), and
    failing ones (some started exercise failed; its sentence)."""
    exercises = [e for e in EXERCISES if e.swap is not None]
    results = {r.exercise.name: r for r in check_folder(folder, max_examples, 0, seconds,
                                                        backend, exercises)}
    learners, minigans, failures = [], [], []
    for group in swap_groups():
        rows: list[Result] = [results[e.name] for e in _exercises_of(group)]
        failed = [r for r in rows if r.status == FAILED]
        if failed:
            failures.append((group, failed[0].sentence))
        elif all(r.status == PASSED for r in rows):
            learners.append(group)
        else:
            minigans.append(group)
    return PreTrainingCheck(tuple(learners), tuple(minigans), tuple(failures))


@contextmanager
def use_kernels(folder: str | Path, groups: tuple[str, ...] | None = None,
                ) -> Iterator[dict[str, bool]]:
    """Run minigan's layers, Adam, losses, step and models on a learner's code inside a
    ``with`` block.

    ``groups`` names the groups to swap in (as ``check_before_training`` found them); None
    swaps every group the learner has started (``started_groups``). Yields {group: whether the
    learner's code is in use} ("conv2d", "batch_norm", ..., "models", "losses", "step").
    Everything is put back on exit, also after an error.
    """
    kernels = load_swappable(folder, groups)
    in_use = started_groups(kernels) if groups is None else \
        {group: group in groups for group in swap_groups()}
    saved: list[tuple[ModuleType, str, Any]] = []
    try:
        for group, (swap, names) in swap_groups().items():
            if not in_use[group]:
                continue
            module = importlib.import_module(swap.module)
            for name in names:
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, checked_results(name, getattr(kernels, name), module))
        # The learner's functions run as written, one call at a time (split_step.py).
        with split_across_threads(False) if saved else nullcontext():
            yield in_use
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as error:   # SystemExit too: the learner's code must not end the run
        sentence = learners_failure(error)
        if sentence is None:   # minigan's own error (or its one-line user error): as it is
            raise
        raise LearnersCodeFailed(sentence) from None
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


class KernelsFailGrader(ValueError):
    """``--kernels`` on a folder with a started group that the grader fails (one line)."""


class LearnersCodeFailed(RuntimeError):
    """The learner's code raised (or called sys.exit) while minigan ran on it: one line
    naming the function, its file and line, instead of a traceback through minigan."""


# The modules whose functions hand arrays back to minigan's layers: their results are checked
# where they come out (``checked_results``). Adam updates in place; the step and the models
# are graded on what they do, not on the dtype of a loss.
KERNEL_MODULES = ("minigan.ops", "minigan.gan.losses")


def checked_results(name: str, function: Any, module: ModuleType) -> Any:
    """A learner's ``function``, swapped in for training, with the arrays it returns checked:
    no list where an array belongs, and float arrays of its float arguments' dtype. A float64
    or a list would otherwise fail later, inside a minigan layer or another of the learner's
    functions, and the error would name that one instead. Classes and the other modules'
    functions are swapped in as they are."""
    if not inspect.isfunction(function) or not module.__name__.startswith(KERNEL_MODULES):
        return function

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        problem = result_problem((*args, *kwargs.values()), result)
        if problem:
            code = inspect.unwrap(function).__code__
            raise LearnersCodeFailed(f"your {name} ({Path(code.co_filename).name}, line "
                                     f"{code.co_firstlineno}) {problem}")
        return result

    return run


def result_problem(arguments: tuple[Any, ...], result: Any) -> str | None:
    """What is wrong with a kernel's ``result`` for minigan (None: nothing): a list, or a float
    array of another dtype than its first float array argument. A cache (a NamedTuple) is the
    learner's own business, and is not looked into."""
    dtype = next((a.dtype for a in arguments if is_array(a) and a.dtype.kind == "f"), None)
    items = result if type(result) is tuple else (result,)
    for item in items:
        if isinstance(item, list):
            return "returned a list where minigan expects an array"
        if dtype is not None and is_array(item) and item.dtype.kind == "f" \
                and item.dtype != dtype:
            return (f"returned a {item.dtype} array for {dtype} input: dtype in must be dtype "
                    f"out (minigan's layers hold {dtype} parameters)")
    return None


def load_swappable(folder: str | Path, groups: tuple[str, ...] | None = None,
                   seconds: float = QUICK_SECONDS) -> Any:
    """``load_kernels`` of only the files that hold ``groups`` (None: every swappable group),
    importing for at most ``seconds``: the other files (scale.py, metrics.py, ...) are never
    run here, and a file that loops at its top is one line, not a hang. A file that rebinds a
    minigan name fails to import (``guards.minigan_read_only``) instead of changing minigan
    for good."""
    files = tuple({e.stub for e in EXERCISES if e.swap is not None
                   and (groups is None or e.swap.group in groups)})
    try:
        with time_limit(seconds), minigan_read_only():   # a file cannot rebind minigan's names
            kernels = load_kernels(folder, files=files)
    except CaseTimedOut:
        raise KernelsFailGrader(f"importing your files from {folder} did not finish within "
                                f"{seconds:g} s (a loop at the top of a file?)") from None
    for group, (_, names) in swap_groups().items():   # a file that does not import: say so now
        if groups is not None and group not in groups:
            continue
        broken = [f for f in (getattr(kernels, n) for n in names) if hasattr(f, "import_error")]
        if broken:
            raise KernelsFailGrader(f"your {group}: {broken[0].import_error}")
    return kernels


def learners_failure(error: BaseException) -> str | None:
    """'your tanh_forward (activations.py, line 12) raised IndexError: ...' when ``error``
    came out of a learner's file (the innermost such frame on its traceback), else None."""
    theirs = [tb for tb in _tracebacks(error)
              if tb.tb_frame.f_globals.get("__name__", "").startswith(LEARNER_PACKAGE)]
    if not theirs:
        return None
    code, line = theirs[-1].tb_frame.f_code, theirs[-1].tb_lineno
    message = " ".join(str(error).split())
    what = f"called sys.exit({error.code})" if isinstance(error, SystemExit) else \
        f"raised {type(error).__name__}{': ' + message if message else ''}"
    return f"your {code.co_name} ({Path(code.co_filename).name}, line {line}) {what}"


def _tracebacks(error: BaseException) -> Iterator[Any]:
    tb = error.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


@contextmanager
def kernels_for_training(folder: str | Path, unchecked: bool = False,
                         backend: str = "numpy") -> Iterator[dict[str, bool]]:
    """What a training script's ``--kernels FOLDER`` does, around the whole run.

    First the quick check of every started group (``check_before_training``): a failing group
    raises KernelsFailGrader, naming it with the grader's sentence, before anything trains.
    ``unchecked`` skips the check and swaps in every started group as it is. Then it prints
    which groups are the learner's and swaps them in for the ``with`` block.
    """
    try:
        check_kernel_folder(folder)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--kernels: {error}") from None
    if unchecked:
        with use_kernels(folder) as in_use:
            yours = [group for group, used in in_use.items() if used]
            print(f"your code from {folder} (unchecked): {', '.join(yours) or 'none started'}; "
                  f"minigan's: {', '.join(g for g, used in in_use.items() if not used) or 'none'}",
                  flush=True)
            yield in_use
        return
    print(f"checking your code in {folder} before training (a few cases per exercise)",
          flush=True)
    found = check_before_training(folder, backend=backend)
    if found.failures:
        raise KernelsFailGrader(found.refusal(folder))
    print(found.startup_line(folder), flush=True)
    with use_kernels(folder, groups=found.learners) as in_use:
        yield in_use
