"""The course's notebooks (examples/notebooks/): assignments, and their completed versions.

Each notebook is an assignment: TODO cells that load the learner's exercise folder, check cells
that grade it, questions. ``examples/notebooks/complete.py`` makes the completed notebook from
the assignment and ``examples/notebooks/solutions/<name>.md``; the suite checks that every TODO
cell and every question has its solution, then executes the completed notebooks top to bottom.

Each notebook has one cell tagged ``parameters`` holding its settings; the test keeps that cell
and adds one after it with smaller numbers (a few hundred images, a few steps), then executes
the whole notebook in a fresh Jupyter kernel (nbclient), in a temporary folder, on the real MNIST
test files beside the repository when they are there and on synthetic digits when they are not
(the notebooks fall back by themselves, as they would offline). The repository keeps the
notebooks without outputs, and a test checks that too.
"""

from __future__ import annotations

import importlib.util
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


def load_complete():
    """examples/notebooks/complete.py, imported from its file (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("notebook_complete", NOTEBOOKS / "complete.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


complete = load_complete()


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


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_todo_cell_and_question_has_its_solution(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    solutions = complete.read_solutions(complete.solution_file(NOTEBOOKS / name))
    assert complete.problems(nb, solutions) == []
    # A TODO cell loads the learner's exercise folder; its solution uses minigan's own code.
    for cell in complete.marked_cells(nb, "todo"):
        assert "WHOSE = KERNELS" in cell.source and "load_kernels(WHOSE)" in cell.source
        assert "WHOSE = None" in solutions["todo", cell.metadata["solution"]]
    # Each TODO is followed, before the next TODO, by a check cell that grades it.
    marks = [t for c in nb.cells for t in c.metadata.get("tags", []) if t in ("todo", "check")]
    assert marks and marks[0] == "todo" and marks[-1] == "check"
    assert "todo todo" not in " ".join(marks), marks


def test_completing_replaces_todo_cells_and_answers_questions():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("mine = load_kernels(KERNELS)",
                                  metadata={"tags": ["todo"], "solution": "a"}),
        nbformat.v4.new_code_cell("check(mine)", metadata={"tags": ["check"]}),
        nbformat.v4.new_markdown_cell("Why?", metadata={"tags": ["question"], "solution": "b"}),
        nbformat.v4.new_markdown_cell("The end."),
    ])
    solutions = {("todo", "a"): "mine = minigan_kernels()", ("answer", "b"): "Because."}
    done = complete.complete(nb, solutions)
    assert [c.source for c in done.cells] == [
        "mine = minigan_kernels()", "check(mine)", "Why?", "**Answer.** Because.", "The end."]
    assert nb.cells[0].source == "mine = load_kernels(KERNELS)"   # the assignment is untouched


def test_a_missing_or_stray_solution_is_named():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["todo"], "solution": "a"}),
        nbformat.v4.new_code_cell("check()", metadata={"tags": ["check"]}),
        nbformat.v4.new_markdown_cell("Why?", metadata={"tags": ["question"], "solution": "b"}),
    ])
    found = complete.problems(nb, {("answer", "b"): "Because.", ("todo", "c"): "y = 2"})
    assert found == ["the todo cell 'a' has no '## todo: a' solution",
                     "the solution '## todo: c' has no todo cell"]
    with pytest.raises(ValueError, match="'a' has no"):
        complete.complete(nb, {("answer", "b"): "Because."})


def test_solutions_file_is_read_by_section(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("# Title\n\nintro\n\n## todo: first\n\n```python\nmine = 1\n```\n\n"
                    "## answer: why\n\nBecause $a^2$.\n")
    assert complete.read_solutions(path) == {("todo", "first"): "mine = 1",
                                             ("answer", "why"): "Because $a^2$."}
    path.write_text("## solution: first\n")
    with pytest.raises(ValueError, match="neither"):
        complete.read_solutions(path)


def with_small_settings(nb, settings: dict) -> None:
    """Add a cell after the ``parameters`` cell that sets smaller values."""
    index = next(i for i, c in enumerate(nb.cells)
                 if "parameters" in c.metadata.get("tags", []))
    lines = [f"{key} = {value!r}" for key, value in settings.items()]
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(lines)))


def execute(nb, name, tmp_path, monkeypatch) -> None:
    """Run ``nb`` with the small settings in a fresh kernel, in ``tmp_path``."""
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


def printed(cells, stream: str = "stdout") -> str:
    """What the code cells wrote to ``stream``, a cell per line. A cell's output comes in
    chunks cut wherever the kernel flushed (inside a line, on a busy machine: one
    ``print("a:", "b")`` can arrive as "a:" and " b\n"), so a cell's chunks are joined as
    they were written."""
    return "\n".join("".join(o.get("text", "") for o in c.outputs
                              if o.get("output_type") == "stream" and o.get("name") == stream)
                      for c in cells if c.cell_type == "code")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_completed_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
    nb = complete.completed_notebook(NOTEBOOKS / name)
    execute(nb, name, tmp_path, monkeypatch)
    text = printed(nb.cells)
    assert "minigan 0." in text and (" on numpy" in text or " on cupy" in text)
    everything = text + printed(nb.cells, "stderr")
    assert "Traceback" not in everything
    # The progress bars draw as text where ipywidgets is missing, without tqdm's warning.
    assert "TqdmWarning" not in everything and "IProgress" not in everything
    # The check cells grade minigan's own code, the solution: every line says "passed".
    checks = [line for line in printed(complete.marked_cells(nb, "check")).splitlines() if line]
    assert checks and all(line.endswith(": passed") for line in checks), checks
    answers = [c for c in nb.cells if "answer" in c.metadata.get("tags", [])]
    assert len(answers) == len(complete.marked_cells(nb, "question")) > 0
    pictures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert pictures == PICTURES[name]


# Where the experiment reports whose code it ran: minigan's, on untouched stubs.
MINIGANS = {"batch_norm.ipynb": "batch norm kernels: minigan's",
            "dcgan.ipynb": "your code in use: none yet",
            "evaluating_gans.ipynb": "inception_score: minigan's (yours is not written yet)"}


@pytest.mark.parametrize("name", [
    "batch_norm.ipynb",
    pytest.param("dcgan.ipynb", marks=pytest.mark.slow),
    pytest.param("evaluating_gans.ipynb", marks=pytest.mark.slow),
])
def test_assignment_runs_on_the_untouched_stubs(name, tmp_path, monkeypatch):
    """A learner who runs the assignment before writing anything sees "not started" from each
    check cell, and the experiment still runs (on minigan's code)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    execute(nb, name, tmp_path, monkeypatch)
    assert (tmp_path / "my_kernels" / "__init__.py").is_file()   # made by the notebook
    checks = [line for line in printed(complete.marked_cells(nb, "check")).splitlines() if line]
    assert checks and all(line.endswith(": not started") for line in checks), checks
    assert MINIGANS[name] in printed(nb.cells)
    assert "Traceback" not in printed(nb.cells) + printed(nb.cells, "stderr")
    pictures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert pictures == PICTURES[name]
