"""Sphinx configuration of the robust_rl documentation.

Build with ``python -m sphinx -W --keep-going -b html docs /tmp/docs-html`` (warnings are
errors). The pages are Markdown (MyST); the API reference comes from the docstrings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# the checkout this file belongs to, whether or not the package is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import robust_rl

project = "robust_rl"
author = "robust_rl developers"
copyright = "robust_rl developers"
release = robust_rl.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"robust_rl {release}"

# --------------------------------------------------------------------------------------------
# Markdown in docstrings. The environment classes document themselves as Gymnasium's do, in
# Markdown (``## Description`` sections, pipe tables, fenced examples), while autodoc parses
# docstrings as reST. This hook turns those three constructs into their reST equivalents for a
# docstring that uses them; reST docstrings pass through unchanged.

_HEADING = re.compile(r"^(\s*)#{1,6}\s+(.*\S)\s*$")
_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_SINGLE_TICKS = re.compile(r"(?<![`:\w])`([^`\n]+)`(?![`_])")


def _is_markdown(lines: list[str]) -> bool:
    return any(_HEADING.match(line) or _FENCE.match(line) for line in lines)


def _cells(line: str) -> list[str]:
    return [_SINGLE_TICKS.sub(r"``\1``", c.strip()) for c in line.strip().strip("|").split("|")]


def markdown_to_rest(lines: list[str]) -> list[str]:
    """Headings to rubrics, fenced code to ``code-block``, pipe tables to ``list-table``."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        heading = _HEADING.match(line)
        if fence:
            indent, lang = fence.groups()
            out += [f"{indent}.. code-block:: {lang or 'text'}", ""]
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                out.append(f"{indent}   {lines[i][len(indent) :]}" if lines[i].strip() else "")
                i += 1
            out.append("")
            i += 1  # the closing fence
            continue
        if heading:
            indent, title = heading.groups()
            out += [f"{indent}.. rubric:: {title}", ""]
            i += 1
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            indent = line[: len(line) - len(line.lstrip())]
            rows = [_cells(line)]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out += [f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
            for row in rows:
                out.append(f"{indent}   * - {row[0]}")
                out += [f"{indent}     - {cell}" for cell in row[1:]]
            out.append("")
            continue
        out.append(_SINGLE_TICKS.sub(r"``\1``", line))
        i += 1
    return out


def _markdown_docstrings(app, what, name, obj, options, lines: list[str]) -> None:
    if _is_markdown(lines):
        lines[:] = markdown_to_rest(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _markdown_docstrings)
