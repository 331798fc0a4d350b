"""What every command-line script of minigan shares: ``--help`` that shows defaults, and errors
and warnings printed as one line (no traceback, no usage block) with a non-zero exit code."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

# The errors a user can cause (bad arguments, missing files, no GPU, bad data) and should see as
# one readable line. Anything else is a bug in minigan and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError, RuntimeError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None) or the text gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        # `is`, not `in (None, False)`: 0 == False, and a default of 0 should still be shown.
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def print_error(error: BaseException) -> int:
    """Print ``error: <message>`` on one line to stderr; return the exit code 2."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is reported on one line (no usage block), exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def one_line_warnings() -> None:
    """Show Python warnings (e.g. "FID is biased below 2048 samples") as ``warning: <message>``
    on one line of stderr, instead of a file name, a line number and a line of source code."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        text = " ".join(str(message).split())
        print(f"warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend numpy|cupy``, defaulting to $MINIGAN_BACKEND (else numpy). A bad value in the
    variable is reported by ``use_backend`` as one line, like any other bad argument."""
    parser.add_argument("--backend", choices=("numpy", "cupy"),
                        default=os.environ.get("MINIGAN_BACKEND") or "numpy",
                        help="numpy runs on the CPU, cupy on an NVIDIA GPU ($MINIGAN_BACKEND)")


# What --dataset accepts, for the help text of every script that has the option.
DATASET_HELP = ("svhn, cifar10, mnist, synthetic (no download: digits rendered on the fly), or "
                "the path of an .npz file of your own holding an 'images' array of uint8 "
                "pixels, (N, C, H, W) or (N, H, W, C) with C 1 or 3, and optionally N 'labels'")


def dataset_argument(value: str) -> str:
    """argparse ``type=`` for ``--dataset``: a known dataset name (any case, returned in lower
    case) or the path of an ``.npz`` file (returned as given); anything else is refused with
    the choices."""
    from minigan.data import DATASETS, is_npz_path

    if is_npz_path(value):
        return value
    if value.lower() in DATASETS:
        return value.lower()
    raise argparse.ArgumentTypeError(f"unknown dataset {value!r}: choose {', '.join(DATASETS)} "
                                     f"or the path of an .npz file")
