"""Kernel folders for the exercise tests, written as a learner would write them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from minigan.exercises import init_folder


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A fresh copy of the untouched stubs, as `python -m minigan.exercises init` makes it."""
    folder = tmp_path / "my_kernels"
    init_folder(folder)
    return folder


def fill_in(path: Path, function: str, body: str) -> None:
    """Replace a stub's `raise NotImplementedError("<function>: write me")` with ``body``
    (dedented, then indented as the stub line is: a function's or a method's body), the way a
    learner fills in an exercise.
    The file must still import: a test that means to break it writes the file itself."""
    text = path.read_text(encoding="utf-8")
    raise_line = f'raise NotImplementedError("{function}: write me")'
    indent = next((line[:-len(raise_line)] for line in text.splitlines()
                   if line.endswith(raise_line) and not line.strip(" ")[:-len(raise_line)]),
                  None)
    assert indent is not None, f"{path.name} has no stub for {function}"
    text = text.replace(indent + raise_line, textwrap.indent(textwrap.dedent(body).strip(),
                                                             indent))
    compile(text, str(path), "exec")   # a SyntaxError here is a mistake in the test
    path.write_text(text, encoding="utf-8")


LEAKY_RELU_FORWARD = """
    slope = xp.where(x > 0, 1, x.dtype.type(negative_slope)).astype(x.dtype)
    return x * slope, LeakyReluCache(slope=slope)
"""
LEAKY_RELU_BACKWARD = "return dy * cache.slope"
