"""The lines that say where a result came from (:mod:`robust_rl.provenance`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import torch

from robust_rl.errors import OutputExistsError
from robust_rl.provenance import command_line, cpu_name, machine, replicate_lines, write_record


def test_command_line_quotes_what_a_shell_would_split() -> None:
    argv = ["--label", "a b", "--model", "x=/tmp/m.zip", "--glob", "*.json"]
    line = command_line("experiments/x.py", argv)
    assert shlex.split(line) == ["python", "experiments/x.py", *argv]
    assert line.startswith("python experiments/x.py --label 'a b' --model x=/tmp/m.zip")


def test_command_line_defaults_to_this_process_arguments(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["prog", "--seeds", "3"])
    assert command_line("experiments/y.py") == "python experiments/y.py --seeds 3"
    assert command_line("experiments/y.py", []) == "python experiments/y.py"


def test_machine_names_the_cores_versions_and_threads() -> None:
    text = machine(torch_threads=3)
    assert cpu_name() and cpu_name() in text
    assert f"torch {torch.__version__}" in text and text.endswith(", 3 torch thread(s)")
    assert "torch thread" not in machine()


@pytest.mark.parametrize(("wall_s", "shown"), [(42.04, "42.0 s"), (210.0, "3.5 min")])
def test_replicate_lines_show_command_machine_wall_time_and_note(wall_s, shown) -> None:
    lines = replicate_lines("experiments/z.py", ["--a", "1"], wall_s=wall_s, note="Quiet.")
    assert lines[:5] == [
        "## How to replicate",
        "",
        "```bash",
        "python experiments/z.py --a 1",
        "```",
    ]
    assert lines[-1].startswith("Machine: ") and lines[-1].endswith(f"; wall time {shown}. Quiet.")


def test_write_record_writes_atomically_prints_and_refuses_to_overwrite(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "sub" / "table.md"
    write_record(out, ["# T", "| a |"], "experiments/t.py", ["--n", "2"])
    text = out.read_text()
    assert text.startswith("# T\n| a |\n\n## How to replicate\n") and text.endswith(".\n")
    assert "python experiments/t.py --n 2" in text
    assert capsys.readouterr().out.strip() == text.strip()
    with pytest.raises(OutputExistsError):
        write_record(out, ["# U"], "experiments/t.py", [])
    assert out.read_text() == text
    write_record(out, ["# U"], "experiments/t.py", [], force=True, echo=False)
    assert out.read_text().startswith("# U\n") and capsys.readouterr().out == ""
