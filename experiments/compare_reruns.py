"""Compare a rerun of a variant with a committed run: is the difference within seed noise?

Reads two ``per_seed.csv`` files written by the reproduction scripts (columns variant, seed,
metric, value), takes one variant's values per training seed for each metric, and reports the
difference of the means, its bootstrap interval and the permutation p-value
(:func:`robust_rl.evaluation.compare_means`), once over the seeds both runs share and once over
every seed of each. Used to check that a change of the code leaves learning unchanged.

    python experiments/compare_reruns.py --variant robust-dqn \\
        --new experiments/results/cartpole_issue11_check/per_seed.csv \\
        --old experiments/results/cartpole_tuned/per_seed.csv \\
        --out experiments/results/cartpole_issue11_check/comparison.md
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from robust_rl.errors import InvalidArgumentError, UserError
from robust_rl.evaluation import compare_means
from robust_rl.io import atomic_write_text
from robust_rl.provenance import command_line

METRICS = ("test_mean", "nominal", "grid_average", "grid_worst")


def read_per_seed(path: Path, variant: str) -> dict[str, dict[int, float]]:
    """``{metric: {seed: value}}`` of one variant."""
    out: dict[str, dict[int, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["variant"] == variant:
                out.setdefault(row["metric"], {})[int(row["seed"])] = float(row["value"])
    if not out:
        raise InvalidArgumentError(f"{path} has no rows of variant {variant!r}")
    return out


def comparison_rows(
    new: dict[str, dict[int, float]], old: dict[str, dict[int, float]], metrics: list[str]
) -> list[str]:
    """Markdown table rows: each metric over the shared seeds, then over all seeds."""
    rows = []
    for metric in metrics:
        if metric not in new or metric not in old:
            raise InvalidArgumentError(f"metric {metric!r} is missing from one of the files")
        shared = sorted(set(new[metric]) & set(old[metric]))
        samples = [
            (f"shared seeds ({len(shared)})", [new[metric][s] for s in shared],
             [old[metric][s] for s in shared]),
            (f"all seeds ({len(new[metric])} vs {len(old[metric])})",
             list(new[metric].values()), list(old[metric].values())),
        ]  # fmt: skip
        for label, a, b in samples:
            c = compare_means(a, b)
            rows.append(
                f"| {metric} | {label} | {sum(a) / len(a):.1f} | {sum(b) / len(b):.1f} | "
                f"{c.difference:+.1f} | [{c.ci_low:+.1f}, {c.ci_high:+.1f}] | {c.p_value:.3f} |"
            )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True)
    p.add_argument("--new", type=Path, required=True, help="per_seed.csv of the rerun")
    p.add_argument("--old", type=Path, required=True, help="per_seed.csv of the committed run")
    p.add_argument("--metrics", nargs="+", default=list(METRICS))
    p.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    args = p.parse_args()
    new = read_per_seed(args.new, args.variant)
    old = read_per_seed(args.old, args.variant)
    lines = [
        f"# {args.variant}: rerun vs committed run",
        "",
        f"New: `{args.new}`; old: `{args.old}`. Difference of the means over training seeds "
        "(new − old), its 95% bootstrap interval and the two-sided permutation p-value of equal "
        "means (`robust_rl.evaluation.compare_means`).",
        "",
        "| metric | seeds | new mean | old mean | difference | 95% interval | p-value |",
        "|---|---|---:|---:|---:|---:|---:|",
        *comparison_rows(new, old, args.metrics),
        "",
        f"Command: `{command_line('experiments/compare_reruns.py')}`",
    ]
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        atomic_write_text(args.out, text, force=args.force)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UserError as exc:  # a clear message, no traceback
        raise SystemExit(f"error: {exc}") from None
