"""The course's notebooks (examples/notebooks/) run top to bottom, with small settings.

Each notebook has one cell tagged ``parameters`` holding its settings; the test keeps that cell
and adds one after it with smaller numbers (a few hundred images, a few steps), then executes
the whole notebook in a fresh Jupyter kernel (nbclient), in a temporary folder, on the real MNIST
test files beside the repository when they are there and on synthetic digits when they are not
(the notebooks fall back by themselves, as they would offline). The repository keeps the
notebooks without outputs, and a test checks that too.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers import REPO_ROOT, SHARED_DATA

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = REPO_ROOT / "examples" / "notebooks"
MNIST = SHARED_DATA / "mnist"
# Small settings: each notebook well under a minute on 2 cores.
SMALL = {
    "batch_norm.ipynb": dict(EPOCHS=1, LIMIT=512, BATCH_SIZE=32, DOWNLOAD=False),
    "dcgan.ipynb": dict(DATASET="mnist", DOWNLOAD=False, NUM_TRAIN=64, BATCH_SIZE=16,
                        CONV_DIM=8, Z_SIZE=16, EPOCHS=1, MAX_STEPS=3, NUM_SAMPLES=16),
    "evaluating_gans.ipynb": dict(DOWNLOAD=False, NUM_TRAIN=600, NUM_HELD=400,
                                  CLASSIFIER_EPOCHS=1, GAN_STEPS=3, CONV_DIM=8, Z_SIZE=16),
}
# Pictures each notebook must draw: batch norm's curves; the DCGAN's real images, its losses
# and its samples; the evaluated generator's samples.
PICTURES = {"batch_norm.ipynb": 1, "dcgan.ipynb": 3, "evaluating_gans.ipynb": 1}


def test_every_notebook_is_tested_and_stored_without_outputs():
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(SMALL)
    for name in found:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), \
            f"{name} is stored with outputs: clear them before committing"
        assert "use_backend(\"cupy\")" in code[0].source, f"{name}: the first cell picks CuPy"
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, name


def with_small_settings(nb, settings: dict) -> None:
    """Add a cell after the ``parameters`` cell that sets smaller values."""
    index = next(i for i, c in enumerate(nb.cells)
                 if "parameters" in c.metadata.get("tags", []))
    lines = [f"{key} = {value!r}" for key, value in settings.items()]
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(lines)))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    data_dir = MNIST if MNIST.is_dir() else tmp_path / "no-data"
    with_small_settings(nb, {**SMALL[name], "DATA_DIR": str(data_dir)})
    # The kernel is a new process: it finds minigan the way the tests do, and uses 1 thread.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.get("output_type") == "stream")
    assert "minigan 0." in text and (" on numpy" in text or " on cupy" in text)
    assert "Traceback" not in text
    pictures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert pictures == PICTURES[name]
