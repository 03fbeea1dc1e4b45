"""Wall time of a 10 x 10 InvertedPendulum grid evaluation with 1 and 2 worker processes.

The model is a small PPO (SB3 defaults, MlpPolicy 64-64) trained briefly on nominal
``robust_rl/InvertedPendulum-v5`` (``--train-steps``, seed 0), saved to ``OUT/model.zip`` and
reused when it exists, so that reruns time the same policy. The grid is the suite
``inverted-pendulum``'s uncertainty set (pole mass [1, 31] x cart mass [1, 11], inclusive,
``--points`` per axis), ``--episodes`` episodes per point. Worker counts are interleaved over
``--repeats`` rounds (1, 2, 1, 2, ...) so that machine noise hits both alike; the speedup uses
the median wall time of each. Every run's returns must be identical (checked): the grid's
result does not depend on the number of workers. With ``k`` workers, this process and ``k - 1``
spawned workers (``spawn`` start method, one torch thread each) share the grid points; the
parent uses one torch thread too (``OMP_NUM_THREADS=1``). CPU time (this process and its
workers, user + system) is reported beside the wall time: on a machine shared with other work
the wall-time speedup says little, and the CPU time shows the parallel overhead (worker start:
imports and model load).

Writes ``OUT/results.md`` and ``OUT/results.csv`` with the hardware and the load average
(``/proc/loadavg``) before and after: other processes on the machine lower the speedup.

    python experiments/bench_parallel_grid.py --out experiments/results/parallel_grid
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch

from robust_rl.evaluation import EvaluationResults, evaluate_grid
from robust_rl.io import atomic_write_text, check_writable, csv_text
from robust_rl.provenance import command_line, machine

SUITE = "inverted-pendulum"


@dataclass
class Args:
    points: int = 10
    """grid points per axis"""
    episodes: int = 5
    """episodes per grid point"""
    workers: tuple[int, ...] = (1, 2)
    """worker counts compared"""
    repeats: int = 2
    """interleaved rounds over the worker counts"""
    train_steps: int = 20_000
    """PPO training steps (if OUT/model.zip does not exist)"""
    seed: int = 0
    """training seed and first reset seed of every grid point"""
    out: str = "experiments/results/parallel_grid"
    """output folder"""
    force: bool = False
    """overwrite results.md/results.csv"""


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Args()
    p.add_argument("--points", type=int, default=d.points)
    p.add_argument("--episodes", type=int, default=d.episodes)
    p.add_argument("--workers", type=int, nargs="+", default=list(d.workers))
    p.add_argument("--repeats", type=int, default=d.repeats)
    p.add_argument("--train-steps", type=int, default=d.train_steps)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out)
    p.add_argument("--force", action="store_true")
    a = p.parse_args()
    return Args(
        a.points, a.episodes, tuple(a.workers), a.repeats, a.train_steps, a.seed, a.out, a.force
    )


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def trained_model(path: Path, steps: int, seed: int) -> float:
    """Train and save the PPO if ``path`` does not exist; return the training time (0 if reused)."""
    if path.is_file():
        return 0.0
    from stable_baselines3 import PPO

    start = time.perf_counter()
    model = PPO("MlpPolicy", "robust_rl/InvertedPendulum-v5", seed=seed, device="cpu")
    model.learn(steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return time.perf_counter() - start


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    for name in ("results.md", "results.csv"):
        check_writable(out / name, args.force)
    model_path = out / "model.zip"
    train_time = trained_model(model_path, args.train_steps, args.seed)
    models = {"ppo": str(model_path)}
    load_before = loadavg()
    times: dict[int, list[float]] = {w: [] for w in args.workers}
    cpu: dict[int, list[float]] = {w: [] for w in args.workers}
    reference: EvaluationResults | None = None
    for _ in range(args.repeats):
        for w in args.workers:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            res = evaluate_grid(
                models,
                SUITE,
                n_episodes=args.episodes,
                seed=args.seed,
                points=args.points,
                n_workers=w,
            )
            times[w].append(time.perf_counter() - start)
            cpu[w].append(cpu_seconds() - cpu_start)
            print(
                f"workers={w}: {times[w][-1]:.1f} s wall, {cpu[w][-1]:.1f} s CPU "
                f"(load {loadavg()})",
                flush=True,
            )
            if reference is None:
                reference = res
            elif res.to_dict() != reference.to_dict():
                raise SystemExit(f"returns with {w} workers differ from the first run")
    load_after = loadavg()
    assert reference is not None
    summary = reference.summary("ppo")
    base = statistics.median(times[args.workers[0]])
    rows = [
        {
            "workers": w,
            "median_s": statistics.median(t),
            "runs_s": ";".join(f"{x:.2f}" for x in t),
            "median_cpu_s": statistics.median(cpu[w]),
            "speedup": base / statistics.median(t),
        }
        for w, t in times.items()
    ]
    atomic_write_text(out / "results.csv", csv_text(rows), force=args.force)
    cmd = command_line("experiments/bench_parallel_grid.py")
    lines = [
        f"# Parallel grid evaluation: {args.points} x {args.points} InvertedPendulum grid",
        "",
        f"Command: `{cmd.strip()}`",
        "",
        f"Model: PPO (SB3 defaults) trained {args.train_steps} steps on nominal "
        f"InvertedPendulum-v5, seed {args.seed}"
        + (f" (trained here in {train_time:.0f} s)" if train_time else " (reused OUT/model.zip)")
        + f"; grid average return {summary.grid_average:.1f}, worst case "
        f"{summary.grid_worst:.1f}. {args.episodes} episodes per point, "
        f"{args.points**2} points; with k workers this process and k - 1 spawned workers "
        "share the points, one torch thread each.",
        "",
        "| workers | median wall time (s) | runs (s) | median CPU time (s) | speedup vs 1 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['median_s']:.1f} | {r['runs_s'].replace(';', ', ')} | "
            f"{r['median_cpu_s']:.1f} | {r['speedup']:.2f}x |"
        )
    lines += [
        "",
        f"Hardware: {machine()}.",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_after}.",
        "Identical returns for every worker count (checked). CPU time: this process and its "
        "workers (user + system); with k workers it includes the k - 1 spawned workers' start "
        "(imports, model load). On a machine busy with other work the speedup falls: "
        "rerun it on a quiet machine.",
        "",
    ]
    atomic_write_text(out / "results.md", "\n".join(lines), force=args.force)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
