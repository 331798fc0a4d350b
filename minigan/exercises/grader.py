"""The grader: every exercise's check over hypothesis-drawn cases, and a table of the results.

For each exercise the grader first tries the simplest case. A stub that still raises
NotImplementedError is "not started" (never a traceback). Otherwise it asks hypothesis to
``find`` a case on which the check fails, among ``max_examples`` drawn ones; hypothesis then
shrinks that case to the smallest one that still fails (fewest, smallest dimensions, stride 1
where stride 1 fails too...), and the grader reports the check's sentence for it, with the
expected and actual values side by side. No failing case found: "passed". The draws are
seeded, so the same code gives the same report.

This module runs the checks in the process that calls it. ``minigan.exercises.isolation``
runs it in a child process per group of exercises, with a time limit per case, which is how
``python -m minigan.exercises check`` grades a learner's folder.
"""

from __future__ import annotations

import inspect
import random
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from minigan.exercises.checks import KernelCheckFailed
from minigan.exercises.folder import KernelImportError
from minigan.exercises.guards import LeaveInputsAlone
from minigan.exercises.limits import CaseTimedOut, time_limit
from minigan.exercises.records import EXERCISES, FUNCTION_NAMES, Exercise

PASSED, FAILED, NOT_STARTED = "passed", "failed", "not started"


@dataclass(frozen=True)
class Result:
    exercise: Exercise
    status: str                 # PASSED, FAILED or NOT_STARTED
    sentence: str = ""          # for a failure: what is wrong, on the smallest failing case
    case: dict[str, Any] | None = None
    detail: str = ""            # expected and actual side by side, several lines (or "")


# ------------------------------------------------------------------------- running one check

def run_check(exercise: Exercise, kernels: Any, case: dict[str, Any],
              seconds: float | None = None) -> KernelCheckFailed | None:
    """None when the code passes on ``case``; otherwise the failure (its str is one sentence).
    A NotImplementedError propagates (the caller decides whether that means "not started"),
    and so does CaseTimedOut after ``seconds``. Anything else the learner's code raises or
    does (SystemExit included) becomes a sentence naming the function and the case."""
    guarded = LeaveInputsAlone(kernels)
    try:
        with time_limit(seconds):
            exercise.check(guarded, case)
    except (NotImplementedError, CaseTimedOut, KeyboardInterrupt):
        raise
    except KernelCheckFailed as failure:
        return failure
    except KernelImportError as failure:
        return KernelCheckFailed(str(failure))
    except BaseException as error:   # the learner's code crashed or exited: name it and the case
        message = " ".join(str(error).split())
        what = f"{type(error).__name__}{': ' + message if message else ''}"
        function = _raising_function(error)
        if function is None and guarded.last_called is not None:   # raised in the check itself
            return KernelCheckFailed(f"the grader cannot use what {guarded.last_called} "
                                     f"returned ({what}) for {exercise.describe(case)}")
        return KernelCheckFailed(f"{function or exercise.functions[0]} raised {what} for "
                                 f"{exercise.describe(case)}")
    return None


def _raising_function(error: BaseException) -> str | None:
    """The innermost exercise function on the error's traceback (the one to look at)."""
    names = [frame.name for frame in traceback.extract_tb(error.__traceback__)
             if frame.name in FUNCTION_NAMES or frame.name == "__init__"]
    names = [n for n in names if n != "__init__"] or names
    if names and names[-1] != "__init__":
        return names[-1]
    return None


def _is_unfinished_stub(function: Any) -> bool:
    try:
        return "raise NotImplementedError" in inspect.getsource(function)
    except (OSError, TypeError):
        return False


def first_try(exercise: Exercise, kernels: Any,
              seconds: float | None = None) -> KernelCheckFailed | str:
    """The check on the simplest case: NOT_STARTED, PASSED, or the failure."""
    try:
        failure = run_check(exercise, kernels, exercise.simplest, seconds)
    except NotImplementedError:
        return NOT_STARTED
    return failure or PASSED


def timed_out(exercise: Exercise, seconds: float, case: dict[str, Any]) -> Result:
    return Result(exercise, FAILED, f"{exercise.functions[0]} timed out after {seconds:g} s "
                  f"for {exercise.describe(case)} (an endless loop? or too slow: the check "
                  f"calls it many times)", case)


