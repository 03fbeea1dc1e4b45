"""Reproduce the paper's CartPole table: DQN vs RobustDQN vs domain-randomised DQN.

Trains the three algorithms on nominal CartPole (the domain-randomised baseline on
``robust_rl/CartPoleDomainRandomized-v1``) with the same budget and seeds and their published
(shipped) hyperparameters, no tuning, through the sweep machinery (:mod:`robust_rl.sweep`:
parallel trials, resume after a crash). Every trial is evaluated on the ``cartpole`` suite's test
MDPs (the paper's four), its validation MDPs and a grid over the uncertainty set; the results of
all trials form one :class:`~robust_rl.evaluation.EvaluationResults`, aggregated over seeds.

Writes ``OUT/<algo>_seed<k>.zip`` (each model), ``OUT/results.md`` (paper-style table, mean ± std
over seeds), ``OUT/results.csv``, ``OUT/grid.png`` and ``OUT/evaluation_over_seeds.{json,csv,md}``;
the trials and their summary are under ``OUT/runs/``.

    python experiments/reproduce_cartpole.py --seeds 10 --out experiments/results/cartpole
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from robust_rl._io import atomic_write_bytes, atomic_write_text
from robust_rl.evaluation import EvaluationResults, aggregate_over_seeds, grid_png, save_results
from robust_rl.sweep import expand_sweep, parse_sweep, run_sweep, write_summary

CONFIGS = Path(__file__).resolve().parent / "configs"
SUITE = "cartpole"
PUBLISHED = {  # talk, CartPole, 500-step episodes: (regular Q-learning, robust Q-learning)
    "original": ("469.42 ± 19.03", "487.11 ± 9.09"),
    "heavy pole": ("187.63 ± 29.40", "394.12 ± 12.01"),
    "short pole": ("355.54 ± 28.89", "443.17 ± 9.98"),
    "strong gravity": ("271.41 ± 20.7", "418.42 ± 13.64"),
}
LABELS = {"dqn": "DQN", "robust-dqn": "RobustDQN", "dqn-dr": "DQN + domain rand."}


@dataclass
class Args:
    """Command-line arguments."""

    seeds: int
    """number of seeds (0..seeds-1) per algorithm"""
    out: Path
    """output folder"""
    max_parallel: int
    """trials at once (one torch thread each)"""
    backend: str
    """sweep backend: local or ray"""
    address: str | None
    """Ray cluster address (backend ray); default: a private Ray"""
    episodes: int
    """evaluation episodes per test MDP and model (reset seeds 10000, 10001, ...)"""
    tune_episodes: int
    """episodes per validation MDP (reset seeds 20000, ...; reported, not used to choose)"""
    grid_points: int
    """grid points per axis over the suite's uncertainty set (0: no grid)"""
    grid_axes: list[str]
    """grid axes (the grid has grid_points ** len(grid_axes) points)"""
    grid_episodes: int
    """evaluation episodes per grid point and model"""
    timesteps: int | None
    """override the configs' training budget (default: 50,000 steps, the RL Zoo's)"""
    variants: list[str]
    """algorithms to train now (all three are reported; missing ones show as n/a)"""


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("experiments/results/cartpole"))
    p.add_argument("--max-parallel", type=int, default=os.cpu_count() or 1)
    p.add_argument("--backend", default="local", choices=("local", "ray"))
    p.add_argument("--address", default=None)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--tune-episodes", type=int, default=20)
    p.add_argument("--grid-points", type=int, default=4)
    p.add_argument("--grid-axes", nargs="+", default=["masspole", "length"])
    p.add_argument("--grid-episodes", type=int, default=20)
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--variants", nargs="+", default=list(LABELS), choices=list(LABELS))
    return Args(**vars(p.parse_args()))


def sweep_file(args: Args) -> dict:
    """The sweep, as a sweep file would hold it: published defaults, one point per variant."""
    budget = {"n_timesteps": args.timesteps} if args.timesteps else {}
    return {
        "name": "reproduce_cartpole",
        "env": "robust_rl/CartPole-v1",
        "seeds": list(range(args.seeds)),
        "evaluation": {
            "suite": SUITE,
            "tune_episodes": args.tune_episodes,
            "episodes": args.episodes,
            "grid_points": args.grid_points,
            "grid_axes": args.grid_axes,
            "grid_episodes": args.grid_episodes,
        },
        "variants": {
            "dqn": {"algo": "dqn", "config": str(CONFIGS / "dqn_cartpole.yaml"), "params": budget},
            "robust-dqn": {
                "algo": "robust-dqn",
                "config": str(CONFIGS / "robust_dqn_cartpole.yaml"),
                "params": budget,
            },
            "dqn-dr": {
                "algo": "dqn",
                "env": "robust_rl/CartPoleDomainRandomized-v1",
                "config": str(CONFIGS / "dqn_cartpole.yaml"),
                "params": budget,
            },
        },
    }


