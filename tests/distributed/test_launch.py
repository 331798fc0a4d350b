"""``python -m minigan.launch``: N processes of one machine, talking through shared memory.

What training needs of it is checked in test_processes.py (two ranks train exactly as one
process; a dead or failing rank stops the run). Here: the collectives themselves, on three
ranks, and what the launcher does when a rank fails, when it is killed, or when it is misused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minigan import shared_comm
from minigan.distributed import launched_on_this_machine
from tests.helpers import REPO_ROOT

COLLECTIVES = str(REPO_ROOT / "tests" / "distributed" / "collectives.py")
TIMEOUT = 60


def launch(*args: str, ranks: int = 3) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                         os.environ.get("PYTHONPATH")])))
    # The ranks share one stdout pipe. Unbuffered (PYTHONUNBUFFERED set where the suite runs),
    # print writes a line's text and its newline separately, and two ranks' lines can
    # interleave ("TrueTrue"); buffered, each rank's few lines leave in one write at its exit.
    env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run([sys.executable, "-m", "minigan.launch", "-n", str(ranks), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO_ROOT,
                          env=env)


def test_three_ranks_sum_and_broadcast_and_all_get_the_same_numbers():
    result = launch(COLLECTIVES)
    assert result.returncode == 0, result.stderr
    reports = sorted((json.loads(line) for line in result.stdout.splitlines()),
                     key=lambda r: r["rank"])
    assert [r["rank"] for r in reports] == [0, 1, 2] and {r["size"] for r in reports} == {3}
    for report in reports:
        assert report["small"] == [30.0, 33.0, 36.0, 39.0, 42.0]    # (k) + (k + 10) + (k + 20)
        # 1 + 1/2 + 1/3, added in rank order in float32, in every piece of the large array
        expected = float((np.float32(1) + np.float32(0.5)) + np.float32(1 / 3))
        assert report["large"] == [expected]
        assert report["state"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]   # rank 0's


def test_a_rank_that_exits_early_stops_the_others_with_its_code():
    started = time.monotonic()
    result = launch(COLLECTIVES, "--rank-1-exits")
    assert result.returncode == 3
    assert time.monotonic() - started < TIMEOUT / 2
    assert "minigan.launch: rank 1 exited with code 3; stopping the other ranks" in result.stderr
    assert result.stdout == ""            # ranks 0 and 2 never got past the barrier
    assert "Traceback" not in result.stderr


def test_ranks_stop_when_the_launcher_is_killed():
    """The launcher is killed (no chance to stop its ranks); the ranks waiting at a barrier
    for a rank that sleeps notice and leave, instead of waiting forever, and remove the shared
    file that the launcher could not."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    launcher = subprocess.Popen([sys.executable, "-m", "minigan.launch", "-n", "2", COLLECTIVES,
                                 "--rank-1-sleeps"], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(3)                      # rank 0 is at the barrier by now
        ranks = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()]
        assert len(ranks) == 2
        environment = open(f"/proc/{min(ranks)}/environ", "rb").read().split(b"\0")
        shared = next(v.split(b"=", 1)[1].decode() for v in environment
                      if v.startswith(shared_comm.ENV_FILE.encode() + b"="))
        assert os.path.exists(shared)
        launcher.kill()
        launcher.wait()
        deadline = time.monotonic() + 30   # a slow machine may still be importing NumPy
        while time.monotonic() < deadline and os.path.exists(f"/proc/{min(ranks)}/status") \
                and "zombie" not in open(f"/proc/{min(ranks)}/status").read():
            time.sleep(0.1)
        alive = [r for r in ranks if os.path.exists(f"/proc/{r}/status")
                 and "zombie" not in open(f"/proc/{r}/status").read()]
        assert min(ranks) not in alive     # rank 0 (the first started) left the barrier
        assert not os.path.exists(shared)
    finally:
        for pid in ranks if "ranks" in locals() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("args, message", [
    (["-n", "0", "examples/train_svhn.py"], "error: -n must be at least 1, got 0"),
    (["-n", "2", "no_such_script.py"], "error: no script 'no_such_script.py'"),
    (["-n", "2"], "error: give the script to run, e.g. python -m minigan.launch -n 2"),
])
def test_misuse_is_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "minigan.launch", *args], capture_output=True,
                            text=True, timeout=TIMEOUT, cwd=REPO_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_barrier_refuses_to_wait_after_another_rank_aborted(tmp_path):
    """The abort code in the shared file makes a waiting rank leave with that code."""
    path = tmp_path / "ranks"
    path.write_bytes(bytes(shared_comm.shared_file_bytes(2)))
    comm = shared_comm.SharedMemoryComm(str(path), rank=0, size=2)
    comm.abort_code[0] = 7               # what rank 1's Abort(7) writes
    with pytest.raises(shared_comm.RankStopped) as stopped:
        comm.Barrier()                   # rank 1 never arrives
    assert stopped.value.code == 7


