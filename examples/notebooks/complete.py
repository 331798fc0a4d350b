"""Make the completed notebooks from the assignments and their solutions (never kept by hand).

    python examples/notebooks/complete.py                      # all three, into runs/completed
    python examples/notebooks/complete.py batch_norm.ipynb --out my_solutions/

Each notebook in this folder is an assignment. Its cells are marked in their metadata:

* a **TODO** cell (tag ``todo``) is where the learner's work comes in: it loads the learner's
  exercise folder;
* a **check** cell (tag ``check``) grades that work with the exercises' grader and prints one
  line per exercise;
* a **question** cell (tag ``question``), a Markdown cell that asks the learner something.

TODO and question cells name their solution in ``metadata["solution"]``. The solutions are in
``solutions/<notebook name>.md``, one section per solution::

    ## todo: <name>            followed by one ```python block: the code that replaces the cell
    ## answer: <name>          followed by Markdown: the answer, added after the question

The completed notebook is the assignment with every TODO cell's code replaced by its solution
(minigan's own code, which passes the grader) and every question followed by its answer. The
test suite executes the completed notebooks; ``problems`` lists what does not match (a TODO
cell without a solution, a solution without its cell), and the suite checks it finds nothing.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE / "solutions"
KINDS = {"todo": "code", "answer": "markdown"}   # a solution's kind -> the cell it fills


def tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def marked_cells(nb: Any, tag: str) -> list[Any]:
    """The cells with ``tag`` (todo, check, question), in order."""
    return [c for c in nb.cells if tag in tags(c)]


def read_solutions(path: Path) -> dict[tuple[str, str], str]:
    """{(kind, name): text} from a solutions file; kind is "todo" (code) or "answer" (Markdown).

    Raises ValueError naming the line of a section it cannot read.
    """
    text = path.read_text(encoding="utf-8")
    found: dict[tuple[str, str], str] = {}
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    for section in sections:
        header, _, body = section.partition("\n")
        match = re.fullmatch(r"(todo|answer): *([\w-]+) *", header)
        if match is None:
            raise ValueError(f"{path.name}: section '## {header}' is neither "
                             f"'## todo: NAME' nor '## answer: NAME'")
        kind, name = match.groups()
        if (kind, name) in found:
            raise ValueError(f"{path.name}: two sections '## {kind}: {name}'")
        if kind == "todo":
            code = re.search(r"^```python\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL)
            if code is None:
                raise ValueError(f"{path.name}: '## todo: {name}' has no ```python block")
            found[kind, name] = code.group(1).rstrip("\n")
        else:
            found[kind, name] = body.strip()
    return found


def solution_file(notebook: Path) -> Path:
    return SOLUTIONS / f"{notebook.stem}.md"


def problems(nb: Any, solutions: dict[tuple[str, str], str]) -> list[str]:
    """What does not match between a notebook's marked cells and its solutions ([] if all)."""
    wanted: list[tuple[str, str]] = []
    found = []
    for tag, kind in (("todo", "todo"), ("question", "answer")):
        for cell in marked_cells(nb, tag):
            name = cell.metadata.get("solution")
            if not name:
                found.append(f"a {tag} cell has no metadata 'solution': {cell.source[:60]!r}")
                continue
            if cell.cell_type != KINDS[kind]:
                found.append(f"the {tag} cell '{name}' is a {cell.cell_type} cell, not "
                             f"{KINDS[kind]}")
            wanted.append((kind, name))
            if (kind, name) not in solutions:
                found.append(f"the {tag} cell '{name}' has no '## {kind}: {name}' solution")
    found += [f"the solution '## {kind}: {name}' has no {kind} cell"
              for kind, name in solutions if (kind, name) not in wanted]
    if not marked_cells(nb, "todo"):
        found.append("no TODO cell")
    if not marked_cells(nb, "check"):
        found.append("no check cell")
    if not marked_cells(nb, "question"):
        found.append("no question cell")
    return found


def complete(nb: Any, solutions: dict[tuple[str, str], str]) -> Any:
    """A copy of the assignment ``nb`` with its TODO cells solved and its questions answered."""
    import nbformat

    trouble = problems(nb, solutions)
    if trouble:
        raise ValueError("; ".join(trouble))
    done = copy.deepcopy(nb)
    cells = []
    for cell in done.cells:
        if "todo" in tags(cell):
            cell.source = solutions["todo", cell.metadata["solution"]]
            cell.metadata["tags"] = [t for t in tags(cell) if t != "todo"] + ["solution"]
        cells.append(cell)
        if "question" in tags(cell):
            answer = solutions["answer", cell.metadata["solution"]]
            cells.append(nbformat.v4.new_markdown_cell(f"**Answer.** {answer}",
                                                       metadata={"tags": ["answer"]}))
    done.cells = cells
    return done


def completed_notebook(notebook: Path) -> Any:
    """Read the assignment ``notebook`` and its solutions; return the completed notebook."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return complete(nb, read_solutions(solution_file(notebook)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="assignment notebooks (default: every one in this folder)")
    parser.add_argument("--out", default="runs/completed_notebooks",
                        help="folder for the completed notebooks")
    args = parser.parse_args(argv)
    try:
        import nbformat

        paths = [Path(p) for p in args.notebooks] or sorted(HERE.glob("*.ipynb"))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for path in paths:
            done = completed_notebook(path)
            target = out / path.name
            part = target.with_name(target.name + ".part")
            nbformat.write(done, part)
            part.replace(target)   # never half a notebook
            print(f"{path.name} -> {target}")
    except (OSError, ValueError, ImportError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
