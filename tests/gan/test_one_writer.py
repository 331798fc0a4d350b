"""One writer per run folder, and resuming in one command, with real processes.

A run holds a lock on its --out folder (``minigan/gan/run_lock.py``): a second run, or a second
--resume, into a folder another live process is training into is refused in one line; a lock
left by a process that is gone is taken over with a line saying so. config.json records
everything a resume needs, the data folder resolved included, so `--resume --out RUN` alone
continues, and Ctrl-C or SIGTERM prints that exact command.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from minigan.checkpoint import load_checkpoint
from minigan.gan.run_lock import RunFolderLocked, RunLock
from tests.gan.test_runs import TINY, one_line_error, run, start, wait_for_line
from tests.helpers import shared_data


def dead_pid():
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_folder_refuses_a_second_run_and_a_second_resume(tmp_path):
    out = tmp_path / "run"
    first = start(*TINY, "--epochs", "1000", "--save-every", "1", "--out", out)
    try:
        wait_for_line(first, "training a DCGAN")
        lock = json.loads((out / "run.lock").read_text())
        assert lock == {"pid": first.pid, "host": socket.gethostname()}
        for extra in (["--overwrite"], ["--resume"]):
            second = run("train_svhn.py", *TINY, "--max-steps", "1", "--out", out, *extra)
            line = one_line_error(second)
            assert f"in use by process {first.pid} on {socket.gethostname()}" in line
    finally:
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert not (out / "run.lock").exists()              # given back when the run ends

    # The message names the exact command that continues the run; it does (2 more steps).
    command = stdout.split("continue with: ")[1].splitlines()[0]
    words = shlex.split(command)
    assert words[0] == "python" and words[2:] == ["--resume", "--out", str(out)]
    steps = int(load_checkpoint(out / "checkpoint.npz")["progress"]["step"])
    again = subprocess.run([sys.executable, *words[1:], "--max-steps", str(steps + 2)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"at epoch 1, step {steps}" in again.stdout and "2 steps in" in again.stdout


def test_two_runs_started_at_once_one_trains_the_other_is_refused(tmp_path):
    out = tmp_path / "run"
    both = [start(*TINY, "--max-steps", "3", "--out", out) for _ in range(2)]
    results = [(p.wait(timeout=300), p.communicate()) for p in both]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    loser = next(err for code, (_, err) in results if code != 0)
    lines = [ln for ln in loser.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), loser
    assert "in use by process" in lines[0] or "already holds a run" in lines[0]


def test_a_lock_left_by_a_process_that_is_gone_is_taken_over_with_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    gone = dead_pid()
    (out / "run.lock").write_text(json.dumps({"pid": gone, "host": socket.gethostname()}))
    result = run("train_svhn.py", *TINY, "--max-steps", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f"took over the lock of {out} from process {gone}") == 1
    assert not (out / "run.lock").exists()


def test_a_lock_file_of_another_host_is_refused_in_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    line = one_line_error(run("train_svhn.py", *TINY, "--max-steps", "1", "--out", out))
    assert "in use by process 1 on elsewhere.example" in line and "delete" in line
    assert (out / "run.lock").exists()                 # not ours to remove


def test_the_lock_in_one_process_is_exclusive_and_given_back(tmp_path):
    with RunLock(tmp_path) as lock:
        with pytest.raises(RunFolderLocked, match=f"process {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert lock.took_over is None
    assert not (tmp_path / "run.lock").exists()
    with RunLock(tmp_path):                           # free again
        pass


def test_resume_without_out_finds_the_folder_a_fresh_run_chose(tmp_path):
    fresh = run("train_svhn.py", *TINY, "--max-steps", "2", "--data-dir", "cache", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    config = json.loads((tmp_path / "runs" / "synthetic" / "config.json").read_text())
    assert config["data_dir"] == str((tmp_path / "cache").resolve())   # recorded resolved
    assert config["no_download"] is False
    resumed = run("train_svhn.py", "--dataset", "synthetic", "--resume", "--max-steps", "3",
                  cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from runs/synthetic/checkpoint.npz at epoch 1, step 2" in resumed.stdout


def test_resume_out_alone_finds_the_mnist_files_it_trained_on(tmp_path):
    """Issue 22's case: the data folder was not recorded, so the resume tried to download."""
    mnist = shared_data("mnist", "t10k-images-idx3-ubyte.gz").parent
    out = tmp_path / "run"
    fresh = run("train_svhn.py", "--dataset", "mnist", "--split", "test", "--data-dir", mnist,
                "--no-download", "--num-train", "32", "--batch-size", "8", "--conv-dim", "4",
                "--z-size", "8", "--max-steps", "2", "--out", out)
    assert fresh.returncode == 0, fresh.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run("train_svhn.py", "--resume", "--out", out, "--max-steps", "3",
                  cwd=elsewhere, env={**os.environ, "MINIGAN_DATA": str(elsewhere)})
    assert resumed.returncode == 0, resumed.stderr
    assert "at epoch 1, step 2" in resumed.stdout and "1 steps in" in resumed.stdout
    config = json.loads((out / "config.json").read_text())
    assert Path(config["data_dir"]) == mnist.resolve() and config["no_download"] is True


def test_train_svhn_accepts_no_download(tmp_path):
    result = run("train_svhn.py", "--dataset", "mnist", "--data-dir", tmp_path / "empty",
                 "--no-download", "--out", tmp_path / "run")
    line = one_line_error(result)   # no download tried: the missing file is named at once
    assert f"train-images-idx3-ubyte.gz not found in {tmp_path / 'empty'}" in line
