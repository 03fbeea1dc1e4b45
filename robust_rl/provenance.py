"""Where a result came from: the command that made it and the machine it ran on.

The experiments write these lines beside their tables, so that a reader can run the same
command and compare the machine::

    >>> command_line("experiments/bench_throughput.py", ["--steps", "2000", "--label", "a b"])
    "python experiments/bench_throughput.py --steps 2000 --label 'a b'"

* :func:`command_line`: ``python <script> <arguments>``, quoted for a POSIX shell;
* :func:`machine`: operating system, CPU, core count, Python and torch versions;
* :func:`replicate_lines`: a Markdown "How to replicate" block of both and the wall time;
* :func:`write_record`: Markdown lines, then the command and the machine, written atomically
  (:mod:`robust_rl.io`) and printed.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from robust_rl.io import atomic_write_text

__all__ = ["command_line", "cpu_name", "machine", "replicate_lines", "wall_time", "write_record"]


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """``python <script> <arguments>``, each word quoted for a POSIX shell where it needs it.

    :param script: the script's path as a reader types it (``experiments/<name>.py``).
    :param argv: its arguments (default: this process's, ``sys.argv[1:]``).
    """
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(*, torch_threads: int | None = None) -> str:
    """``<platform>, <CPU>, <n> CPU cores, Python <v>, torch <v>`` and, if given, the number
    of torch threads the run used."""
    import torch

    text = (
        f"{platform.platform()}, {cpu_name()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )
    return text if torch_threads is None else f"{text}, {torch_threads} torch thread(s)"


def wall_time(seconds: float) -> str:
    """``"42.0 s"`` below two minutes, ``"3.5 min"`` above."""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def replicate_lines(
    script: str,
    argv: Sequence[str] | None = None,
    *,
    wall_s: float | None = None,
    torch_threads: int | None = None,
    note: str = "",
) -> list[str]:
    """A Markdown ``## How to replicate`` block: the command in a ``bash`` fence, then the
    machine (:func:`machine`), the wall time when given, and ``note``."""
    tail = "" if wall_s is None else f"; wall time {wall_time(wall_s)}"
    return [
        "## How to replicate",
        "",
        "```bash",
        command_line(script, argv),
        "```",
        "",
        f"Machine: {machine(torch_threads=torch_threads)}{tail}.{' ' + note if note else ''}",
    ]


def write_record(
    path: str | os.PathLike[str],
    lines: Sequence[str],
    script: str,
    argv: Sequence[str] | None = None,
    *,
    wall_s: float | None = None,
    torch_threads: int | None = None,
    force: bool = False,
    echo: bool = True,
) -> Path:
    """Write ``lines`` and then :func:`replicate_lines` to ``path`` atomically (an existing file
    only with ``force``; missing folders are made) and print the text when ``echo``."""
    text = "\n".join(
        [*lines, "", *replicate_lines(script, argv, wall_s=wall_s, torch_threads=torch_threads)]
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = atomic_write_text(target, text + "\n", force=force)
    if echo:
        print(text)
    return written