def test_a_run_started_alone_is_not_launched(monkeypatch):
    monkeypatch.delenv(shared_comm.ENV_FILE, raising=False)
    assert not launched_on_this_machine()
    assert shared_comm.SharedMemoryComm.from_environment() is None


TRAIN_SVHN = str(REPO_ROOT / "examples" / "train_svhn.py")
SMALL_RUN = ["--dataset", "synthetic", "--num-train", "256", "--batch-size", "16",
             "--conv-dim", "8"]


def test_train_svhn_with_processes_runs_as_two_ranks(tmp_path):
    """``--processes 2`` is ``python -m minigan.launch -n 2`` started by the script itself."""
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, TRAIN_SVHN, *SMALL_RUN, "--processes", "2",
                             "--max-steps", "2", "--out", str(out)], capture_output=True,
                            text=True, timeout=TIMEOUT, cwd=REPO_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0, result.stderr
    assert "2 processes, 8 images of each batch per process" in result.stdout
    assert result.stdout.count("2 steps in") == 1          # rank 0 alone prints
    assert json.loads((out / "config.json").read_text())["processes"] == 2
    if len(os.sched_getaffinity(0)) < 2:   # a one-core machine is told why it may be slow
        assert "warning: --processes 2 on 1 usable cores" in result.stderr
    else:
        assert "warning" not in result.stderr
    # Resumed by one process: said among the changes, and recorded.
    resumed = subprocess.run([sys.executable, TRAIN_SVHN, "--resume", "--max-steps", "3",
                              "--out", str(out)], capture_output=True, text=True,
                             timeout=TIMEOUT, cwd=REPO_ROOT,
                             env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert resumed.returncode == 0, resumed.stderr
    assert "changed: processes 2 -> 1" in resumed.stdout
    assert json.loads((out / "config.json").read_text())["processes"] == 1


def test_a_rank_hears_ctrl_c_from_its_first_instant(tmp_path):
    """The launcher leaves Ctrl-C to the ranks, but not by ignoring it (SIG_IGN), which they
    would inherit: a Ctrl-C while they still load NumPy would be lost and the run go on."""
    script = tmp_path / "handler.py"
    script.write_text("import signal\n"
                      "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    result = launch(str(script), ranks=2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm to the launcher", "sigterm to the group"])
def test_ctrl_c_stops_every_rank_after_a_checkpoint_and_says_how_to_continue(tmp_path, how):
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "minigan.launch", "-n", "2", TRAIN_SVHN,
                            *SMALL_RUN, "--epochs", "1000", "--out", str(out)],
                           cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)   # its own process group, as in a terminal
    deadline = time.monotonic() + TIMEOUT / 2
    while time.monotonic() < deadline and not list(out.glob("samples/*.png")):
        time.sleep(0.2)                                     # the first epoch is over
    if how == "ctrl-c":
        os.killpg(run.pid, signal.SIGINT)                   # what Ctrl-C in a terminal does
    elif how == "sigterm to the group":                     # `timeout`, a job scheduler: each
        os.killpg(run.pid, signal.SIGTERM)                  # rank gets it twice, counted once
    else:
        run.terminate()                                     # the launcher alone
    stdout, stderr = run.communicate(timeout=TIMEOUT)
    assert run.returncode == 130, stderr
    assert (f"continue with: python -m minigan.launch -n 2 {TRAIN_SVHN} --resume --out {out}"
            in stdout + stderr)
    assert (out / "checkpoint.npz").is_file()
    assert "Traceback" not in stderr
