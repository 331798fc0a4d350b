"""What every command-line script of minigan shares: ``--help`` that shows defaults, and errors
and warnings printed as one line (no traceback, no usage block) with a non-zero exit code.

Exit codes: 0 done, 2 an error the user can fix (one ``error:`` line), 130 interrupted (Ctrl-C
or SIGTERM), as a shell reports a program stopped by Ctrl-C, so ``train && generate`` stops too.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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


EXIT_INTERRUPTED = 130   # 128 + SIGINT, what shells report for a program stopped by Ctrl-C


def print_error(error: BaseException | str) -> int:
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
        # tqdm.write moves an open progress bar out of the way, so the warning gets a line of
        # its own instead of being glued to the bar's end.
        from minigan.progress import tqdm

        tqdm.write(f"warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show


def launched_as_rank() -> int | None:
    """This process's rank when ``python -m minigan.launch`` started it, else None."""
    from minigan.distributed import launched_on_this_machine
    from minigan.shared_comm import ENV_RANK

    return int(os.environ.get(ENV_RANK, "0")) if launched_on_this_machine() else None


def quiet_unless_root(world: Any) -> None:
    """In one of several processes, every rank but 0 prints nothing: its output and its
    warnings would repeat rank 0's, interleaved with them. Errors still show (stderr)."""
    if not world.is_root:
        sys.stdout = open(os.devnull, "w")
        warnings.simplefilter("ignore")


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend numpy|cupy``, defaulting to $MINIGAN_BACKEND (else numpy). A bad value in the
    variable is reported by ``use_backend`` as one line, like any other bad argument."""
    parser.add_argument("--backend", choices=("numpy", "cupy"),
                        default=os.environ.get("MINIGAN_BACKEND") or "numpy",
                        help="numpy runs on the CPU, cupy on an NVIDIA GPU ($MINIGAN_BACKEND)")


def add_data_dir_arguments(parser: argparse.ArgumentParser, whose: str = "the dataset's") -> None:
    """``--data-dir`` and ``--no-download``, for the scripts that read datasets' files.

    ``whose`` names the files in the help (``"the datasets'"`` for a script that reads two),
    so each script keeps its own wording while the options stay the same everywhere.
    """
    parser.add_argument("--data-dir", default=None,
                        help=f"where {whose} files are (default: $MINIGAN_DATA or "
                             f"~/.cache/minigan)")
    parser.add_argument("--no-download", action="store_true",
                        help="use only files already on disk, never download")


def add_mirror_argument(parser: argparse.ArgumentParser) -> None:
    """``--mirror URL`` for the scripts that download datasets (default: $MINIGAN_MIRROR)."""
    parser.add_argument("--mirror", default=None, metavar="URL",
                        help="download datasets from this mirror (http://, https:// or file://; "
                             "files at <URL>/<dataset>/<file>, the cache's layout) instead of "
                             "their own servers (default: $MINIGAN_MIRROR)")


def apply_mirror(args: argparse.Namespace) -> None:
    """Use ``args.mirror`` (if given) for every download of this run."""
    from minigan.data import use_mirror

    if getattr(args, "mirror", None):
        use_mirror(args.mirror)


# What --dataset accepts, for the help text of every script that has the option.
DATASET_HELP = ("svhn, cifar10, mnist, synthetic (no download: digits rendered on the fly), or "
                "the path of an .npz file of your own holding an 'images' array of uint8 "
                "pixels, (N, C, H, W) or (N, H, W, C) with C 1 or 3, and optionally N 'labels'; "
                "or a folder of PNG/JPEG pictures, one subfolder per class (resized and "
                "center-cropped to the size the script works at)")


def dataset_argument(value: str) -> str:
    """argparse ``type=`` for ``--dataset``: a known dataset name (any case, returned in lower
    case) or the path of an ``.npz`` file (returned as given); anything else is refused with
    the choices."""
    from minigan.data import DATASETS, is_image_folder, is_npz_path

    if not value.strip():   # not "the current folder": say which one, as "."
        raise argparse.ArgumentTypeError(f"empty: choose {', '.join(DATASETS)}, the path of an "
                                         f".npz file or a folder of pictures ('.' for the "
                                         f"current folder)")
    if is_npz_path(value):
        return value
    if value.lower() in DATASETS:
        return value.lower()
    if is_image_folder(value):
        return value
    raise argparse.ArgumentTypeError(f"unknown dataset {value!r}: choose {', '.join(DATASETS)}, "
                                     f"the path of an .npz file or a folder of pictures")


class TerminateAsInterrupt:
    """While active (main thread only): SIGTERM -- what ``kill`` and job schedulers send --
    raises KeyboardInterrupt("SIGTERM") like Ctrl-C, so that it too ends the work with one line
    and exit code 130 (by default it kills Python silently, without any cleanup). The
    handlers found are put back at the end, so a test or notebook calling ``main`` keeps its
    own."""

    def __enter__(self) -> TerminateAsInterrupt:
        import signal

        from minigan import startup

        self._saved: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            startup.hand_back()   # the script's start is over: usual Ctrl-C handling again
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:   # nohup: stays so
                self._saved[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:   # noqa: ARG004 -- a signal handler
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, *exc: Any) -> None:
        import signal

        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


def run_script(work: Callable[[argparse.Namespace], Any], args: argparse.Namespace,
               several_processes: bool = False) -> int:
    """Run a script's ``work(args)`` and turn how it ended into an exit code and one line.

    A user error prints ``error: ...`` (exit 2); running out of memory says so (exit 2);
    Ctrl-C or SIGTERM before or between the steps of the work (a download, data preparation)
    prints one line (exit 130; a partial download stays as ``.part`` and resumes next time).
    ``work`` may return an int exit code itself (training returns 130 after saving when
    interrupted). Ctrl-C while the script was still starting is handled by
    ``minigan.startup``. ``several_processes``: the script joins a run of several processes
    when ``python -m minigan.launch`` starts it (training, evaluate.py); any other script
    started so is refused, since each process would do all the work and write the same files.
    """
    one_line_warnings()
    if not several_processes and launched_as_rank() is not None:
        if launched_as_rank() != 0:
            return 2            # rank 0 says why, once
        return print_error(f"{Path(sys.argv[0]).name} does not run as several processes: "
                           f"start it with python alone, not with python -m minigan.launch")
    try:
        with TerminateAsInterrupt():
            code = work(args)
    except KeyboardInterrupt as interrupt:
        name = str(interrupt) or "Ctrl-C"
        print(f"\ninterrupted ({name}): stopped; a partial download, if any, is kept and "
              f"resumes on the next run", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError as error:
        return print_error(f"out of memory{': ' + str(error) if str(error) else ''}; try smaller "
                           f"sizes (--batch-size, --conv-dim, --num-train)")
    except USER_ERRORS as error:   # DataError, BackendError, TrainingDiverged, ShapeError...
        return print_error(error)
    return code if isinstance(code, int) else 0


# ---------------------------------------------------------------- checking values where parsed
def check_at_least_one(args: argparse.Namespace, *names: str) -> None:
    """Raise ValueError naming the first option in ``names`` (attribute names) set below 1.

    For counts (epochs, batch sizes) that a script checks after parsing, so the message
    names the option as typed: ``--batch-size must be at least 1, got 0``.
    """
    for name in names:
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def seed_argument(value: str) -> int:
    """argparse ``type=`` for ``--seed``: an integer 0 or more (NumPy's generators need it)."""
    seed = int_argument(value)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {seed}")
    return seed


def int_argument(value: str) -> int:
    """argparse ``type=`` for counts: an integer, also written as 1e6 or 1_000."""
    try:
        number = float(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number: {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise argparse.ArgumentTypeError(f"invalid whole number: {value!r}")
    return int(number)


def finite_float(value: str) -> float:
    """argparse ``type=`` for rates and fractions: a finite number (NaN and inf refused)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def physical_memory_bytes() -> int | None:
    """This machine's RAM, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(num_bytes: float, what: str) -> None:
    """Refuse, with the estimate, a size that cannot fit in this machine's memory: better one
    line now than a MemoryError traceback (or a machine swapping to a halt) later."""
    available = physical_memory_bytes()
    if available is not None and num_bytes > available:
        raise ValueError(f"{what} would need about {num_bytes / 2 ** 30:,.1f} GiB, more than "
                         f"this machine's {available / 2 ** 30:,.1f} GiB of memory")


# ---------------------------------------------------------------- outputs checked before the work
def _can_write_in(folder: Path, option: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OSError(f"{option} {folder}: cannot write there ({reason}); choose another "
                      f"{option}") from None


def check_writable_folder(folder: str | Path, option: str = "--out") -> Path:
    """Create ``folder`` if needed and make sure files can be written in it, before any work
    is done, so that minutes of training never end in "permission denied". Returns it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OSError(f"{option} {folder} is a file, not a folder")
    _can_write_in(folder, option)
    return folder


def add_overwrite_argument(parser: argparse.ArgumentParser, where: str = "--out") -> None:
    """``--overwrite``: the one way to let a script replace the results of an earlier run
    (``where``: the option naming the folder the results go to)."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace the results of an earlier run in {where} (without it, "
                             f"a script refuses to start when one of its result files exists)")


def check_no_earlier_results(results: Iterable[str | Path], overwrite: bool,
                             option: str = "--out") -> None:
    """The rule of every script that writes results: a run never replaces the results of an
    earlier one unless ``--overwrite`` is given. Raise ``FileExistsError`` naming the first of
    ``results`` (the files this run would write) that exists; check before any work, so no
    minutes are spent on a run that would then be refused (or, worse, silently replace a
    feature network that other runs' scores depend on)."""
    if overwrite:
        return
    for path in map(Path, results):
        if path.exists():
            raise FileExistsError(f"{path} already exists, the result of an earlier run: keep "
                                  f"it by giving another {option}, or replace it with "
                                  f"--overwrite")


def prepare_results_folder(folder: str | Path, names: Iterable[str], overwrite: bool,
                           option: str = "--out") -> Path:
    """``check_writable_folder(folder)`` and ``check_no_earlier_results`` of the files
    ``names`` in it, before any work. Returns the folder."""
    folder = check_writable_folder(folder, option)
    check_no_earlier_results((folder / name for name in names), overwrite, option)
    return folder


def check_writable_file(path: str | Path, option: str = "--out") -> Path:
    """Make sure the file ``path`` can be written (its folder exists or can be made, and is
    writable; ``path`` is not a folder), before any work is done. Returns it."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OSError(f"{option} {path}: the file exists and cannot be overwritten")
    _can_write_in(path.parent, option)
    return path
