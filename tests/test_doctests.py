"""The examples in the docstrings of the estimator core run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import robust_rl.risk

MODULES = sorted(f"robust_rl.risk.{m.name}" for m in pkgutil.iter_modules(robust_rl.risk.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_the_core_has_examples() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name))
    )
    assert examples >= 5
