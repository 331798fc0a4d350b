"""A grader nothing can break: each group of exercises runs in a child process of its own.

A learner's folder may hold an endless loop, a ``sys.exit(0)``, an ``os._exit``, a crash of the
interpreter (``os.abort``), a broken ``__init__.py`` or an import of a module that is not
installed. Whatever it holds, ``python -m minigan.exercises check`` prints one line per row
and a sentence per failure, never a traceback, ends in bounded time (a loop is "timed out after
N s" and the rest of the table still prints), and exits 0 only when everything passed. Ctrl-C
stops grading with one line and exit 130. The time limits here are kept small.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import minigan.ops
from minigan.exercises import EXERCISES, check_folder, check_lines, find
from minigan.exercises.__main__ import main
from minigan.exercises.grader import FAILED, NOT_STARTED, PASSED
from tests.helpers import REPO_ROOT

ROW = re.compile(r"^  (\S.*?)\s{2,}(passed|failed|not started)(  \(.*\))?$", re.M)


def table(out: str) -> dict[str, str]:
    return {title: status for title, status, _ in ROW.findall(out)}


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


MINIGANS_IM2COL = "from minigan.ops.im2col import col2im, conv_output_size, im2col  # noqa\n"
WRONG_CONV2D_BACKWARD = """
from minigan.ops.conv2d import conv2d_backward as minigan_backward  # noqa: E402
from minigan.ops.conv2d import conv2d_forward  # noqa: E402, F401, F811
from minigan.ops.layout import to_rows  # noqa: E402


def conv2d_backward(dy, cache, need_weight_grad=True, need_input_grad=True):  # noqa: F811
    dx, dw, db = minigan_backward(dy, cache, need_weight_grad, need_input_grad)
    if dw is not None:
        dw = (cache.cols.T @ to_rows(dy)).T.reshape(cache.w.shape)   # the wrong layout
    return dx, dw, db
"""


def unruly_folder(stubs: Path) -> Path:
    """One file for each way a learner's code can misbehave."""
    write(stubs, "scale.py", "import sys\n\n\ndef scale(x, feature_range=(-1, 1)):\n"
                             "    sys.exit(0)\n")
    write(stubs, "conv2d_naive.py", "import os\n\n\n"
                                    "def conv2d_naive(x, w, b=None, stride=1, padding=0):\n"
                                    "    os.abort()\n")
    write(stubs, "im2col.py", MINIGANS_IM2COL)
    with open(stubs / "conv2d.py", "a", encoding="utf-8") as f:
        f.write(WRONG_CONV2D_BACKWARD)
    with open(stubs / "activations.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef leaky_relu_forward(x, negative_slope=0.01):  # noqa: F811\n"
                "    while True:\n        pass\n")
    write(stubs, "adam.py", "import os\n\n\ndef adam_update(*args):\n    os._exit(3)\n")
    write(stubs, "metrics.py", "import a_module_that_is_not_installed  # noqa\n")
    return stubs


def test_an_unruly_folder_gets_one_line_per_row_and_no_traceback(stubs, capfd):
    names = ["scale", "conv2d_naive", "im2col", "conv2d_forward", "conv2d_backward",
             "leaky_relu", "tanh", "adam_update", "inception_score", "batch_norm_train"]
    started = time.perf_counter()
    code = main(["check", str(unruly_folder(stubs)), "--examples", "5", "--time-limit", "1",
                 "--only", ",".join(names)])
    seconds = time.perf_counter() - started
    out = capfd.readouterr()
    assert code == 1
    assert "Traceback" not in out.out + out.err
    assert table(out.out) == {
        "scale pixels": FAILED, "conv2d, seven loops": FAILED, "im2col and col2im": PASSED,
        "conv2d forward": PASSED, "conv2d backward": FAILED, "leaky ReLU": FAILED,
        "tanh": NOT_STARTED, "Adam update": FAILED, "Inception Score": FAILED,
        "batch norm, training": NOT_STARTED}
    sentences = out.out.split("\n\n")
    expected = [
        r"scale raised SystemExit: 0 for pixels \(2,\), feature_range \(-1, 1\)",
        r"conv2d_naive crashed the process running it \(SIGABRT\) for x \(1, 1, 2, 2\), .*",
        r"conv2d_backward: dw is wrong for x \(1, 2, 2, 2\), w \(1, 2, 2, 2\), .*",
        r"leaky_relu_forward timed out after 1 s for x \(2,\), negative_slope 0\.2 .*",
        r"adam_update ended the process running it \(exit status 3: os\._exit\?\) for "
        r"param \(1, 1\)",
        r"\S+metrics\.py could not be imported: ModuleNotFoundError: No module named "
        r"'a_module_that_is_not_installed'"]
    for pattern in expected:
        assert any(re.match(pattern, s) for s in sentences), (pattern, out.out)
    assert seconds < 120   # bounded: the loop cost one second, not forever


