"""Grading that nothing in a learner's folder can break: one child process per group.

A learner's code may loop forever, call ``sys.exit(0)`` or ``os._exit``, crash the
interpreter (a segfault through ctypes, ``os.abort``), fail to import, or change minigan's
modules. ``check_folder`` therefore runs the grader (``minigan.exercises.grader``) in a child
process per stub file (``minigan.exercises.child``), with a time limit per case, and reads
what the child logged:

* a case that runs past the limit: that row says "timed out after N s" and the others go on;
* ``sys.exit`` or any exception: caught in the child, one sentence like any failure;
* the child dies (``os._exit``, a signal): the row it was on says how, naming the case, and a
  fresh child grades the rows after it;
* the child hangs where no signal reaches it (inside a long C call): the parent kills it after
  a bound of its own (``group_seconds``), so the whole check always ends.

The children start as many at a time as ``jobs`` says. Ctrl-C stops them and raises
KeyboardInterrupt in the caller. Every row becomes a ``grader.Result``, as the in-process
grader makes them, so the same report prints.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from minigan.backend import check_backend
from minigan.exercises.folder import STUBS, check_kernel_folder
from minigan.exercises.grader import FAILED, NOT_STARTED, Result, format_report
from minigan.exercises.records import EXERCISES, FUNCTION_NAMES, Exercise, find

DEFAULT_SECONDS = 10.0   # per case: the grader's cases take milliseconds when the code is right


def group_seconds(seconds: float, rows: int, max_examples: int) -> float:
    """The parent's own bound on one child (a row takes about max_examples cases, and as many
    again to shrink a failure, when each case is well under the limit)."""
    return 30 + rows * (4 * seconds + 0.5 * max_examples)


def groups_of(exercises: Iterable[Exercise]) -> list[list[Exercise]]:
    """The exercises by stub file, in the table's order: what one child grades."""
    groups: dict[str, list[Exercise]] = {}
    for e in exercises:
        groups.setdefault(e.stub, []).append(e)
    return list(groups.values())


class _Children:
    """The running children, so that Ctrl-C can stop every one of them."""

    def __init__(self) -> None:
        self.lock, self.running = threading.Lock(), set()
        self.stopping = False

    def start(self, command: list[str]) -> subprocess.Popen:
        with self.lock:
            if self.stopping:
                raise KeyboardInterrupt
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)   # its own group: killable
            self.running.add(process)
            return process

    def done(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(process)

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            for process in self.running:
                _kill(process)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)   # the child and anything it started
    except (ProcessLookupError, PermissionError):
        pass


