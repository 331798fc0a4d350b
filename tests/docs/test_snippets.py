"""The documentation cannot rot: every ```python block in docs/ is run by the test suite.

A page's blocks run in order, in one shared namespace (a later block may use names an earlier
one defined), inside a temporary working directory. Each block is its own test, named after its
place in the docs (``conv2d.md:57``), and a traceback points at the line of the Markdown file,
so a failing snippet is found at once. Asking for one snippet alone (``-k conv2d.md:90``) first
replays the blocks above it on the same page.

Beside the snippets, cheaper checks keep the prose honest:

* every code fence names its language (``python`` runs; ``bash`` and ``text`` are only shown),
  so nothing runnable hides in an unlabelled block;
* every repository path the docs mention (``minigan/ops/conv2d.py``) exists, and every dotted
  name (``minigan.gradcheck.check_module``) can be imported;
* every excerpt quoted from a source file (a ```text block whose first line is
  ``# from <path>``) still appears in that file, line for line;
* every relative link and image between the pages points at a file that exists.
"""

from __future__ import annotations

import importlib
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pytest

import minigan.backend as backend
from tests.helpers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
LANGUAGES = {"python", "bash", "text"}
FENCE = re.compile(r"^```(.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, the line of its first code line, language, source."""

    page: Path
    line: int
    language: str
    source: str

    @property
    def name(self) -> str:
        return f"{self.page.name}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page (fences start at column 0 and do not nest)."""
    blocks, language, start, body = [], None, 0, []
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(text)
        if language is None:
            if match:
                language, start, body = match.group(1).strip(), number + 1, []
        elif text.strip() == "```":
            blocks.append(Block(page, start, language, "\n".join(body) + "\n"))
            language = None
        else:
            body.append(text)
    if language is not None:
        raise AssertionError(f"{page.name}:{start - 1}: code fence is never closed")
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [b for b in read_blocks(page) if b.language == "python"]


SNIPPETS = [block for page in PAGES for block in python_blocks(page)]


# ------------------------------------------------------------------------------ running snippets

@dataclass
class PageRun:
    """The state of one page's snippets: run so far, shared namespace, working directory."""

    workdir: Path
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    done: int = 0                         # how many of the page's blocks have run
    failed: str | None = None             # the first block that failed, if any
    # The pages use NumPy arrays, so their snippets run on the NumPy backend whatever
    # MINIGAN_BACKEND says (a snippet may switch, and later blocks of its page follow).
    backend_state: tuple[str, Any] = ("numpy", numpy.dtype(backend.DEFAULT_DTYPE))


_runs: dict[Path, PageRun] = {}


def _execute(block: Block, run: PageRun) -> None:
    # Pad with blank lines so that line numbers in a traceback are the Markdown file's.
    code = compile("\n" * (block.line - 1) + block.source, str(block.page), "exec")
    backend._active, backend._default_dtype = run.backend_state
    try:
        exec(code, run.namespace)
    finally:
        run.backend_state = (backend.backend_name(), backend.default_dtype())


@pytest.mark.skipif(not SNIPPETS, reason="no python snippets in docs/")
@pytest.mark.parametrize("block", SNIPPETS, ids=[b.name for b in SNIPPETS])
def test_snippet_runs(block: Block, tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    page_blocks = python_blocks(block.page)
    index = page_blocks.index(block)
    run = _runs.get(block.page)
    if run is None or run.done > index:  # first visit, or asked to run an earlier block again
        run = _runs[block.page] = PageRun(tmp_path_factory.mktemp(block.page.stem))
    monkeypatch.chdir(run.workdir)

    for earlier in page_blocks[run.done:index]:  # replay what this block builds on
        if run.failed:
            break
        try:
            _execute(earlier, run)
            run.done += 1
        except Exception:
            run.failed = earlier.name
            traceback.print_exc()
    if run.failed:
        pytest.skip(f"an earlier snippet on this page failed: {run.failed}")

    try:
        _execute(block, run)
    except Exception:
        run.failed = block.name
        raise
    run.done = index + 1


# ------------------------------------------------------------------------------ honest prose

def test_docs_exist() -> None:
    names = {p.name for p in PAGES}
    for page in ("index.md", "architecture.md", "conv2d.md", "conv_transpose2d.md",
                 "batch_norm.md", "activations_and_losses.md", "adam.md",
                 "gradient_checking.md", "dcgan.md"):
        assert page in names, f"docs/{page} is missing"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_fence_names_its_language(page: Path) -> None:
    for block in read_blocks(page):
        assert block.language in LANGUAGES, (
            f"{block.name}: a code fence should say ```python (runs in the tests), ```bash or "
            f"```text (only shown), not {block.language!r}")


# A repository path: starts with one of the top-level folders, not preceded by a path
# character (so "../minigan" or "runs/minigan" are not taken for one).
REPO_PATH = re.compile(r"(?<![\w./-])((?:minigan|examples|tests|benchmarks|docs)/[\w./-]*\w)")
DOTTED = re.compile(r"`(minigan(?:\.\w+)+)")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_named_files_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted({m for m in REPO_PATH.findall(text) if not (REPO_ROOT / m).exists()})
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_named_objects_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for dotted in sorted(set(DOTTED.findall(text))):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError):
            broken.append(dotted)
    assert not broken, f"{page.name} names objects that do not exist: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_quoted_source_is_current(page: Path) -> None:
    """A ```text block opening with ``# from <path>`` quotes that file: every line must be
    there (``...`` stands for lines left out)."""
    for block in read_blocks(page):
        lines = block.source.splitlines()
        if block.language != "text" or not lines or not lines[0].startswith("# from "):
            continue
        path = REPO_ROOT / lines[0].removeprefix("# from ").split()[0]
        assert path.is_file(), f"{block.name}: quotes {path.name}, which does not exist"
        source_lines = {s.strip() for s in path.read_text(encoding="utf-8").splitlines()}
        stale = [q for q in lines[1:] if q.strip() not in ("", "...")
                 and q.strip() not in source_lines]
        assert not stale, (f"{block.name}: these quoted lines are no longer in "
                           f"{path.relative_to(REPO_ROOT)}: {stale}")


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    """Links between pages and to images resolve from the page itself, as on a code host."""
    text = page.read_text(encoding="utf-8")
    # Code blocks may contain brackets that are not links.
    for block in read_blocks(page):
        text = text.replace(block.source, "")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists() or DOCS.resolve() not in path.parents:
            broken.append(target)
    assert not broken, f"{page.name}: links that do not resolve inside docs/: {broken}"
