"""Tests of the course's other uses of adversarial training: examples/semi_supervised.py,
examples/adversarial.py and examples/domain_adversarial.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.helpers import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
# One BLAS thread: on a small shared machine extra threads only wait for each other.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
       "MINIGAN_BACKEND": "numpy", "PYTHONPATH": str(REPO_ROOT)}


def run_example(name: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run ``examples/<name>`` in a fresh Python process, as a shell would."""
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=REPO_ROOT,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (its work runs only under __main__)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # findable, as an imported module is (gpu_rehearsal)
    spec.loader.exec_module(module)
    return module


def tiny_digits_npz(path: Path, n: int = 300, seed: int = 0) -> Path:
    """An .npz of n grey 28x28 "digits" with labels: class k is a bright bar at row 2k+4, so
    that a classifier can learn them in a few steps. No real data needed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4:2 * k + 6, 4:24] = 255
    np.savez(path, images=images, labels=labels)
    return path


def png_ok(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def one_line_error(result: subprocess.CompletedProcess) -> bool:
    """A non-zero exit with one line on stderr that says error, and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return (result.returncode != 0 and len(lines) == 1 and "error" in lines[0]
            and "Traceback" not in result.stderr)


def error_of(module, args, capsys) -> str:
    """Call the script's ``main(args)`` in this process; assert that it failed with exactly one
    line on stderr saying error (no traceback), and return that line."""
    try:
        code = module.main([str(a) for a in args])
    except SystemExit as stop:   # argparse refuses a bad option this way
        code = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "error" in lines[0], err
    assert "Traceback" not in err
    return lines[0]
