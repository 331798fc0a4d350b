"""The documentation site builds with ``mkdocs build --strict``: no broken link, anchor or image.

In strict mode every warning is an error, and ``mkdocs.yml`` asks MkDocs to warn about links to
missing pages, headings that do not exist, and pages left out of the navigation. So this one
build checks that every page is reachable and every cross-reference still points somewhere.
Skipped when MkDocs is not installed (it comes with the ``test`` extra).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

pytest.importorskip("mkdocs")

PAGES = sorted(p.stem for p in (REPO_ROOT / "docs").glob("*.md"))


def test_site_builds_in_strict_mode(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (site / "index.html").is_file()
    for page in PAGES:
        if page != "index":
            assert (site / page / "index.html").is_file(), f"no page built for docs/{page}.md"
    assert (site / "images" / "batch_norm_mnist.png").is_file()


def test_formulas_are_typeset_by_mathjax(tmp_path):
    """$...$ and $$...$$ in the pages reach the HTML as arithmatex elements, which the MathJax
    configuration of docs/javascripts/mathjax.js picks out, instead of as plain text."""
    pytest.importorskip("pymdownx")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    html = (site / "batch_norm" / "index.html").read_text(encoding="utf-8")
    # an inline formula and a displayed one, each delimited the way mathjax.js expects
    assert '<span class="arithmatex">\\(\\epsilon\\)</span>' in html
    assert '<div class="arithmatex">\\[' in html and "\\frac{\\partial L}{\\partial \\beta}" in html
    assert "javascripts/mathjax.js" in html and "tex-mml-chtml.js" in html
    assert "processHtmlClass" in (site / "javascripts" / "mathjax.js").read_text()
    # no formula is left as a dollar-delimited string in the text
    assert "$$" not in html and "$\\sigma" not in html
