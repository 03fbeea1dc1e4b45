"""Atomic writes, the console script and the public API."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import robust_rl
from robust_rl._io import atomic_write_bytes, atomic_write_text, reserve_path
from robust_rl.cli import main


def test_atomic_write_refuses_to_overwrite(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    assert target.read_text() == "one"
    with pytest.raises(FileExistsError, match=r"a\.txt already exists; pass force=True"):
        atomic_write_text(target, "two")
    assert target.read_text() == "one"
    atomic_write_bytes(target, b"three", force=True)
    assert target.read_bytes() == b"three"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]  # no temp files left


def test_reserve_path(tmp_path):
    p = tmp_path / "run.zip"
    assert reserve_path(p) == p
    p.write_text("x")
    assert reserve_path(p) == tmp_path / "run_1.zip"


def test_cli_help_and_version(capsys):
    assert main([]) == 0
    assert "robust-rl" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert robust_rl.__version__ in capsys.readouterr().out


def test_console_script_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "robust_rl.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage: robust-rl" in out.stdout


@pytest.mark.parametrize(
    "module",
    [
        "robust_rl",
        "robust_rl.risk",
        "robust_rl.envs",
        "robust_rl.evaluation",
        "robust_rl.dqn",
        "robust_rl.training",
        "robust_rl.sweep",
        "robust_rl.supervised",
        "robust_rl._io",
    ],
)
def test_every_public_name_imports(module):
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_estimator_core_imports_torch_only():
    """House rule: robust_rl.risk depends on torch (and numpy), never on gymnasium or SB3."""
    import ast
    from pathlib import Path

    import robust_rl.risk

    allowed = {
        "torch",
        "numpy",
        "robust_rl",
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "typing",
    }
    for path in Path(robust_rl.risk.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
                if (
                    node.module
                    and node.module.startswith("robust_rl")
                    and not node.module.startswith("robust_rl.risk")
                ):
                    roots.add("robust_rl-outside-core")
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