def _read_log(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:   # a line cut short by the child's death
            break
    return events


def _tuples(value: Any) -> Any:
    """JSON's lists back to the tuples the cases hold (shapes)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def how_it_ended(returncode: int | None, killed_after: float | None) -> str:
    if killed_after is not None:
        return f"timed out after {killed_after:g} s (stopped by the grader)"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"crashed the process running it ({name})"
    return f"ended the process running it (exit status {returncode}: os._exit?)"


def _run_child(orders: dict[str, Any], children: _Children, limit: float,
               ) -> tuple[list[dict[str, Any]], int | None, float | None]:
    """Start one child on ``orders``; return its log, exit status and, if the parent had to
    kill it, after how many seconds."""
    with tempfile.TemporaryDirectory(prefix="minigan-grader-") as tmp:
        log = Path(tmp) / "log.jsonl"
        log.touch()
        process = children.start([sys.executable, "-m", "minigan.exercises.child",
                                  json.dumps(orders), str(log)])
        killed_after = None
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.wait()
            killed_after = limit
        finally:
            children.done(process)
        return _read_log(log), process.returncode, killed_after


def untouched(folder: str | None, stub: str) -> bool:
    """Whether a folder's file (and its __init__.py) are still exactly the stubs: then its
    exercises are "not started" without running anything."""
    if folder is None:
        return False
    return all((Path(folder) / name).is_file() and (Path(folder) / name).read_bytes() ==
               (STUBS / name).read_bytes() for name in (stub, "__init__.py"))


def _grade_group(group: list[Exercise], orders: dict[str, Any], children: _Children,
                 ) -> dict[str, Result]:
    """Every row of one group, starting a fresh child after one that died mid-way."""
    if untouched(orders["folder"], group[0].stub):   # no child needed to see that
        return {e.name: Result(e, NOT_STARTED) for e in group}
    results: dict[str, Result] = {}
    remaining = list(group)
    while remaining:
        limit = group_seconds(orders["seconds"], len(remaining), orders["max_examples"])
        events, returncode, killed_after = _run_child(
            {**orders, "exercises": [e.name for e in remaining]}, children, limit)
        started, case = None, None
        for event in events:
            if "load_timed_out" in event:
                sentence = (f"{remaining[0].stub} did not finish importing within "
                            f"{event['load_timed_out']:g} s (a loop at its top level?)")
                return {**results, **{e.name: Result(e, FAILED, sentence) for e in remaining}}
            if "start" in event:
                started, case = find(event["start"]), None
            elif "case" in event:
                case = event["case"]
            elif "result" in event:
                r = event["result"]
                exercise = find(r["name"])
                results[exercise.name] = Result(exercise, r["status"], r["sentence"],
                                                _tuples(r["case"]), r["detail"])
                started = None
        remaining = [e for e in remaining if e.name not in results]
        if not remaining:
            break
        ended = how_it_ended(returncode, killed_after)
        if started is None:   # it died before grading anything: importing the folder
            sentence = f"importing {remaining[0].stub} (or the folder's __init__.py) {ended}"
            return {**results, **{e.name: Result(e, FAILED, sentence) for e in remaining}}
        where = f" for {case}" if case else ""
        results[started.name] = Result(started, FAILED,
                                       f"{started.functions[0]} {ended}{where}")
        remaining = [e for e in remaining if e.name not in results]
    return results


def check_folder(folder: str | Path | None, max_examples: int = 50, seed: int = 0,
                 seconds: float = DEFAULT_SECONDS, backend: str = "numpy",
                 exercises: Iterable[Exercise] = EXERCISES, jobs: int | None = None,
                 progress: bool = False) -> list[Result]:
    """Grade a learner's folder (None: minigan's own solutions), each group of exercises in a
    child process of its own, each case within ``seconds``. Returns one Result per exercise,
    in the table's order. ``progress`` shows a bar on stderr, one step per exercise. Ctrl-C
    stops every child and raises KeyboardInterrupt."""
    exercises = list(exercises)
    check_kernel_folder(folder)
    # Here, once: in the children a missing GPU would read as every file failing to import.
    check_backend(backend)
    orders = {"folder": None if folder is None else str(Path(folder).resolve()),
              "max_examples": max_examples, "seed": seed, "seconds": seconds,
              "backend": backend}
    children = _Children()
    results: dict[str, Result] = {}
    jobs = jobs or min(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=jobs)
    bar = tqdm(total=len(exercises), desc="grading", unit="exercise", leave=False,
               disable=not (progress and sys.stderr.isatty()))   # a terminal's, not a log's
    try:
        futures = [pool.submit(_grade_group, group, orders, children)
                   for group in groups_of(exercises)]
        for future in futures:
            while not future.done():   # wait in short slices, so Ctrl-C is seen at once
                time.sleep(0.05)
            results.update(future.result())
            bar.update(len(future.result()))
    except KeyboardInterrupt:
        children.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()
    return note_failed_foundations([results[e.name] for e in exercises], folder)


def note_failed_foundations(results: list[Result], folder: str | Path | None,
                            ) -> list[Result]:
    """Each failed row whose functions call a function of another failed row says so: a wrong
    im2col makes conv2d and conv_transpose2d fail too, and a d_step that forgets zero_grad makes
    train_step fail; the learner should fix im2col (or d_step) first rather than look for a
    mistake in conv2d.py (or train_step)."""
    if folder is None:
        return results
    failing = {name: r.exercise for r in results if r.status == FAILED
               for name in r.exercise.functions}
    noted = []
    for r in results:
        used = [] if r.status != FAILED else [
            n for n in functions_called(Path(folder) / r.exercise.stub, r.exercise.functions)
            if n in failing and failing[n] is not r.exercise]
        if used:
            r = replace(r, sentence=f"{r.sentence} ({r.exercise.stub} builds on your "
                                    f"{failing[used[0]].title}, whose row fails too: fix that "
                                    f"first)")
        noted.append(r)
    return noted


def functions_called(path: Path, own: tuple[str, ...]) -> list[str]:
    """The exercise functions that the learner's definitions of ``own`` (functions or classes
    at the top of the file at ``path``) call by name, in the order they appear; [] when the
    file does not parse."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    called = []
    for definition in tree.body:
        if getattr(definition, "name", None) not in own:
            continue
        for node in ast.walk(definition):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in FUNCTION_NAMES and name not in own and name not in called:
                    called.append(name)
    return called


def check_and_report(folder: str | Path | None, max_examples: int = 50, seed: int = 0,
                     seconds: float = DEFAULT_SECONDS, backend: str = "numpy",
                     exercises: Iterable[Exercise] = EXERCISES, progress: bool = False,
                     ) -> tuple[list[Result], str]:
    """``check_folder`` and the report (``grader.format_report``)."""
    started = time.perf_counter()
    results = check_folder(folder, max_examples, seed, seconds, backend, exercises,
                           progress=progress)
    source = "minigan's own solutions" if folder is None else str(folder)
    return results, format_report(results, source, time.perf_counter() - started,
                                  f"up to {max_examples} case{'s' * (max_examples != 1)} "
                                  f"per exercise, seed {seed}, "
                                  f"{seconds:g} s per case")


def one_line(result: Result) -> str:
    """'conv2d backward: passed', or 'conv2d backward: failed: <the sentence>'."""
    return f"{result.exercise.title}: {result.status}" + (
        f": {result.sentence}" if result.sentence else "")


def check_lines(folder: str | Path | None, *names: str, max_examples: int = 20, seed: int = 0,
                seconds: float = DEFAULT_SECONDS) -> str:
    """Grade the named exercises (all of them if none) in child processes; one line each, as a
    notebook's check cell prints it: ``check_lines("my_kernels", "scale")``."""
    exercises = [find(name) for name in names] or list(EXERCISES)
    return "\n".join(one_line(r) for r in check_folder(folder, max_examples, seed, seconds,
                                                        exercises=exercises))
