"""The child process that grades one group of exercises: ``python -m minigan.exercises.child``.

``minigan.exercises.isolation`` starts one per stub file. It reads its orders (the folder, the
exercises, the cases per exercise, the seed, the time limit per case, the backend) as one JSON
argument, and writes what happens, one JSON object per line, to the file named by the second
argument: ``{"start": NAME}`` before an exercise, ``{"case": TEXT}`` before each case it tries,
and ``{"result": {...}}`` after. Its stdout and stderr belong to the learner's prints. Whatever
the learner's code does to this process (loop, exit, crash), the parent still has the lines
written so far and says what happened in that exercise's row.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from minigan.backend import use_backend
from minigan.exercises.folder import load_kernels, minigan_kernels
from minigan.exercises.grader import Result, grade_one
from minigan.exercises.guards import minigan_read_only
from minigan.exercises.limits import CaseTimedOut, time_limit
from minigan.exercises.records import find


class Log:
    """Appends one JSON line per event, flushed at once (the process may die at any moment)."""

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")   # noqa: SIM115 (lives as long as we do)

    def write(self, **event: Any) -> None:
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()


def result_record(result: Result) -> dict[str, Any]:
    return {"name": result.exercise.name, "status": result.status,
            "sentence": result.sentence, "detail": result.detail, "case": result.case}


def main(orders: dict[str, Any], log: Log) -> int:
    use_backend(orders["backend"])
    with minigan_read_only():   # the learner's files cannot rebind minigan's answers
        return grade(orders, log)


def grade(orders: dict[str, Any], log: Log) -> int:
    exercises = [find(name) for name in orders["exercises"]]
    seconds = orders["seconds"]
    try:
        with time_limit(seconds):
            kernels = (minigan_kernels() if orders["folder"] is None else
                       load_kernels(orders["folder"], files=tuple({e.stub for e in exercises})))
    except CaseTimedOut:
        log.write(load_timed_out=seconds)
        return 0
    for exercise in exercises:
        log.write(start=exercise.name)
        result = grade_one(exercise, kernels, orders["max_examples"], orders["seed"], seconds,
                           on_case=lambda case, e=exercise: log.write(case=e.describe(case)))
        log.write(result=result_record(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1]), Log(sys.argv[2])))
