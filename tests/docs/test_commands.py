"""The shell commands in the docs still work: every option they give is one the script accepts.

The Python snippets of docs/ run in ``test_snippets.py``; shell commands cannot all be run in a
test (some train for minutes or need a GPU), but the part that rots first can be checked: each
``python examples/<script>.py ...`` command in docs/, README.md and benchmarks/README.md is
handed to that script's own argument parser (``build_parser()``), so a renamed or removed option,
a misspelt choice or a value of the wrong type fails here. Each ``python -m pytest <path>`` must
name test files that exist.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

TEXTS = sorted((REPO_ROOT / "docs").glob("*.md")) + [REPO_ROOT / "README.md",
                                                     REPO_ROOT / "benchmarks" / "README.md"]
COMMAND = re.compile(r"python (examples/\w+\.py|-m pytest)\b")


def commands(path: Path) -> list[tuple[str, list[str]]]:
    """(where, words) for each command, continuation lines joined, comments and what follows
    ``&&`` or a pipe dropped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        match = COMMAND.search(line)
        if not match or line.lstrip().startswith("#"):
            continue
        text, index = line[match.start():], number
        while text.rstrip().endswith("\\"):          # a command continued on the next line
            text = text.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
        text = re.split(r"\s#|&&|\||`", text)[0]     # comments, chains, inline-code ends
        found.append((f"{path.relative_to(REPO_ROOT)}:{number}", shlex.split(text)))
    return found


ALL = [cmd for path in TEXTS for cmd in commands(path)]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}",
                                                  REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # the scripts do their work only under __main__
    return module


def test_the_docs_show_commands_at_all():
    scripts = {words[1] for _, words in ALL if words[1].startswith("examples/")}
    assert {"examples/train_svhn.py", "examples/evaluate.py", "examples/generate.py",
            "examples/train_classifier.py", "examples/batch_norm_mnist.py",
            "examples/step_through.py"} <= scripts


@pytest.mark.parametrize("where, words", [c for c in ALL if c[1][1].startswith("examples/")],
                         ids=[w for w, c in ALL if c[1].startswith("examples/")])
def test_each_example_command_parses(where, words):
    name = Path(words[1]).stem
    args = words[2:]
    if "--help" in args:
        return   # --help is always accepted
    parser = load_script(name).build_parser()
    try:
        parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{where}: `{' '.join(words)}` is refused by {words[1]}'s own parser")


@pytest.mark.parametrize("where, words", [c for c in ALL if c[1][1] == "-m"],
                         ids=[w for w, c in ALL if c[1] == "-m"])
def test_each_pytest_command_names_files_that_exist(where, words):
    # The words after pytest's options that take a value (-m "not slow", -k name) are no paths.
    option_values = {i + 1 for i, w in enumerate(words) if w in ("-m", "-k", "-n", "-p")}
    paths = [w.split("::")[0] for i, w in enumerate(words) if i >= 3 and i not in option_values
             and not w.startswith("-")]
    missing = [p for p in paths if not (REPO_ROOT / p).exists()]
    assert not missing, f"{where}: {missing} do not exist"
