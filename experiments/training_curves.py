"""A training curve per run, read from its TensorBoard log: does learning settle or oscillate?

For each run folder (a trial's ``runs/<trial>/`` with its ``tb/`` log, or any folder holding
TensorBoard event files), the last value of a scalar (default ``rollout/ep_rew_mean``, SB3's
mean return of the last 100 training episodes) in every window of ``--every`` steps, as one
Markdown table with a row per run, plus the curve's peak and its final value. The TensorBoard
logs are not committed: run this where the runs were trained.

    python experiments/training_curves.py experiments/results/cartpole_dynamics_200k/runs/dqn__seed* \\
        --every 20000 --out /tmp/curves.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robust_rl.errors import InvalidArgumentError
from robust_rl.provenance import write_record


def curve(folder: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``tag`` in the event files below ``folder``, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import (  # type: ignore[import-untyped]
        EventAccumulator,
    )

    files = sorted(folder.rglob("events.out.tfevents.*"))
    if not files:
        raise InvalidArgumentError(f"{folder}: no TensorBoard event files below it")
    points: dict[int, float] = {}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            points.update({e.step: float(e.value) for e in acc.Scalars(tag)})
    if not points:
        raise InvalidArgumentError(f"{folder}: no scalar {tag!r} in its TensorBoard logs")
    return sorted(points.items())


def windows(points: list[tuple[int, float]], every: int) -> dict[int, float]:
    """The last value in each window ``[k·every, (k+1)·every)``, keyed by ``k``."""
    out: dict[int, float] = {}
    for step, value in points:
        out[step // every] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path, help="run folders")
    p.add_argument("--tag", default="rollout/ep_rew_mean", help="scalar (default: %(default)s)")
    p.add_argument("--every", type=int, default=20000, help="window in steps (default 20000)")
    p.add_argument("--out", required=True, type=Path, help="Markdown file to write")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    args = p.parse_args(argv)
    if args.every < 1:
        p.error(f"--every must be a positive integer, got {args.every}")
    if args.out.exists() and not args.force:
        p.error(f"--out: {args.out} exists (pass --force to overwrite it)")
    try:
        curves = {folder: windows(curve(folder, args.tag), args.every) for folder in args.folders}
    except InvalidArgumentError as exc:
        p.error(str(exc))
    last = max(max(c) for c in curves.values())
    head = [f"{(k + 1) * args.every // 1000}k" for k in range(last + 1)]
    lines = [
        f"# `{args.tag}`: last value in each window of {args.every:,} steps",
        "",
        "| run | " + " | ".join(head) + " | peak | final |",
        "|---|" + "---:|" * (len(head) + 2),
    ]
    for folder, c in curves.items():
        cells = [f"{c[k]:.0f}" if k in c else "" for k in range(last + 1)]
        values = list(c.values())
        lines.append(
            f"| {folder.name} | " + " | ".join(cells) + f" | {max(values):.0f} | {values[-1]:.0f} |"
        )
    write_record(args.out, lines, "experiments/training_curves.py", argv, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