def test_a_broken_init_fails_every_row_with_one_sentence(stubs, capfd):
    write(stubs, "__init__.py", "import os\nos._exit(0) if False else None\nraise SystemExit(0)\n")
    code = main(["check", str(stubs), "--examples", "2", "--time-limit", "1", "--only",
                 "scale,tanh"])
    out = capfd.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    assert table(out.out) == {"scale pixels": FAILED, "tanh": FAILED}
    assert re.search(r"^\S+__init__\.py could not be imported: SystemExit: 0$", out.out, re.M)


def test_os_exit_while_importing_names_the_file(stubs):
    write(stubs, "scale.py", "import os\nos._exit(0)\n")
    result, = check_folder(stubs, max_examples=2, seconds=1, exercises=[find("scale")])
    assert result.status == FAILED
    assert result.sentence == ("importing scale.py (or the folder's __init__.py) ended the "
                               "process running it (exit status 0: os._exit?)")


def test_a_loop_at_import_time_times_out_in_its_own_row(stubs):
    write(stubs, "scale.py", "while True:\n    pass\n")
    scale, tanh = check_folder(stubs, max_examples=2, seconds=1,
                               exercises=[find("scale"), find("tanh")])
    assert scale.status == FAILED and tanh.status == NOT_STARTED
    assert scale.sentence == ("scale.py did not finish importing within 1 s (a loop at its "
                              "top level?)")


def test_the_learners_code_cannot_touch_minigans_own_state(stubs):
    """A file that rebinds minigan's kernels does so in its child process only."""
    write(stubs, "scale.py", "import minigan.ops\nminigan.ops.conv2d_forward = None\n"
                             "def scale(x, feature_range=(-1, 1)):\n"
                             "    raise NotImplementedError('scale: write me')\n")
    original = minigan.ops.conv2d_forward
    check_folder(stubs, max_examples=2, seconds=1, exercises=[find("scale")])
    assert minigan.ops.conv2d_forward is original


def test_solutions_pass_in_child_processes():
    results = check_folder(None, max_examples=2, seconds=30)
    assert [r.status for r in results] == [PASSED] * len(EXERCISES)


