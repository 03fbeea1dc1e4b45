"""Re-evaluate finished trials with the current code: does a change alter their evaluation?

For each trial folder (a sweep's or a reproduction's ``runs/<trial>/`` with ``model.zip`` and
``result.json``), the saved model (``best_model.zip`` for a trial run with ``select: best``, the
policy it was evaluated with) is evaluated again exactly as the trial was (its own evaluation
spec, read from ``result.json``: suites, grid, attacks, seeds), and every row is compared with
the stored one. Writes a Markdown table of the rows that differ (episodes that changed, mean
before and after) and a line per trial.

    python experiments/reevaluate_trial.py \\
        experiments/results/continuous_shared_noise/inverted-pendulum/runs/robust-sac-dynamics__seed2 \\
        --out /tmp/reevaluation.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation import load_model
from robust_rl.provenance import write_record
from robust_rl.sweep import parse_evaluation
from robust_rl.sweep.trials import evaluate_trial, policy_file

#: what a trial folder needs to be evaluated again
NEEDED = ("model.zip", "result.json")


def missing_files(folders: list[Path]) -> list[Path]:
    """The files of :data:`NEEDED` that ``folders`` lack."""
    return [f / name for f in folders for name in NEEDED if not (f / name).is_file()]


def reevaluate(folder: Path) -> tuple[dict, dict]:
    """The stored and the recomputed compact evaluation of one trial folder."""
    missing = missing_files([folder])
    if missing:
        raise InvalidArgumentError(
            f"trial folder {folder}: no {', '.join(p.name for p in missing)}"
        )
    stored = json.loads((folder / "result.json").read_text())
    spec = parse_evaluation(stored["trial"]["evaluation"])
    chosen = policy_file(stored["trial"].get("select", "last"))
    model = load_model(folder / chosen, device="cpu")
    again = evaluate_trial(model, stored["trial"]["name"], spec).to_dict(compact=True)
    return stored["evaluation"], again


def differences(old: dict, new: dict) -> list[tuple[str, int, int, float, float]]:
    """(row label, episodes that differ, episodes, mean before, mean after) of each changed row;
    rows are matched by position (the same spec gives the same rows in the same order)."""
    out = []
    for a, b in zip(old["rows"], new["rows"], strict=True):
        if a == b:
            continue
        ra, rb = np.asarray(a[1], dtype=float), np.asarray(b[1], dtype=float)
        label = " / ".join(str(x) for x in a[2:4] if x is not None) + f" / {a[0]}"
        out.append((label, int(np.sum(ra != rb)), len(ra), float(ra.mean()), float(rb.mean())))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path, help="trial folders")
    p.add_argument("--out", required=True, type=Path, help="Markdown file to write")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    args = p.parse_args(argv)
    if args.out.exists() and not args.force:
        p.error(f"--out: {args.out} exists (pass --force to overwrite it)")
    torch.set_num_threads(1)
    lines = ["# Re-evaluation of finished trials with the current code", ""]
    missing = missing_files(args.folders)
    if missing:
        p.error(
            f"trial folders need {' and '.join(NEEDED)}; missing: {', '.join(map(str, missing))}"
        )
    for folder in args.folders:
        old, new = reevaluate(folder)
        changed = differences(old, new)
        lines.append(
            f"- `{folder}`: {len(old['rows'])} rows, {len(changed)} differ"
            + ("" if old.keys() == new.keys() else " (the stored record has other fields)")
        )
        if changed:
            lines += ["", "| row | episodes that differ | mean before | mean after |"]
            lines.append("|---|---:|---:|---:|")
            for label, k, n, a, b in changed:
                lines.append(f"| {label} | {k} of {n} | {a:.3f} | {b:.3f} |")
            lines.append("")
    write_record(args.out, lines, "experiments/reevaluate_trial.py", argv, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
