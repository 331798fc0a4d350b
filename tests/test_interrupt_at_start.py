"""Ctrl-C at any moment, the first second included: while Python is still importing NumPy,
SIGINT or SIGTERM ends every script with one line and exit code 130 (issue 22: a
KeyboardInterrupt traceback from deep inside NumPy's import, or a silent death on SIGTERM).

Each test starts a real script and waits -- polling, bounded -- until the script's first
import, ``minigan.startup``, has put its handlers in place (Linux says so in
/proc/<pid>/status: SIGTERM becomes a *caught* signal), then sends the signal at once, while
NumPy and minigan are still loading. And importing the module into a library user's process
(a test, a notebook) changes no handler.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

EXAMPLES = ["adversarial.py", "batch_norm_mnist.py", "domain_adversarial.py", "evaluate.py",
            "generate.py", "semi_supervised.py", "step_through.py", "train_cifar10.py",
            "train_classifier.py", "train_svhn.py"]

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="reads which signals a process catches from /proc")


def caught_signals(pid: int) -> int:
    """The bit mask of signals process ``pid`` has a handler for (bit n-1: signal n)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def signal_while_starting(script: str, signum: int, *args: str,
                          ignore_sigint: bool = False) -> tuple[int, str, bool]:
    """Start ``examples/<script>``, send ``signum`` as soon as its start-up handlers are in
    place; return (exit code, stderr, whether NumPy was still not fully loaded then).
    ``ignore_sigint``: start it with SIGINT ignored, as ``cmd &`` in a script does."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OPENBLAS_NUM_THREADS": "1"}
    # Whatever this test process inherited, the script starts with Ctrl-C's usual action.
    action = signal.SIG_IGN if ignore_sigint else signal.SIG_DFL
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "examples" / script), *args],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, action))
    deadline = time.monotonic() + 60
    try:
        while not caught_signals(process.pid) & (1 << (signal.SIGTERM - 1)):
            assert process.poll() is None, "the script ended before its start-up handlers"
            assert time.monotonic() < deadline, "no start-up handler within 60 s"
            time.sleep(0.001)
        maps = Path(f"/proc/{process.pid}/maps").read_text()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr, "_multiarray_umath" not in maps


@pytest.mark.parametrize("script", EXAMPLES)
def test_ctrl_c_while_numpy_loads_is_one_line_and_exit_130(script):
    # On a busy machine (the suite runs in two workers on two cores) this process may be
    # scheduled late and see the handlers only once NumPy has loaded: then the try says
    # nothing about the imports, so it is made again, up to five times. Every try must still
    # end in the one line and 130.
    for _ in range(5):
        code, stderr, numpy_still_loading = signal_while_starting(script, signal.SIGINT,
                                                                  "--help")
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 130, stderr
        assert lines == ["interrupted (Ctrl-C) while starting: nothing was done"], stderr
        if numpy_still_loading:
            break
    assert numpy_still_loading   # the signal really came during the imports


@pytest.mark.parametrize("script", ["train_classifier.py", "train_svhn.py"])
def test_sigterm_while_starting_is_one_line_too(script):
    code, stderr, _ = signal_while_starting(script, signal.SIGTERM, "--help")
    assert code == 130
    assert stderr.split("\n") == ["", "interrupted (SIGTERM) while starting: nothing was done",
                                  ""], stderr


def test_a_script_started_with_ctrl_c_ignored_keeps_ignoring_it():
    """``cmd &`` (or nohup) starts a program with SIGINT ignored: it was asked not to stop."""
    code, stderr, _ = signal_while_starting("train_classifier.py", signal.SIGINT, "--help",
                                            ignore_sigint=True)
    assert code == 0 and stderr == "", stderr      # --help ran to its end


def test_sigterm_during_the_work_is_one_line_and_exit_130(tmp_path):
    """After the start, run_script turns SIGTERM into the same one line as Ctrl-C."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "examples" / "train_classifier.py"), "--dataset",
         "synthetic", "--epochs", "1000", "--out", str(tmp_path / "f.npz")],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "training a feature network" not in line:
            line = process.stdout.readline()
            assert line or process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines()
             if ln.strip() and "epoch" not in ln]   # progress bar lines aside
    assert process.returncode == 130, stderr
    assert len(lines) == 1 and lines[0].startswith("interrupted (SIGTERM)"), stderr
    assert not (tmp_path / "f.npz").exists()   # nothing half-written


def test_importing_it_from_a_library_or_a_test_changes_no_handler():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    startup = importlib.import_module("minigan.startup")
    importlib.reload(startup)           # imported by this test module, not by __main__
    assert {s: signal.getsignal(s) for s in before} == before
    assert startup.previous_handlers == {}


def test_no_library_module_imports_it():
    """Only scripts may: a library must leave the signals of its user's process alone."""
    users = [p for p in (REPO_ROOT / "minigan").rglob("*.py")
             if re.search(r"^import minigan\.startup", p.read_text(), re.MULTILINE)]
    assert users == []