def wait_for_a_child_of(pid: int, seconds: float = 60) -> int:
    """Until process ``pid`` has started a child process (read from /proc); the child's pid."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    return int(stat.parent.name)
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.1)
    raise AssertionError(f"process {pid} started no child within {seconds} s")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_grading_with_one_line_and_exit_130(stubs, how):
    """Ctrl-C or SIGTERM: one line, exit 130, and the child grading the endless loop is
    stopped too (with SIGTERM it was left running, at full speed, until its case's limit)."""
    with open(stubs / "activations.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef tanh_forward(x):  # noqa: F811\n    while True:\n        pass\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "minigan.exercises", "check", str(stubs),
                                "--only", "tanh", "--time-limit", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    child = wait_for_a_child_of(process.pid)   # the grader is waiting on it: stop it now
    time.sleep(0.5)
    process.send_signal(how)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    name = "Ctrl-C" if how == signal.SIGINT else "SIGTERM"
    assert err.strip().splitlines() == [f"grading stopped ({name})"]
    assert "Traceback" not in out + err
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "zombie" in \
        Path(f"/proc/{child}/status").read_text()


def test_check_lines_gives_one_line_per_exercise_for_a_notebook(stubs):
    write(stubs, "scale.py", "def scale(x, feature_range=(-1, 1)):\n    return x\n")
    lines = check_lines(stubs, "scale", "tanh", max_examples=2, seconds=5).splitlines()
    assert lines[0].startswith("scale pixels: failed: scale: the output is wrong for pixels")
    assert lines[1] == "tanh: not started"
    assert check_lines(None, "scale", max_examples=2) == "scale pixels: passed"


def test_a_kernel_folder_that_is_a_file_says_so(tmp_path):
    file = tmp_path / "my_kernels"
    file.write_text("not a folder")
    with pytest.raises(FileNotFoundError, match="it is a file, not a folder"):
        check_folder(file, max_examples=1)



WRONG_IM2COL = """
from minigan.ops.im2col import col2im, conv_output_size  # noqa: F401
from minigan.ops.im2col import im2col as minigans


def im2col(x, kernel_size, stride=1, padding=0):
    cols = minigans(x, kernel_size, stride, padding)
    K, C = kernel_size, x.shape[1]   # the mistake: columns in (c, i, j) order, not (i, j, c)
    return cols.reshape(len(cols), K, K, C).transpose(0, 3, 1, 2).reshape(len(cols), -1)
"""
CONV2D_FORWARD_ON_IM2COL = """
N, F, K = x.shape[0], w.shape[0], w.shape[2]
H_out = conv_output_size(x.shape[2], K, stride, padding)
W_out = conv_output_size(x.shape[3], K, stride, padding)
cols = im2col(x, K, stride, padding)
y_rows = cols @ weight_matrix(w) + (0 if b is None else b)
return (rows_to_nchw(y_rows, (N, F, H_out, W_out)),
        Conv2dCache(cols, w, tuple(x.shape), stride, padding, b is not None))
"""


def test_a_row_that_fails_because_of_another_rows_function_says_so(stubs):
    """A wrong im2col makes the learner's conv2d forward wrong too: that row points at im2col
    (the file it imports it from) instead of leaving the learner to search conv2d.py."""
    from tests.exercises.conftest import fill_in

    write(stubs, "im2col.py", WRONG_IM2COL)
    fill_in(stubs / "conv2d.py", "conv2d_forward", CONV2D_FORWARD_ON_IM2COL)
    results = {r.exercise.name: r for r in check_folder(
        stubs, 5, exercises=[find("im2col"), find("conv2d_forward"), find("tanh")])}
    assert results["im2col"].status == FAILED
    assert "builds on" not in results["im2col"].sentence
    assert results["conv2d_forward"].status == FAILED
    assert results["conv2d_forward"].sentence.startswith("conv2d_forward: y is wrong")
    assert results["conv2d_forward"].sentence.endswith(
        "(conv2d.py builds on your im2col and col2im, whose row fails too: fix that first)")
    write(stubs, "im2col.py", "from minigan.ops.im2col import col2im, conv_output_size, im2col")
    assert check_folder(stubs, 5, exercises=[find("conv2d_forward")])[0].status == PASSED


def test_a_step_that_fails_because_its_d_step_does_says_so(stubs):
    """d_step without zero_grad: its own row says what carries over, and train_step's row,
    which calls it, points at it (the same file: found from what train_step calls)."""
    from tests.exercises.conftest import fill_in
    from tests.exercises.test_course import D_STEP_WITHOUT_ZERO_GRAD
    from tests.exercises.test_use_kernels import LEARNERS_STEP

    for function, body in {**LEARNERS_STEP, "d_step": D_STEP_WITHOUT_ZERO_GRAD}.items():
        fill_in(stubs / "step.py", function, body)
    results = {r.exercise.name: r for r in check_folder(
        stubs, 3, exercises=[find("d_step"), find("g_step"), find("train_step")])}
    assert results["g_step"].status == PASSED
    assert results["d_step"].status == FAILED and "builds on" not in results["d_step"].sentence
    assert results["train_step"].status == FAILED
    assert results["train_step"].sentence.endswith(
        "(step.py builds on your D step, whose row fails too: fix that first)")
