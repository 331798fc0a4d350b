"""``python -m minigan.exercises init|check``: copy the stubs out, grade a folder, or hint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minigan.exercises.folder import init_folder
from minigan.exercises.grader import PASSED, REPORT_FIRST_WORDS
from minigan.exercises.hint import hint
from minigan.exercises.isolation import DEFAULT_SECONDS, check_and_report
from minigan.exercises.records import EXERCISES, find
from minigan.scripts import (
    EXIT_INTERRUPTED,
    USER_ERRORS,
    OneLineParser,
    TerminateAsInterrupt,
    add_backend_argument,
    print_error,
)

DEFAULT_FOLDER = "my_kernels"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m minigan.exercises",
                      description="Exercises: copy the stubs out, fill them in, grade.")
    commands = p.add_subparsers(dest="command", required=True, metavar="init|check")
    init = commands.add_parser("init", help="copy the exercise stubs into a new folder",
                               formatter_class=p.formatter_class)
    init.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                      help="where your code will live: the stubs missing from it are copied, "
                           "no file is ever overwritten")
    check = commands.add_parser(
        "check", help="grade the code in a folder: passed / failed / not started",
        formatter_class=p.formatter_class)
    check.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                       help="the folder made by `init`")
    check.add_argument("--solutions", action="store_true",
                       help="grade minigan's own solutions instead of a folder")
    check.add_argument("--examples", type=int, default=50,
                       help="cases drawn per exercise before it counts as passed")
    check.add_argument("--seed", type=int, default=0,
                       help="seeds hypothesis's draws (the same seed gives the same report)")
    check.add_argument("--time-limit", type=float, default=DEFAULT_SECONDS, metavar="SECONDS",
                       help="the time one case may take before its row says 'timed out'")
    check.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                       help="grade only these exercises (names as --hint takes them)")
    check.add_argument("--hint", default=None, metavar="NAME",
                       help="print a hint for one exercise (e.g. conv2d_backward) instead of "
                            "grading: the one after the stub's own, unless --tier says")
    check.add_argument("--tier", type=int, default=2,
                       help="which hint --hint prints (the stub holds tier 1; each hint names "
                            "the next)")
    add_backend_argument(check)
    check.add_argument("--report", default=None, metavar="FILE",
                       help="also write the report to this file, which must be new or an "
                            "earlier report (default: grader_report.txt in the folder; none "
                            "with --solutions, or with --only, which grades a part of it)")
    for sub in (init, check):   # the subcommands report bad arguments on one line too
        sub.error = p.error     # type: ignore[method-assign]
    return p


def run(args: argparse.Namespace) -> int:
    if args.command == "init":
        folder = Path(args.folder)
        kept = folder.is_dir() and any(folder.iterdir())
        copied = init_folder(folder)
        print(f"copied {len(copied)} file{'s' * (len(copied) != 1)} into {folder}: "
              f"{', '.join(p.name for p in copied)}"
              + (" (the files already there are left as they are)" if kept else ""))
        stubs = [p.name for p in copied if p.name != "__init__.py"]   # in the course's order
        if stubs:
            print(f"next: fill in {folder / stubs[0]}, then "
                  f"`python -m minigan.exercises check {folder}`")
        return 0
    if args.hint is not None:
        print(hint(args.hint, args.tier))
        return 0
    if args.examples < 1:
        raise ValueError(f"--examples must be at least 1, got {args.examples}")
    if not args.time_limit > 0:
        raise ValueError(f"--time-limit must be a positive number of seconds, "
                         f"got {args.time_limit}")
    exercises = EXERCISES
    if args.only:
        exercises = tuple(find(name.strip()) for name in args.only.split(","))
    folder = None if args.solutions else args.folder
    out = report_path(args)                  # refused before the grading, not after
    results, report = check_and_report(folder, args.examples, args.seed, args.time_limit,
                                       args.backend, exercises, progress=True)
    print(report)
    if out is not None:
        write_text_atomically(out, report + "\n")
    return 0 if all(r.status == PASSED for r in results) else 1


def report_path(args: argparse.Namespace) -> Path | None:
    """Where ``check`` writes its report: ``--report``, else ``grader_report.txt`` in the folder
    when the whole folder is graded (an ``--only`` table would replace the whole one with a
    part of it). Never over a file that is not an earlier report: a learner's ``scale.py`` given
    by mistake must survive."""
    if args.report is not None:
        path = Path(args.report)
    elif args.solutions or args.only:
        return None
    else:
        path = Path(args.folder) / "grader_report.txt"
    if path.is_dir():
        raise ValueError(f"--report: {path} is a folder; give the name of a file")
    if path.exists() and not is_grader_report(path):
        raise ValueError(f"--report: {path} exists and is not a grader report, so it is left "
                         f"as it is; give the name of a new file")
    return path


def is_grader_report(path: Path) -> bool:
    """Whether ``path`` holds a report that ``check`` wrote (``grader.format_report`` begins
    every report with the same words)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().startswith(REPORT_FIRST_WORDS)


def write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with TerminateAsInterrupt():   # SIGTERM too: the children are stopped, one line
            return run(args)
    except KeyboardInterrupt as interrupt:
        print(f"\ngrading stopped ({str(interrupt) or 'Ctrl-C'})", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        return print_error(error)


if __name__ == "__main__":
    sys.exit(main())
