"""Speed of a robustness grid: the lockstep path against the scalar reference path.

For each task, one saved model is evaluated on a ``points × points`` grid over the first two axes
of the task's suite with ``--episodes`` episodes per point, by ``evaluate_grid(...,
lockstep=False)`` (one gymnasium env per episode, ``predict`` per grid point) and by the default
lockstep path (every (point, episode) row stepped together on the task's batched simulator). The
two are interleaved over ``--rounds`` rounds so that machine noise hits both alike; the ratio uses
the median env-steps/s of each (the env-steps counted as the rows the lockstep loop asks
actions for). The returns of the two paths are compared (maximum absolute difference and exact
equality).

With ``--attack NAME`` the workload is an attack curve instead: ``evaluate_attacks`` on the
suite's nominal test MDP, ``--episodes`` episodes per radius of ``--epsilons``, by the per-radius
path (``lockstep=False``: one radius after another, one attack call and one ``predict`` per
step on that radius's episodes) and by the default batched path (every (radius, episode) row
stepped together, one PGD over all radii per step). With radii all above 0 every step is an
attacked step.

Writes ``OUT/evaluation_speed.md`` and ``OUT/evaluation_speed.csv``.

    python experiments/bench_evaluation.py --model cartpole=PATH --model pendulum=PATH \\
        --out experiments/results/bench_evaluation
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robust_rl.evaluation import evaluate_attacks, evaluate_grid, load_model
from robust_rl.evaluation import lockstep as lockstep_module
from robust_rl.evaluation.suites import get_suite
from robust_rl.io import atomic_write_text, csv_text
from robust_rl.provenance import command_line, machine


def _run(model, suite: str, args: argparse.Namespace, lockstep: bool):
    """The timed workload (a grid, or an attack curve with ``--attack``): seconds, returns."""
    t0 = time.perf_counter()
    if args.attack:
        res = evaluate_attacks(
            {"m": model},
            suite,
            n_episodes=args.episodes,
            attack=args.attack,
            epsilons=args.epsilons,
            lockstep=lockstep,
        )
    else:
        res = evaluate_grid(
            {"m": model},
            suite,
            n_episodes=args.episodes,
            points=args.points,
            axes=list(get_suite(suite).uncertainty)[:2],
            lockstep=lockstep,
            n_workers=args.workers,
        )
    seconds = time.perf_counter() - t0
    returns = np.concatenate([np.asarray(r.returns) for r in res.rows])
    return seconds, returns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="SUITE=PATH (repeatable)")
    p.add_argument("--points", type=int, default=10, help="grid points per axis (default 10)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per point (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="n_workers of both paths: spawned processes for the scalar path, native threads "
        "for a MuJoCo robot's lockstep batch (default 1)",
    )
    p.add_argument(
        "--attack",
        default=None,
        help="time an attack curve of this attack (e.g. pgd) instead of a grid",
    )
    p.add_argument(
        "--epsilons",
        type=float,
        nargs="+",
        default=[0.01, 0.02, 0.05, 0.1, 0.2],
        help="radii of --attack (default 0.01 0.02 0.05 0.1 0.2)",
    )
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for item in args.model:
        suite, _, path = item.partition("=")
        model = load_model(path, device="cpu")
        times: dict[bool, list[float]] = {False: [], True: []}
        returns: dict[bool, np.ndarray] = {}
        for _ in range(args.rounds):
            for lockstep in (False, True):
                seconds, ret = _run(model, suite, args, lockstep)
                times[lockstep].append(seconds)
                returns[lockstep] = ret
        env_steps = _env_steps(model, suite, args)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "suite": suite,
                "model": path,
                "grid": (
                    f"{args.attack}: {len(args.epsilons)} radii x {args.episodes}"
                    if args.attack
                    else f"{args.points}x{args.points}x{args.episodes}"
                ),
                "workers": args.workers,
                "env_steps": env_steps,
                "scalar_s": med[False],
                "lockstep_s": med[True],
                "scalar_steps_per_s": env_steps / med[False],
                "lockstep_steps_per_s": env_steps / med[True],
                "speedup": med[False] / med[True],
                "max_abs_return_diff": float(np.max(np.abs(returns[True] - returns[False]))),
                "identical": bool(np.array_equal(returns[True], returns[False])),
            }
        )
        print(rows[-1], flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    out = Path(args.out)
    atomic_write_text(out / "evaluation_speed.csv", csv_text(rows), force=True)
    old = "per-radius" if args.attack else "scalar"
    lines = [
        (
            "# Attack curve: every radius in one lockstep batch against one radius at a time"
            if args.attack
            else "# Robustness grid: lockstep against the scalar path"
        ),
        "",
        f"| suite | {'workload' if args.attack else 'grid'} | workers | env-steps | "
        f"{old} (s) | lockstep (s) | {old} steps/s | "
        "lockstep steps/s | speed-up | max abs return diff | identical |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['suite']} | {r['grid']} | {r['workers']} | {r['env_steps']:,} | "
            f"{r['scalar_s']:.1f} | "
            f"{r['lockstep_s']:.2f} | {r['scalar_steps_per_s']:,.0f} | "
            f"{r['lockstep_steps_per_s']:,.0f} | {r['speedup']:.1f}× | "
            f"{r['max_abs_return_diff']:.2g} | {r['identical']} |"
        )
    lines += [
        "",
        f"Medians of {args.rounds} interleaved rounds, one torch thread, {args.workers} "
        f"worker(s). Machine: {machine()}; load average before {' '.join(load_before)}, after "
        f"{' '.join(load_after)}.",
        "",
        "    " + command_line("experiments/bench_evaluation.py", argv),
        "",
    ]
    atomic_write_text(out / "evaluation_speed.md", "\n".join(lines), force=True)
    return 0


def _env_steps(model, suite: str, args: argparse.Namespace) -> int:
    """Environment steps of the workload, counted in one more (untimed) lockstep run as the rows
    the lockstep loop asks actions for: one per unfinished episode and step."""
    rows: list[int] = []
    predict_rows = lockstep_module.predict_rows

    def counting(model, obs, *args, **kwargs):
        rows.append(len(obs))
        return predict_rows(model, obs, *args, **kwargs)

    lockstep_module.predict_rows = counting
    try:
        _run(model, suite, args, lockstep=True)
    finally:
        lockstep_module.predict_rows = predict_rows
    return sum(rows)


if __name__ == "__main__":
    sys.exit(main())
