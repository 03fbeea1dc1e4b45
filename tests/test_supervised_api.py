"""Every public name of robust_rl.supervised is importable and documented."""

from __future__ import annotations

import importlib

import pytest

import robust_rl.supervised as sup

MODULES = ["attacks", "data", "io", "losses", "models", "train"]


def test_every_public_name_imports():
    for name in sup.__all__:
        obj = getattr(sup, name)
        assert obj is not None, name
    assert sorted(sup.__all__) == sorted(set(sup.__all__))


@pytest.mark.parametrize("module", MODULES)
def test_submodule_exports_are_documented(module):
    mod = importlib.import_module(f"robust_rl.supervised.{module}")
    assert mod.__doc__
    for name in mod.__all__:
        obj = getattr(mod, name)
        if callable(obj):
            assert obj.__doc__, f"{module}.{name} has no docstring"


def test_cli_registers_classify():
    from robust_rl.cli import COMMANDS, build_parser

    assert COMMANDS["classify"] == "classify"
    args = build_parser().parse_args(["classify", "--method", "entropic", "--out", "x"])
    assert args.handler.__module__ == "robust_rl.commands.classify"
    assert args.dataset == "digits"
