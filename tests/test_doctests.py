"""The examples in the package's docstrings run and print what they show (every module of
``robust_rl`` and ``robust_rl.envs``; a module whose optional dependency is missing is skipped)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import robust_rl
import robust_rl.envs
import robust_rl.risk


def _modules(package) -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


MODULES = sorted({*_modules(robust_rl), *_modules(robust_rl.envs)})
CORE = [m for m in MODULES if m.startswith("robust_rl.risk.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra (ray, optuna, mujoco) not installed
        pytest.skip(f"{name}: {exc}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_the_core_has_examples() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in CORE for t in finder.find(importlib.import_module(name))
    )
    assert examples >= 5
