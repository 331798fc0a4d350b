"""The grader: every exercise's check over hypothesis-drawn cases, and a table of the results.

For each exercise the grader first tries the simplest case. A stub that still raises
NotImplementedError is "not started" (never a traceback). Otherwise it asks hypothesis to
``find`` a case on which the check fails, among ``max_examples`` drawn ones; hypothesis then
shrinks that case to the smallest one that still fails (fewest, smallest dimensions, stride 1
where stride 1 fails too...), and the grader reports the check's sentence for it. No failing
case found: "passed". The draws are seeded, so the same kernels give the same report.
"""

from __future__ import annotations

import inspect
import random
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from minigan.exercises import checks
from minigan.exercises.kernels import KERNEL_NAMES, KernelImportError

PASSED, FAILED, NOT_STARTED = "passed", "failed", "not started"


@dataclass(frozen=True)
class Exercise:
    """One row of the grader's table."""

    title: str                                # "conv2d backward"
    targets: tuple[str, ...]                  # the functions it grades
    kind: str                                 # which cases (a key of checks.SIMPLEST_CASES)
    check: Callable[[Any, dict[str, Any]], None]
    describe: Callable[[dict[str, Any]], str]

    def strategy(self) -> Any:
        """The hypothesis strategy that draws this exercise's cases."""
        from minigan.exercises import cases  # needs hypothesis, which only grading does

        return {
            "conv": cases.conv_cases, "im2col": cases.im2col_cases,
            "conv_transpose": cases.conv_transpose_cases, "batch_norm": cases.batch_norm_cases,
            "running_stats": cases.running_stats_cases, "leaky_relu": cases.leaky_relu_cases,
            "tanh": cases.tanh_cases, "bce": cases.bce_cases, "adam": cases.adam_cases,
        }[self.kind]()


def _describe_shape(*keys: str) -> Callable[[dict[str, Any]], str]:
    return lambda case: checks.shape_and(case, *keys)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("im2col and col2im", ("im2col", "col2im"), "im2col", checks.check_im2col,
             checks.im2col_text),
    Exercise("conv2d forward", ("conv2d_forward",), "conv", checks.check_conv2d_forward,
             checks.conv_text),
    Exercise("conv2d backward", ("conv2d_backward",), "conv", checks.check_conv2d_backward,
             checks.conv_text),
    Exercise("conv_transpose2d", ("conv_transpose2d_forward", "conv_transpose2d_backward"),
             "conv_transpose", checks.check_conv_transpose2d, checks.conv_text),
    Exercise("batch norm, training", ("batch_norm_forward", "batch_norm_backward"),
             "batch_norm", checks.check_batch_norm_train, _describe_shape("eps")),
    Exercise("batch norm, evaluation", ("batch_norm_eval_forward", "batch_norm_backward"),
             "batch_norm", checks.check_batch_norm_eval, _describe_shape("eps")),
    Exercise("running statistics", ("update_running_stats",), "running_stats",
             checks.check_running_stats, _describe_shape("momentum")),
    Exercise("leaky ReLU", ("leaky_relu_forward", "leaky_relu_backward"), "leaky_relu",
             checks.check_leaky_relu, _describe_shape("negative_slope")),
    Exercise("tanh", ("tanh_forward", "tanh_backward"), "tanh", checks.check_tanh,
             _describe_shape()),
    Exercise("BCE with logits", ("bce_with_logits_forward", "bce_with_logits_backward"), "bce",
             checks.check_bce_with_logits, checks.bce_text),
    Exercise("Adam update", ("adam_update",), "adam", checks.check_adam_update,
             lambda case: f"param {checks.shape_text(case['shape'])}"),
)


@dataclass(frozen=True)
class Result:
    exercise: Exercise
    status: str                 # PASSED, FAILED or NOT_STARTED
    sentence: str = ""          # for a failure: what is wrong, on the smallest failing case
    case: dict[str, Any] | None = None


# ------------------------------------------------------------------------- running one check

def run_check(exercise: Exercise, kernels: Any, case: dict[str, Any]) -> str | None:
    """None when the kernels pass on ``case``; otherwise one sentence saying what went wrong.
    A NotImplementedError propagates (the caller decides whether that means "not started")."""
    try:
        exercise.check(kernels, case)
    except NotImplementedError:
        raise
    except (checks.KernelCheckFailed, KernelImportError) as failure:
        return str(failure)
    except Exception as error:   # the learner's code crashed: name the function and the case
        message = " ".join(str(error).split())
        return (f"{_raising_kernel(error, exercise)} raised {type(error).__name__}"
                f"{': ' + message if message else ''} for {exercise.describe(case)}")
    return None


def _raising_kernel(error: BaseException, exercise: Exercise) -> str:
    """The innermost kernel function on the error's traceback (the one to look at)."""
    names = [frame.name for frame in traceback.extract_tb(error.__traceback__)
             if frame.name in KERNEL_NAMES]
    return names[-1] if names else exercise.targets[0]


