"""The teaching examples run as a learner runs them: step_through.py and batch_norm_mnist.py.

Each test starts the script in a fresh Python process, as a shell would, and reads what it
prints. ``step_through.py`` must report every layer's gradient check as PASS with a float64
error far below 1e-6. ``batch_norm_mnist.py`` is run for one short epoch on the real MNIST test
files (skipped when they are absent) and must write its plot and print both accuracies of the
batch-norm network; a bad argument must give one line of error and a non-zero exit code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, shared_data

EXAMPLES = REPO_ROOT / "examples"
# One BLAS thread: on a small shared machine extra threads only wait for each other.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
       "MINIGAN_BACKEND": "numpy"}


def run_example(name: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=REPO_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_step_through_prints_every_shape_and_passes_every_check():
    result = run_example("step_through.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for name in ("x", "h = conv(x)", "mu_B", "sigma2_B", "x_hat", "z = bn(h)",
                 "y = leaky_relu(z)", "dy", "dh = bn.backward(dz)", "bn.weight.grad",
                 "dx = conv.backward(dh)", "conv.weight.grad"):
        assert re.search(rf"^\s+{re.escape(name)}\s+\(", out, re.MULTILINE), \
            f"step_through.py did not print the shape of {name!r}"
    checks = dict((layer, (float(err), verdict)) for layer, err, verdict in re.findall(
        r"^\s+(\w+)\s+relative error (\S+)\s+(PASS|FAIL)$", out, re.MULTILINE))
    assert set(checks) == {"Conv2d", "BatchNorm2d", "LeakyReLU"}
    for layer, (err, verdict) in checks.items():
        assert verdict == "PASS" and err < 1e-6, f"{layer}: {err} {verdict}"
    assert "all layers PASS" in out

    # The architecture page shows this output: it must still be what the script prints. Tiny
    # numbers such as 1.3e-09 depend on rounding (and so on the BLAS build): compare their form.
    def shape_of(text: str) -> str:
        return re.sub(r"\d\.\d+e-\d\d", "#.#e-##", text.strip())

    page = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert shape_of(out) in shape_of(page), \
        "docs/architecture.md shows an outdated output of examples/step_through.py"


def test_batch_norm_mnist_tiny_run(tmp_path):
    data_dir = shared_data("mnist")
    out = tmp_path / "run"
    result = run_example("batch_norm_mnist.py", "--data-dir", str(data_dir), "--no-download",
                         "--epochs", "1", "--limit", "256", "--batch-size", "32",
                         "--eval-every", "4", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "only MNIST's test files" in text and "first 256 training images" in text
    png = out / "batch_norm_mnist.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "losses.csv").is_file() and (out / "heldout_accuracy.csv").is_file()
    rows = dict(re.findall(r"^\s+(eval mode|train mode)\s+.*?\s(\d\.\d{4})$", text, re.MULTILINE))
    assert set(rows) == {"eval mode", "train mode"}, text
    assert all(0.0 <= float(acc) <= 1.0 for acc in rows.values())
    assert re.search(r"final held-out accuracy\s+\d\.\d{4}\s+\d\.\d{4}", text)


@pytest.mark.parametrize("args", [
    ["--epochs", "0"],
    ["--epochs", "many"],
    ["--lr", "-1"],
    ["--optimizer", "rmsprop"],
    ["--data-dir", "{tmp}/no-such-folder", "--no-download"],
], ids=["zero-epochs", "not-a-number", "negative-lr", "unknown-optimizer", "missing-data"])
def test_batch_norm_mnist_bad_argument_is_one_line(args, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run_example("batch_norm_mnist.py", *args, "--out", str(tmp_path / "run"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_batch_norm_mnist_help_shows_defaults():
    result = run_example("batch_norm_mnist.py", "--help")
    assert result.returncode == 0
    for default in ("(default: 10)", "(default: 64)", "(default: 0.01)", "(default: 0)"):
        assert default in result.stdout
