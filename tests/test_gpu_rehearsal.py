"""The GPU rehearsal (``tests/gpu_rehearsal.py``) fails a test that hands a NumPy array to a
model on the device, as a run with ``MINIGAN_BACKEND=cupy`` on a GPU would, and passes one that
moves its arrays with ``to_device`` and reads them back with ``to_numpy``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.helpers import REPO_ROOT

EXAMPLE = textwrap.dedent('''
    import numpy as np

    from minigan import nn
    from minigan.backend import backend_name, to_device, to_numpy


    def test_says_cupy():
        assert backend_name() == "cupy"


    def test_moves_its_arrays():
        layer = nn.Linear(3, 2)
        y = layer(to_device(np.ones((4, 3), dtype=np.float32)))
        assert to_numpy(y).shape == (4, 2)


    def test_hands_the_device_a_numpy_array():
        nn.Linear(3, 2)(np.ones((4, 3), dtype=np.float32))


    def test_reads_a_device_array_as_numpy():
        np.asarray(nn.Linear(3, 2).weight.data)
''')


def test_the_rehearsal_fails_what_a_gpu_would_fail(tmp_path):
    (tmp_path / "test_example.py").write_text(EXAMPLE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("MINIGAN_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.gpu_rehearsal",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_example.py")],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env)
    out = result.stdout + result.stderr
    assert "2 failed, 2 passed" in out, out
    assert "FAILED" in out and "test_hands_the_device_a_numpy_array" in out
    assert "HostArrayMixed" in out and "Implicit conversion" in out