def _is_unfinished_stub(function: Any) -> bool:
    try:
        return "raise NotImplementedError" in inspect.getsource(function)
    except (OSError, TypeError):
        return False


def first_try(exercise: Exercise, kernels: Any) -> str:
    """The check on the simplest case: NOT_STARTED, PASSED, or the failure's sentence."""
    try:
        sentence = run_check(exercise, kernels, checks.SIMPLEST_CASES[exercise.kind])
    except NotImplementedError:
        return NOT_STARTED
    return sentence or PASSED


def grade_one(exercise: Exercise, kernels: Any, max_examples: int = 50, seed: int = 0) -> Result:
    """Grade one exercise: not started, passed, or failed on the smallest case found.
    ``seed`` fixes hypothesis's draws, so the same kernels give the same result."""
    try:
        from hypothesis import HealthCheck, find, settings
        from hypothesis.errors import NoSuchExample
    except ImportError:
        raise RuntimeError("the grader draws its cases with hypothesis, which is not installed: "
                           "pip install hypothesis (or minigan's test extra)") from None

    outcome = first_try(exercise, kernels)
    if outcome == NOT_STARTED:
        return Result(exercise, NOT_STARTED, _waiting_for(exercise, kernels))
    if outcome != PASSED:
        return Result(exercise, FAILED, outcome, checks.SIMPLEST_CASES[exercise.kind])

    def fails(case: dict[str, Any]) -> bool:
        try:
            return run_check(exercise, kernels, case) is not None
        except NotImplementedError:   # a started kernel that leaves some cases out
            return True

    try:
        case = find(exercise.strategy(), fails, random=random.Random(seed), settings=settings(
            max_examples=max_examples, database=None, deadline=None,
            suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return Result(exercise, PASSED)
    except Exception as error:   # hypothesis saw a case fail, then pass: the kernel is not
        return Result(exercise, FAILED, f"{exercise.targets[0]} fails on some cases but not "
                      f"when they are repeated ({type(error).__name__}): does it give "
                      f"different answers for the same input?")   # a pure function
    try:
        sentence = run_check(exercise, kernels, case)
    except NotImplementedError as error:
        sentence = (f"{_raising_kernel(error, exercise)} raised NotImplementedError for "
                    f"{exercise.describe(case)}")
    return Result(exercise, FAILED, sentence or "fails only sometimes on this case", case)


def _waiting_for(exercise: Exercise, kernels: Any) -> str:
    """'' for an untouched stub; 'needs conv2d_forward' when the exercise's own functions are
    written but a function it builds on still raises NotImplementedError."""
    if any(_is_unfinished_stub(getattr(kernels, n)) for n in exercise.targets):
        return ""
    try:
        exercise.check(kernels, checks.SIMPLEST_CASES[exercise.kind])
    except NotImplementedError as error:
        name = _raising_kernel(error, exercise)
        if name not in exercise.targets:
            return f"needs {name} first"
    except Exception:
        pass
    return ""


def grade(kernels: Any, max_examples: int = 50, seed: int = 0,
          exercises: Iterable[Exercise] = EXERCISES, progress: bool = False) -> list[Result]:
    """Grade every exercise; ``kernels`` as from ``load_kernels`` or ``minigan_kernels``.
    ``progress`` shows a bar on stderr, one step per exercise."""
    exercises = list(exercises)
    if progress:
        from tqdm import tqdm
        exercises = tqdm(exercises, desc="grading", unit="exercise", leave=False)
    return [grade_one(e, kernels, max_examples, seed) for e in exercises]


# ------------------------------------------------------------------------- the report

def format_report(results: list[Result], source: str, seconds: float | None = None,
                  how: str = "") -> str:
    """The table (one row per exercise), then one sentence per failure, then the totals.
    ``how`` (say, "50 cases per exercise, seed 0") goes into the first line."""
    width = max(len(r.exercise.title) for r in results) + 2
    lines = [f"Grading {source}" + (f" ({how})" if how else ""), "",
             f"  {'exercise':<{width}}status"]
    for r in results:
        note = f"  ({r.sentence})" if r.status == NOT_STARTED and r.sentence else ""
        lines.append(f"  {r.exercise.title:<{width}}{r.status}{note}")
    failures = [r for r in results if r.status == FAILED]
    if failures:
        lines.append("")
        lines += [r.sentence for r in failures]   # each sentence names its function
    counts = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, NOT_STARTED)}
    total = ", ".join(f"{n} {s}" for s, n in counts.items())
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines += ["", f"{total}{took}."]
    return "\n".join(lines)


def grade_and_report(kernels: Any, max_examples: int = 50, seed: int = 0,
                     progress: bool = False) -> tuple[list[Result], str]:
    """Grade every exercise and format the report (``format_report``)."""
    started = time.perf_counter()
    results = grade(kernels, max_examples, seed, progress=progress)
    return results, format_report(results, kernels.source, time.perf_counter() - started,
                                  f"up to {max_examples} cases per exercise, seed {seed}")
