"""Throughput of RobustDQN relative to SB3's DQN (env-steps/s), measured in one run.

Same hyperparameters (the RL Zoo CartPole config), same seed and budget; the algorithms are
interleaved over ``--repeats`` rounds so that machine noise hits all of them alike, and the ratio
uses the median steps/s of each. Writes ``OUT/throughput.md`` and ``OUT/throughput.csv``.

    python experiments/bench_throughput.py --out experiments/results/throughput
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robust_rl._io import atomic_write_text
from robust_rl.training import load_config, make_model

CONFIGS = Path(__file__).resolve().parent / "configs"


def variants(levels: list[int]) -> list[tuple[str, str, dict]]:
    out: list[tuple[str, str, dict]] = [("DQN (SB3)", "dqn", {})]
    for level in levels:
        out.append(
            (
                f"RobustDQN RT-MLMC L={level}",
                "robust-dqn",
                {"estimator": "rt-mlmc", "max_level": level},
            )
        )
    out.append(
        (
            "RobustDQN RT-MLMC L=4, no control variate",
            "robust-dqn",
            {"estimator": "rt-mlmc", "max_level": 4, "control_variate": False},
        )
    )
    for level in levels:
        out.append(
            (f"RobustDQN SAA L={level}", "robust-dqn", {"estimator": "saa", "max_level": level})
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/throughput"))
    p.add_argument("--timesteps", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dqn_cfg = load_config(CONFIGS / "dqn_cartpole.yaml")
    robust_cfg = load_config(CONFIGS / "robust_dqn_cartpole.yaml")
    rates: dict[str, list[float]] = {}
    runs = variants(args.levels)
    for _ in range(args.repeats):
        for name, algo, extra in runs:
            cfg = {**(dqn_cfg if algo == "dqn" else robust_cfg), **extra}
            model = make_model(algo, "CartPole-v1", cfg, seed=0, device=args.device)
            t = time.perf_counter()
            model.learn(args.timesteps)
            rates.setdefault(name, []).append(args.timesteps / (time.perf_counter() - t))
    base = float(np.median(rates["DQN (SB3)"]))
    lines = [
        "# RobustDQN throughput relative to SB3's DQN",
        "",
        f"CartPole-v1, RL Zoo DQN hyperparameters (batch 64, 128 gradient steps every 256 env steps, "
        f"net [256, 256]), {args.timesteps} env steps per run, median of {args.repeats} interleaved "
        f"runs, device {args.device}, {args.threads} torch thread(s). Robust: radius "
        f"{robust_cfg['radius']}, eta {robust_cfg['eta']}, control variate on unless stated.",
        "",
        "| agent | env-steps/s (median) | runs | ratio to DQN |",
        "|---|---:|---|---:|",
    ]
    csv = ["agent,median_steps_per_s,ratio"]
    for name, _, _ in runs:
        med = float(np.median(rates[name]))
        cells = ", ".join(f"{r:.0f}" for r in rates[name])
        lines.append(f"| {name} | {med:.0f} | {cells} | {med / base:.2f} |")
        csv.append(f"{name},{med:.2f},{med / base:.4f}")
    wall = time.perf_counter() - start
    lines += [
        "",
        "## How to replicate",
        "",
        "```bash",
        "python " + " ".join(["experiments/bench_throughput.py", *sys.argv[1:]]),
        "```",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
        f"wall time {wall / 60:.1f} min.",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "throughput.md", text, force=True)
    atomic_write_text(args.out / "throughput.csv", "\n".join(csv) + "\n", force=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
