"""The kernels must not import NumPy: that is what lets the same code run on CuPy.

Every kernel in ``minigan/ops`` gets its array module from its inputs
(``xp = get_array_module(x)``), so a stray ``np.something`` would quietly pull a GPU array back
to the CPU, or fail on it. This test reads each file's syntax tree (so strings and comments
that merely mention numpy do not count) and names every file that imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OPS_DIR = Path(__file__).resolve().parents[2] / "minigan" / "ops"


def numpy_imports(source: str) -> list[int]:
    """Line numbers of ``import numpy[.x] [as y]`` and ``from numpy[.x] import ...``."""

    def is_numpy(name: str | None) -> bool:
        return name is not None and (name == "numpy" or name.startswith("numpy."))

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(is_numpy(a.name) for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and is_numpy(node.module):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("source", [
    "import numpy",
    "import numpy as np",
    "import os, numpy.linalg",
    "from numpy import zeros",
    "from numpy.lib import stride_tricks",
    "def f():\n    import numpy as np\n    return np",
])
def test_the_checker_catches_every_form(source):
    assert numpy_imports(source)


@pytest.mark.parametrize("source", [
    "import numpyro",
    "from minigan.backend import get_array_module",
    "# import numpy\nx = 'import numpy'",
])
def test_the_checker_ignores_lookalikes(source):
    assert numpy_imports(source) == []


def test_no_kernel_imports_numpy():
    files = sorted(OPS_DIR.rglob("*.py"))
    assert files, f"no Python files found in {OPS_DIR}"
    offenders = [f"{path.relative_to(OPS_DIR.parents[1])}:{line}"
                 for path in files for line in numpy_imports(path.read_text(encoding="utf-8"))]
    assert not offenders, ("minigan/ops must not import numpy (use xp = get_array_module(x)); "
                           f"found in: {', '.join(offenders)}")
