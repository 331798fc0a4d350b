"""``python -m minigan.exercises init|check``: copy the stubs out, or grade a kernel folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minigan.scripts import USER_ERRORS, OneLineParser, add_backend_argument, print_error

DEFAULT_FOLDER = "my_kernels"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m minigan.exercises",
                      description="Kernel exercises: copy the stubs out, fill them in, grade.")
    commands = p.add_subparsers(dest="command", required=True, metavar="init|check")
    init = commands.add_parser("init", help="copy the exercise stubs into a new folder",
                               formatter_class=p.formatter_class)
    init.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                      help="where your kernels will live (never overwritten)")
    check = commands.add_parser(
        "check", help="grade the kernels in a folder: passed / failed / not started",
        formatter_class=p.formatter_class)
    check.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                       help="the folder made by `init`")
    check.add_argument("--solutions", action="store_true",
                       help="grade minigan's own kernels instead of a folder")
    check.add_argument("--examples", type=int, default=50,
                       help="cases drawn per exercise before it counts as passed")
    check.add_argument("--seed", type=int, default=0,
                       help="seeds hypothesis's draws (the same seed gives the same report)")
    add_backend_argument(check)
    check.add_argument("--report", default=None, metavar="FILE",
                       help="also write the report to this file (default: grader_report.txt "
                            "in the folder; none with --solutions)")
    for sub in (init, check):   # the subcommands report bad arguments on one line too
        sub.error = p.error     # type: ignore[method-assign]
    return p


def run(args: argparse.Namespace) -> int:
    from minigan.exercises.kernels import init_folder, load_kernels, minigan_kernels

    if args.command == "init":
        folder = Path(args.folder)
        copied = init_folder(folder)
        print(f"copied {len(copied)} files into {folder}: {', '.join(p.name for p in copied)}")
        print(f"next: fill in leaky ReLU in {folder / 'activations.py'}, then "
              f"`python -m minigan.exercises check {folder}`")
        return 0

    from minigan.backend import use_backend
    from minigan.exercises.grader import FAILED, NOT_STARTED, grade_and_report

    if args.examples < 1:
        raise ValueError(f"--examples must be at least 1, got {args.examples}")
    use_backend(args.backend)   # the checks make their arrays there; the kernels follow them
    kernels = minigan_kernels() if args.solutions else load_kernels(args.folder)
    results, report = grade_and_report(kernels, args.examples, seed=args.seed, progress=True)
    print(report)
    out = args.report or (None if args.solutions else Path(args.folder) / "grader_report.txt")
    if out is not None:
        write_text_atomically(Path(out), report + "\n")
    return 1 if any(r.status in (FAILED, NOT_STARTED) for r in results) else 0


def write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except USER_ERRORS as error:
        return print_error(error)


if __name__ == "__main__":
    sys.exit(main())
