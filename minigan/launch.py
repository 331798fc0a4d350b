"""Start a training script as N processes of one data-parallel run on this machine: one per core.

    python -m minigan.launch -n 2 examples/train_svhn.py --epochs 5
    python -m minigan.launch examples/train_cifar10.py          # -n: every usable core

Why processes and not threads: NumPy runs most of a training step (copies, element-wise passes,
batch norm's sums) on one core however many the machine has, and Python's global lock keeps
threads from sharing that work well. N processes each take 1/N of every batch and one core, as
``mpiexec -n N ... --distributed`` does across machines (``minigan/distributed.py``), with the
same weights and, with synchronized batch norm, the same numbers as one process up to rounding.
Here the processes talk through a file of shared memory (``minigan/shared_comm.py``), so no MPI
is needed.

What this launcher does: make the shared file, start ``python SCRIPT ARGS`` N times with its
rank in the environment (the script then joins the run as ``--distributed`` would; each gets
``cores / N`` BLAS threads unless ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` is set), and
wait. If one process fails, the others are stopped (a rank waiting for a dead one would wait
forever) and the launcher exits with that process's code. Ctrl-C reaches every process from
the terminal, and SIGTERM sent to the launcher is passed on to them; the launcher waits while
they save and stop, and exits 130 as they do.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minigan.scripts import EXIT_INTERRUPTED, OneLineParser, print_error
from minigan.shared_comm import ENV_FILE, ENV_RANK, ENV_SIZE, shared_file_bytes, stop_every_rank

GRACE_SECONDS = 5.0     # after one process fails: how long the others get to stop by themselves
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m minigan.launch",
                      description="Run a minigan training script as N data-parallel processes "
                                  "on this machine (one per core), without MPI.")
    p.add_argument("-n", "--processes", type=int, default=usable_cores(),
                   help="how many processes; each takes 1/N of every batch (default: the "
                        "usable cores)")
    # Optional to argparse only so that its absence gets our own message (argparse would also
    # call the script's options, which may be none, "required").
    p.add_argument("script", nargs="?", help="the Python script, e.g. examples/train_svhn.py")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own options")
    return p


def shared_file(size: int) -> str:
    """A new zero-filled file for ``size`` ranks, in memory (/dev/shm) where the system has it."""
    folder = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    handle, path = tempfile.mkstemp(prefix="minigan-ranks-", dir=folder)
    with os.fdopen(handle, "wb") as file:
        file.truncate(shared_file_bytes(size))   # reads as zeros: every barrier count is 0
    return path


def rank_environment(rank: int, size: int, path: str) -> dict[str, str]:
    env = dict(os.environ, **{ENV_RANK: str(rank), ENV_SIZE: str(size), ENV_FILE: path})
    if not any(name in os.environ for name in THREAD_VARIABLES):
        for name in THREAD_VARIABLES:   # the cores shared out: no process's BLAS takes them all
            env[name] = str(max(1, usable_cores() // size))
    return env


def wait_for(processes: list[subprocess.Popen], path: str) -> int:
    """Wait for every process; the exit code of the first that failed, else 0.

    When one fails, its code goes into the shared file, where the others find it at their next
    wait and stop; any still running after ``GRACE_SECONDS`` is terminated."""
    first_failure, failed_at = 0, None
    while [p.poll() for p in processes].count(None):   # poll every one (any() would stop early)
        if failed_at is None:
            failed = [(rank, p.returncode) for rank, p in enumerate(processes)
                      if p.returncode not in (None, 0)]
            if failed:
                (rank, first_failure), failed_at = failed[0], time.monotonic()
                stop_every_rank(path, len(processes), first_failure)
                if first_failure != EXIT_INTERRUPTED:
                    print(f"minigan.launch: rank {rank} {how_it_ended(first_failure)}; stopping "
                          f"the other ranks", file=sys.stderr, flush=True)
        elif time.monotonic() - failed_at > GRACE_SECONDS:
            for p in processes:
                if p.poll() is None:
                    p.terminate()
        time.sleep(0.05)
    codes = [p.returncode for p in processes]
    if all(c in (0, EXIT_INTERRUPTED) for c in codes):   # done, or stopped by Ctrl-C
        return EXIT_INTERRUPTED if EXIT_INTERRUPTED in codes else 0
    code = first_failure or next(c for c in codes if c != 0)
    return 128 - code if code < 0 else code   # killed by signal s: 128 + s, as a shell says


def how_it_ended(code: int) -> str:
    """'exited with code 2', or 'was killed by signal 9 (SIGKILL)' for a negative code."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-code}{name}"


def let_the_ranks_handle_it(signum: int, frame: object) -> None:   # noqa: ARG001
    """The launcher's Ctrl-C: nothing to do, the ranks got it too. A handler that does nothing
    rather than SIG_IGN, because an ignored signal stays ignored in the processes started from
    here (a handler does not outlive their exec), and a rank must hear Ctrl-C from its first
    instant, while it still imports NumPy."""


def launch(processes: int, script: str, args: list[str]) -> int:
    """Run ``python script args`` as ``processes`` ranks; their combined exit code."""
    path = shared_file(processes)
    started: list[subprocess.Popen] = []

    def pass_on(signum: int, frame: object) -> None:   # noqa: ARG001
        for p in started:
            if p.poll() is None:
                p.send_signal(signum)

    # Ctrl-C goes from the terminal to every process of the group: the ranks save and stop by
    # themselves, and this process only has to wait for them. SIGTERM (a job scheduler, `kill`)
    # may come to this process alone: it is passed on, and the ranks save and stop the same way.
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, let_the_ranks_handle_it),
                signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on)}
    try:
        for rank in range(processes):
            started.append(subprocess.Popen([sys.executable, script, *args],
                                            env=rank_environment(rank, processes, path)))
        return wait_for(started, path)
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        Path(path).unlink(missing_ok=True)


def launch_this_script(processes: int, backend: str, argv: list[str]) -> int:
    """What a script's ``--processes N`` does: run this script again (``sys.argv[0]`` with
    ``argv``) as N ranks, after the checks every such script shares (one-line error, exit 2)."""
    if processes < 1:
        return print_error(f"--processes must be at least 1, got {processes}")
    if backend != "numpy":
        return print_error("--processes shares a CPU's cores out; with --backend cupy use one "
                           "process")
    if processes > usable_cores():
        print(f"warning: --processes {processes} on {usable_cores()} usable cores: the "
              f"processes will take turns on them (--processes {usable_cores()} is faster)",
              file=sys.stderr)
    return launch(processes, sys.argv[0], argv)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.processes < 1:
        print(f"error: -n must be at least 1, got {args.processes}", file=sys.stderr)
        return 2
    if args.script is None:
        print("error: give the script to run, e.g. python -m minigan.launch -n 2 "
              "examples/train_svhn.py", file=sys.stderr)
        return 2
    if not Path(args.script).is_file():
        print(f"error: no script {args.script!r} (give the path of a .py file, e.g. "
              f"examples/train_svhn.py)", file=sys.stderr)
        return 2
    return launch(args.processes, args.script, args.args)


if __name__ == "__main__":
    sys.exit(main())