def grade_one(exercise: Exercise, kernels: Any, max_examples: int = 50, seed: int = 0,
              seconds: float | None = None,
              on_case: Callable[[dict[str, Any]], None] | None = None) -> Result:
    """Grade one exercise: not started, passed, or failed on the smallest case found.
    ``seed`` fixes hypothesis's draws, so the same code gives the same result; ``seconds``
    limits each case (where ``time_limit`` can: the main thread); ``on_case(case)`` is called
    before each case is tried."""
    tell = on_case or (lambda case: None)
    try:
        from hypothesis import HealthCheck, find, settings
        from hypothesis.errors import NoSuchExample
    except ImportError:
        raise RuntimeError("the grader draws its cases with hypothesis, which is not installed: "
                           "pip install hypothesis (or minigan's test extra)") from None
    from minigan.exercises import cases  # needs hypothesis, which only grading does

    try:
        tell(exercise.simplest)
        outcome = first_try(exercise, kernels, seconds)
    except CaseTimedOut:
        return timed_out(exercise, seconds or 0, exercise.simplest)
    if outcome == NOT_STARTED:
        return Result(exercise, NOT_STARTED, _waiting_for(exercise, kernels, seconds))
    if outcome != PASSED:
        return Result(exercise, FAILED, str(outcome), exercise.simplest, outcome.detail)

    slow: list[dict[str, Any]] = []   # the first case that ran out of time, if any

    def fails(case: dict[str, Any]) -> bool:
        if slow:              # once one case has timed out, stop spending time: shrink at once
            return True
        tell(case)
        try:
            return run_check(exercise, kernels, case, seconds) is not None
        except NotImplementedError:   # a started function that leaves some cases out
            return True
        except CaseTimedOut:
            slow.append(case)
            return True

    try:
        case = find(getattr(cases, exercise.cases)(), fails, random=random.Random(seed),
                    settings=settings(max_examples=max_examples, database=None, deadline=None,
                                      suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return Result(exercise, PASSED)
    except Exception as error:   # hypothesis saw a case fail, then pass: the code is not
        return Result(exercise, FAILED, f"{exercise.functions[0]} fails on some cases but not "
                      f"when they are repeated ({type(error).__name__}): does it give "
                      f"different answers for the same input?")   # a pure function
    if slow:
        return timed_out(exercise, seconds or 0, slow[0])
    tell(case)
    try:
        failure = run_check(exercise, kernels, case, seconds)
    except NotImplementedError as error:
        function = _raising_function(error) or exercise.functions[0]
        failure = KernelCheckFailed(f"{function} raised NotImplementedError for "
                                    f"{exercise.describe(case)}")
    except CaseTimedOut:
        return timed_out(exercise, seconds or 0, case)
    if failure is None:
        return Result(exercise, FAILED, "fails only sometimes on this case", case)
    return Result(exercise, FAILED, str(failure), case, failure.detail)


def _waiting_for(exercise: Exercise, kernels: Any, seconds: float | None) -> str:
    """'' for an untouched stub; 'needs conv2d_forward first' when the exercise's own functions
    are written but a function it builds on still raises NotImplementedError."""
    if any(_is_unfinished_stub(getattr(kernels, n)) for n in exercise.functions):
        return ""
    try:
        with time_limit(seconds):
            exercise.check(kernels, exercise.simplest)
    except NotImplementedError as error:
        name = _raising_function(error) or exercise.functions[0]
        if name not in exercise.functions:
            return f"needs {name} first"
    except (KeyboardInterrupt, CaseTimedOut):
        raise
    except BaseException:
        pass
    return ""


def grade(kernels: Any, max_examples: int = 50, seed: int = 0,
          exercises: Iterable[Exercise] = EXERCISES, progress: bool = False,
          seconds: float | None = None) -> list[Result]:
    """Grade exercises in this process; ``kernels`` as from ``load_kernels`` or
    ``minigan_kernels``. ``progress`` shows a bar on stderr, one step per exercise."""
    exercises = list(exercises)
    if progress:
        from tqdm import tqdm
        exercises = tqdm(exercises, desc="grading", unit="exercise", leave=False)
    return [grade_one(e, kernels, max_examples, seed, seconds) for e in exercises]


# ------------------------------------------------------------------------- the report

REPORT_FIRST_WORDS = "Grading "   # every report's first line: check --report looks for them


def format_report(results: list[Result], source: str, seconds: float | None = None,
                  how: str = "") -> str:
    """The table (one row per exercise), then one sentence per failure (with its side-by-side
    values), then the totals. ``how`` (say, "50 cases per exercise, seed 0") goes into the
    first line."""
    width = max(len("exercise"), *(len(r.exercise.title) for r in results)) + 2
    lines = [f"{REPORT_FIRST_WORDS}{source}" + (f" ({how})" if how else ""), "",
             f"  {'exercise':<{width}}status"]
    for r in results:
        note = f"  ({r.sentence})" if r.status == NOT_STARTED and r.sentence else ""
        lines.append(f"  {r.exercise.title:<{width}}{r.status}{note}")
    failures = [r for r in results if r.status == FAILED]
    for r in failures:   # each sentence names its function
        lines += ["", r.sentence] + ([r.detail] if r.detail else [])
    counts = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, NOT_STARTED)}
    total = ", ".join(f"{n} {s}" for s, n in counts.items())
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines += ["", f"{total}{took}."]
    return "\n".join(lines)


def grade_and_report(kernels: Any, max_examples: int = 50, seed: int = 0,
                     progress: bool = False) -> tuple[list[Result], str]:
    """Grade every exercise in this process and format the report (``format_report``)."""
    started = time.perf_counter()
    results = grade(kernels, max_examples, seed, progress=progress)
    return results, format_report(results, kernels.source, time.perf_counter() - started,
                                  f"up to {max_examples} cases per exercise, seed {seed}")

