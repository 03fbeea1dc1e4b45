"""Bring results folders written by older versions to today's compact records.

Trials used to write their evaluation three times (in ``result.json``, as
``eval/evaluation.json`` and as ``eval/evaluation.csv``) plus a Markdown table and figures per
trial; a trial now records it once, in compact form, in ``result.json`` (see
:mod:`robust_rl.sweep.trials`). Under each FOLDER this script

* rewrites every ``result.json`` whose evaluation is not compact (returns kept to 9
  significant digits, :meth:`~robust_rl.evaluation.EvaluationResults.to_dict`);
* removes a trial's ``eval/`` files only when ``eval/evaluation.json`` holds the same rows as the
  trial's record (else it keeps them and says so), and the folder when it is then empty;
* in a trial's ``eval/`` of the oldest format (``suite.csv``/``grid.csv``, no
  ``evaluation.json``: the record holds only means), removes the Markdown and figures, which
  the CSVs give again, and keeps the CSVs;
* rewrites every other results JSON (``{"rows": ...}``, e.g. ``evaluation_over_seeds.json``)
  in the compact form of ``save_results(..., compact=True)`` and removes the CSV beside it
  (same stem) when it lists the same rows with the same means, as that function no longer
  writes it;
* re-encodes every other PNG with the 256-colour palette of :func:`robust_rl.io.palette_png`.

Every file is replaced atomically and read back before the next; running it again changes
nothing. Nothing in the files is run (JSON only).

    python experiments/compact_records.py experiments/results
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robust_rl.errors import InvalidArgumentError, UserError
from robust_rl.evaluation import EvaluationResults
from robust_rl.io import atomic_write_bytes, atomic_write_text, json_text, palette_png

#: per-trial report files of older versions, under ``<trial>/eval/``
EVAL_FILES = (
    "evaluation.json",
    "evaluation.csv",
    "evaluation.md",
    "evaluation.png",
    "evaluation_grid.png",
    "evaluation_attack.png",
)


@dataclass
class Tally:
    """What a run changed."""

    records: int = 0
    eval_folders: int = 0
    results: int = 0
    figures: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    kept: list[str] = field(default_factory=list)


def same_rows(a: EvaluationResults, b: EvaluationResults) -> bool:
    """Whether two results hold the same rows, returns equal to 9 significant digits."""
    if [r.key for r in a.rows] != [r.key for r in b.rows]:
        return False
    for x, y in zip(a.rows, b.rows, strict=True):
        if dict(x.params) != dict(y.params) or (x.seed, x.n_episodes) != (y.seed, y.n_episodes):
            return False
        if len(x.returns) != len(y.returns) or not all(
            math.isclose(u, v, rel_tol=1e-8, abs_tol=1e-9)
            for u, v in zip(x.returns, y.returns, strict=True)
        ):
            return False
    return True


def csv_lists(path: Path, results: EvaluationResults) -> bool:
    """Whether a CSV written by ``save_results`` lists ``results``' rows with their means."""
    with path.open(newline="") as f:
        lines = list(csv.DictReader(f))
    if len(lines) != len(results.rows):
        return False
    return all(
        (line.get("model"), line.get("mdp"), line.get("kind")) == (r.model, r.mdp, r.kind)
        and math.isclose(float(line.get("mean") or "nan"), r.mean, rel_tol=1e-6, abs_tol=1e-6)
        for line, r in zip(lines, results.rows, strict=True)
    )


def _replace_text(path: Path, text: str, tally: Tally) -> None:
    tally.bytes_before += path.stat().st_size
    atomic_write_text(path, text, force=True)
    tally.bytes_after += path.stat().st_size


def compact_record(path: Path, tally: Tally) -> EvaluationResults | None:
    """Rewrite one trial record compactly; its evaluation (None if it has none)."""
    data: dict[str, Any] = json.loads(path.read_text())
    evaluation = data.get("evaluation")
    if evaluation is None:
        text = json_text(data)
        if text != path.read_text():
            _replace_text(path, text, tally)
        return None
    results = EvaluationResults.from_dict(evaluation)
    data["evaluation"] = results.to_dict(compact=True)
    text = json_text(data)
    if text != path.read_text():
        _replace_text(path, text, tally)
        back = EvaluationResults.from_dict(json.loads(path.read_text())["evaluation"])
        if not same_rows(back, results):  # atomic_write_text left a whole file: check it
            raise RuntimeError(f"{path}: the rewritten record does not read back the same")
        tally.records += 1
    return EvaluationResults.from_dict(data["evaluation"])


