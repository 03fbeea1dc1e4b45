"""The supervised package re-exports its submodules' public names; the CLI has ``classify``.

(That every public module's ``__all__`` resolves and is documented is checked for the whole
library in test_io_cli.py.)"""

from __future__ import annotations

import importlib

import robust_rl.supervised as sup

MODULES = ["attacks", "data", "io", "losses", "models", "train"]


def test_package_names_are_the_submodules_objects():
    owners = {}
    for module in MODULES:
        mod = importlib.import_module(f"robust_rl.supervised.{module}")
        owners.update({name: getattr(mod, name) for name in mod.__all__})
    stale = sorted(set(sup.__all__) - set(owners))
    assert not stale, f"robust_rl.supervised exports names no submodule defines: {stale}"
    for name in sup.__all__:
        assert getattr(sup, name) is owners[name], name


def test_cli_registers_classify():
    from robust_rl.cli import COMMANDS, build_parser

    assert COMMANDS["classify"] == "classify"
    args = build_parser().parse_args(["classify", "--method", "entropic", "--out", "x"])
    assert args.handler.__module__ == "robust_rl.commands.classify"
    assert args.dataset == "digits"
