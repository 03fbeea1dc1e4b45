"""``robust-rl report``: tables and figures from recorded results, without running anything.

``robust-rl report FILE... [--out DIR] [--name NAME]`` reads results files (what
``robust-rl evaluate --out`` writes as ``suite.json``/``grid.json``/``attack.json``, or a sweep
trial's ``result.json``, whose evaluation is stored in compact form), merges them, prints the
Markdown tables and, with ``--out``, writes ``NAME.json``/``.csv``/``.md`` and the figures
(:func:`robust_rl.evaluation.save_results`). The files are parsed as JSON; nothing in them is run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from robust_rl._files import FolderLock, check_output_folder, refuse_existing
from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.evaluation import EvaluationResults, save_results

__all__ = ["add_parser", "read_results", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="tables and figures from results files (evaluate's JSON, a trial's result.json)",
        description="Read results files (the JSON that robust-rl evaluate --out writes, or a "
        "sweep trial's result.json), merge them, print Markdown tables and, with --out, write "
        "JSON/CSV/Markdown and PNG figures. Nothing is trained or evaluated.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="results JSON files to merge")
    p.add_argument("--out", default=None, help="folder for NAME.json/.csv/.md/.png")
    p.add_argument("--name", default="report", help="file stem of the outputs (default report)")
    p.add_argument("--force", action="store_true", help="overwrite existing result files")
    p.set_defaults(handler=run)


def read_results(path: str | Path) -> EvaluationResults:
    """The results in a JSON file: an :class:`EvaluationResults` dict (either form) or a trial
    record whose ``"evaluation"`` holds one.

    :raises MissingFileError: no such file.
    :raises InvalidArgumentError: not JSON, or no results in it (e.g. a pruned trial).
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"FILE: {p} does not exist")
    try:
        data: Any = json.loads(p.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgumentError(f"FILE: {p} is not JSON ({exc})") from None
    if isinstance(data, dict) and "trial" in data and "rows" not in data:
        if data.get("evaluation") is None:
            raise InvalidArgumentError(
                f"FILE: {p} is a trial record without an evaluation (status {data.get('status')!r})"
            )
        data = data["evaluation"]
    if not isinstance(data, dict) or "rows" not in data:
        raise InvalidArgumentError(
            f"FILE: {p} holds no results (expected evaluate's JSON or a trial's result.json)"
        )
    try:
        return EvaluationResults.from_dict(data)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"FILE: {p}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    results = [read_results(f) for f in args.files]  # every file checked before any output
    merged = results[0].merge(*results[1:], name=args.name)
    if args.out is None:
        print(merged.to_markdown())
        return 0
    out = Path(args.out)
    check_output_folder("--out", out)
    refuse_existing((out / f"{args.name}.{ext}" for ext in ("json", "csv", "md")), args.force)
    with FolderLock(out, "robust-rl report"):
        paths = save_results(merged, out, force=args.force)
    print(merged.to_markdown())
    for path in paths:
        print(f"wrote {path}")
    return 0