def _unlink(path: Path, tally: Tally) -> None:
    tally.bytes_before += path.stat().st_size
    path.unlink()


def drop_eval_folder(folder: Path, results: EvaluationResults | None, tally: Tally) -> None:
    """Remove ``folder`` (a trial's ``eval/``) if its JSON equals the trial's record; in the
    oldest format (no JSON, ``results`` None) only its Markdown and figures."""
    recorded = folder / "evaluation.json"
    if not recorded.is_file() or results is None:
        derived = [f for f in sorted(folder.iterdir()) if f.suffix in (".md", ".png")]
        if results is None and any(f.suffix == ".csv" for f in folder.iterdir()) and derived:
            for f in derived:
                _unlink(f, tally)
            tally.eval_folders += 1
        return
    if not same_rows(EvaluationResults.from_json(recorded.read_text()), results):
        tally.kept.append(f"{folder}: eval/evaluation.json differs from result.json (kept)")
        return
    for name in EVAL_FILES:
        if (folder / name).is_file():
            _unlink(folder / name, tally)
    if not any(folder.iterdir()):
        folder.rmdir()
    tally.eval_folders += 1


def recode_png(path: Path, tally: Tally) -> None:
    """Re-encode a PNG with a 256-colour palette (:func:`robust_rl.io.palette_png`) when that
    makes it smaller."""
    data = palette_png(path.read_bytes())
    size = path.stat().st_size
    if len(data) < size:
        tally.bytes_before += size
        atomic_write_bytes(path, data, force=True)
        tally.bytes_after += len(data)
        tally.figures += 1


def compact_results_file(path: Path, tally: Tally) -> None:
    """A saved :class:`EvaluationResults` JSON file (other JSON is left alone) in the compact
    form, checked to read back the same; its CSV twin removed if it lists the same rows."""
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return
    if not (isinstance(data, dict) and isinstance(data.get("rows"), list) and "axes" in data):
        return
    results = EvaluationResults.from_dict(data)
    text = results.to_json(compact=True)
    if text != path.read_text():
        _replace_text(path, text, tally)
        back = EvaluationResults.from_json(path.read_text())
        if not same_rows(back, results):
            raise RuntimeError(f"{path}: the rewritten results do not read back the same")
        tally.results += 1
    table = path.with_suffix(".csv")
    if table.is_file():
        if csv_lists(table, results):
            _unlink(table, tally)
        else:
            tally.kept.append(f"{table}: differs from {path.name} (kept)")


def compact_folder(root: Path, tally: Tally) -> None:
    """Everything the module docstring lists, under ``root``."""
    for record in sorted(root.rglob("result.json")):
        results = compact_record(record, tally)
        if (record.parent / "eval").is_dir():
            drop_eval_folder(record.parent / "eval", results, tally)
    for path in sorted(root.rglob("*.json")):
        if path.name != "result.json" and path.parent.name != "eval":
            compact_results_file(path, tally)
    for path in sorted(root.rglob("*.png")):
        if path.parent.name != "eval":
            recode_png(path, tally)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, metavar="FOLDER", help="results folders")
    args = p.parse_args(argv)
    try:
        for folder in args.folders:
            if not folder.is_dir():
                raise InvalidArgumentError(f"FOLDER: {folder} is not a folder")
        tally = Tally()
        for folder in args.folders:
            compact_folder(folder, tally)
    except UserError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    print(
        f"records rewritten {tally.records}, eval/ folders removed {tally.eval_folders}, "
        f"results files re-laid {tally.results}, figures re-encoded {tally.figures}; "
        f"{tally.bytes_before / 1e6:.1f} MB -> {tally.bytes_after / 1e6:.1f} MB"
    )
    for line in tally.kept:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