def main() -> int:
    args = parse_args()
    start = time.perf_counter()
    spec = parse_sweep(sweep_file(args))
    variants = [v.name for v in spec.variants]
    runs = args.out / "runs"
    results = run_sweep(
        [t for t in expand_sweep(spec) if t.variant in args.variants],
        runs,
        backend=args.backend,
        max_parallel=args.max_parallel,
        address=args.address,
        on_result=lambda r: print(f"[{r.status}] {r.trial.name} {r.error or ''}", flush=True),
    )
    write_summary(results, runs, spec=spec, title="reproduce_cartpole (per trial)")
    failed = [r for r in results if r.status == "failed"]
    done = [r for r in results if r.ok]
    for r in done:  # OUT/<algo>_seed<k>.zip
        shutil.copyfile(
            runs / r.trial.name / "model.zip",
            args.out / f"{r.trial.variant}_seed{r.trial.seed}.zip",
        )
    wall = time.perf_counter() - start
    if not done:
        print("no finished trials")
        return 1

    # one results object: every trial's rows, then mean ± std over seeds per variant
    merged = done[0].evaluation.merge(*(r.evaluation for r in done[1:]), name="evaluation")
    variant_of = {r.trial.name: r.trial.variant for r in done}
    over_seeds: EvaluationResults = aggregate_over_seeds(merged, group_of=variant_of.__getitem__)
    save_results(over_seeds, args.out, force=True)
    png = grid_png(over_seeds)
    if png is not None:
        atomic_write_bytes(args.out / "grid.png", png, force=True)

    present = [v for v in variants if v in over_seeds.models]
    summaries = {v: over_seeds.summary(v) for v in present}
    mdps = list(next(iter(summaries.values())).test)

    def cell(v: str, mdp: str) -> str:
        if v not in summaries:
            return "n/a"
        row = over_seeds.row(v, mdp, kind="suite")
        return f"{row.mean:.1f} ± {row.std:.1f}"

    lines = [
        "# CartPole: DQN vs RobustDQN vs domain-randomised DQN",
        "",
        f"Return (mean ± std over {args.seeds} training seeds of each seed's mean over "
        f"{args.episodes} evaluation episodes; 500-step episodes) on the `{SUITE}` suite's test "
        "MDPs. All trained on nominal CartPole (the DR baseline on randomised physics) with the "
        "RL Zoo DQN budget and shipped hyperparameters (no tuning in this run).",
        "",
        "| MDP | "
        + " | ".join(LABELS[v] for v in variants)
        + " | paper: regular Q | paper: robust Q |",
        "|---|" + "---:|" * (len(variants) + 2),
    ]
    for m in mdps:
        paper = PUBLISHED.get(m, ("–", "–"))
        lines.append(
            f"| {m} | " + " | ".join(cell(v, m) for v in variants) + f" | {paper[0]} | {paper[1]} |"
        )
    grid_line = ["| grid average | ", "| grid worst case | "]
    for v in variants:
        s = summaries.get(v)
        grid_line[0] += (
            "n/a" if s is None or s.grid_average is None else f"{s.grid_average:.1f}"
        ) + " | "
        grid_line[1] += (
            "n/a" if s is None or s.grid_worst is None else f"{s.grid_worst:.1f}"
        ) + " | "
    if any(s.grid_points for s in summaries.values()):
        lines += [g + "– | – |" for g in grid_line]
    nominal = {v: [r for r in done if r.trial.variant == v] for v in present}
    solved = {v: sum((r.summary().nominal or 0) >= 475 for r in rs) for v, rs in nominal.items()}
    lines += [
        "",
        "Seeds whose mean return on the nominal MDP is ≥ 475: "
        + ", ".join(f"{LABELS[v]} {solved[v]}/{len(nominal[v])}" for v in present)
        + ".",
        "",
        "Grid: every point of a "
        f"{args.grid_points}-per-axis grid over {', '.join(args.grid_axes)} (the suite's "
        f"uncertainty set), {args.grid_episodes} episodes per point; `grid.png`. Per-seed returns: "
        "`runs/summary.md` / `runs/trials.csv`; all rows: `evaluation_over_seeds.csv`.",
    ]
    if failed:
        lines += ["", f"{len(failed)} trials failed:"] + [
            f"- {r.trial.name}: {(r.error or '').splitlines()[0]}" for r in failed
        ]
    lines += [
        "",
        "## How to replicate",
        "",
        "```bash",
        "python " + " ".join(["experiments/reproduce_cartpole.py", *sys.argv[1:]]),
        "```",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
        f"wall time of this invocation {wall / 60:.1f} min (trials finished in an earlier invocation "
        "are reused, not retrained).",
    ]
    atomic_write_text(args.out / "results.md", "\n".join(lines) + "\n", force=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["mdp"] + [f"{v}_{k}" for v in variants for k in ("mean", "std")])
    for m in mdps:
        cells: list[str] = []
        for v in variants:
            if v in summaries:
                row = over_seeds.row(v, m, kind="suite")
                cells += [f"{row.mean:.3f}", f"{row.std:.3f}"]
            else:
                cells += ["", ""]
        writer.writerow([m, *cells])
    atomic_write_text(args.out / "results.csv", buf.getvalue(), force=True)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
