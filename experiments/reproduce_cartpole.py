"""Reproduce the paper's CartPole table: DQN vs RobustDQN vs domain-randomised DQN.

Trains the three algorithms on nominal CartPole (the domain-randomised baseline on
``robust_rl/CartPoleDomainRandomized-v1``) with the same budget and seeds, through the sweep
machinery (:mod:`robust_rl.sweep`: parallel trials, resume after a crash), saves each model as
``OUT/<algo>_seed<k>.zip``, evaluates all of them on the four MDPs and the physics grid, and writes
``OUT/results.md`` (paper-style table, mean ± std over seeds), ``OUT/results.csv`` and
``OUT/grid.png``.

    python experiments/reproduce_cartpole.py --seeds 10 --out experiments/results/cartpole
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robust_rl._io import atomic_write_text, save_figure
from robust_rl.envs import CARTPOLE_SUITE
from robust_rl.sweep import expand_sweep, run_sweep, write_summary

CONFIGS = Path(__file__).resolve().parent / "configs"
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
    episodes: int
    """evaluation episodes per MDP and model"""
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
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--grid-episodes", type=int, default=20)
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--variants", nargs="+", default=list(LABELS), choices=list(LABELS))
    return Args(**vars(p.parse_args()))


def main() -> int:
    args = parse_args()
    start = time.perf_counter()
    budget = {"n_timesteps": args.timesteps} if args.timesteps else {}
    spec = {
        "name": "reproduce_cartpole",
        "env": "robust_rl/CartPole-v1",
        "seeds": list(range(args.seeds)),
        "evaluation": {"episodes": args.episodes, "grid_episodes": args.grid_episodes},
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
    trials = [t for t in expand_sweep(spec) if t.variant in args.variants]
    runs = args.out / "runs"
    results = run_sweep(
        trials,
        runs,
        backend=args.backend,
        max_parallel=args.max_parallel,
        on_result=lambda r: print(f"[{r.status}] {r.trial.name} {r.error or ''}", flush=True),
    )
    write_summary(results, runs, title="reproduce_cartpole (per trial)")
    failed = [r for r in results if r.status == "failed"]
    done = [r for r in results if r.status != "failed"]
    for r in done:  # OUT/<algo>_seed<k>.zip
        target = args.out / f"{r.trial.variant}_seed{r.trial.seed}.zip"
        shutil.copyfile(runs / r.trial.name / "model.zip", target)

    variants = list(spec["variants"])
    mdps = list(CARTPOLE_SUITE)
    per_seed = {
        v: {m: [r.suite[m] for r in done if r.trial.variant == v] for m in mdps} for v in variants
    }
    solved = {
        v: sum(r.suite["original"] >= 475 for r in done if r.trial.variant == v) for v in variants
    }
    n_done = {v: sum(r.trial.variant == v for r in done) for v in variants}
    wall = time.perf_counter() - start

    lines = [
        "# CartPole: DQN vs RobustDQN vs domain-randomised DQN",
        "",
        f"Return (mean ± std over {args.seeds} training seeds of each seed's mean over "
        f"{args.episodes} evaluation episodes; 500-step episodes). All trained on nominal CartPole "
        "(the DR baseline on randomised physics) with the RL Zoo DQN budget.",
        "",
        "| MDP | "
        + " | ".join(LABELS[v] for v in variants)
        + " | paper: regular Q | paper: robust Q |",
        "|---|" + "---:|" * (len(variants) + 2),
    ]
    csv = ["mdp," + ",".join(f"{v}_mean,{v}_std" for v in variants)]
    for m in mdps:
        cells = [
            f"{np.mean(per_seed[v][m]):.1f} ± {np.std(per_seed[v][m]):.1f}"
            if per_seed[v][m]
            else "n/a"
            for v in variants
        ]
        lines.append(
            f"| {m} | " + " | ".join(cells) + f" | {PUBLISHED[m][0]} | {PUBLISHED[m][1]} |"
        )
        csv.append(
            m
            + ","
            + ",".join(
                f"{np.mean(per_seed[v][m]):.3f},{np.std(per_seed[v][m]):.3f}"
                if per_seed[v][m]
                else ","
                for v in variants
            )
        )
    lines += [
        "",
        "Seeds whose mean return on the nominal MDP is ≥ 475: "
        + ", ".join(f"{LABELS[v]} {solved[v]}/{n_done[v]}" for v in variants)
        + ".",
        "",
        "Per-seed returns: `runs/summary.md` / `runs/trials.csv`; grid: `grid.png`.",
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
    atomic_write_text(args.out / "results.csv", "\n".join(csv) + "\n", force=True)
    _plot_grid(done, variants, args.out / "grid.png")
    print("\n".join(lines))
    return 1 if failed else 0


def _plot_grid(done, variants, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted({k for r in done for k in r.grid})
    params = sorted({p.split(" x")[0] for p in points})
    if not params:
        return
    fig, axes = plt.subplots(1, len(params), figsize=(4.2 * len(params), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, param in zip(axes, params, strict=True):
        keys = sorted(
            (p for p in points if p.startswith(param + " x")), key=lambda p: float(p.split(" x")[1])
        )
        factors = [float(k.split(" x")[1]) for k in keys]
        for v in variants:
            vals = np.array([[r.grid[k] for k in keys] for r in done if r.trial.variant == v])
            if vals.size == 0:
                continue
            mean, std = vals.mean(0), vals.std(0)
            ax.plot(factors, mean, marker="o", label=LABELS[v])
            ax.fill_between(factors, mean - std, mean + std, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks(factors, [f"{f:g}" for f in factors])
        ax.minorticks_off()
        ax.set_xlabel(f"{param} factor (× nominal)")
        ax.set_title(param)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return (mean ± std over seeds)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, force=True)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
