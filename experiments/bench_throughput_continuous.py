"""Throughput of RobustSAC and RobustTD3 relative to SB3's SAC and TD3 (env-steps/s), in one run.

Each agent is built from the shipped RL-Zoo config (``experiments/configs/{sac,td3}_hopper.yaml``
and the robust ones, which differ only by the robust keys), so the SB3 agent and the robust agent
have identical hyperparameters, seed and device. After each agent has filled its replay buffer
(``learning_starts`` random steps, not timed), the agents are interleaved over ``--rounds``
rounds of ``--steps`` environment steps each (``learn(..., reset_num_timesteps=False)``: env
step, action, and one gradient step per env step), so that machine noise hits all of them alike.
Each round gives each robust agent a ratio to its SB3 parent measured moments apart; the table
reports the median of these per-round ratios (robust to load changes between rounds, which a
ratio of medians is not), their quartiles, and the median env-steps/s of each agent. A per-update profile splits the robust
agent's extra cost into the target (all draws and centres through actor and twin critics) and the
rest.

Writes ``OUT/throughput.md`` and ``OUT/throughput.csv`` (never overwriting without ``--force``)
and records the load average before and after, since other processes skew timings::

    python experiments/bench_throughput_continuous.py --out experiments/results/throughput_continuous
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robust_rl import RobustSAC
from robust_rl.errors import OutputExistsError
from robust_rl.io import atomic_write_text, csv_text
from robust_rl.provenance import machine, wall_time
from robust_rl.training import load_config, make_model

CONFIGS = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class Args:
    """Command-line arguments.

    :ivar out: output folder.
    :ivar env: gymnasium id (the configs are Hopper-v5's).
    :ivar task: config name suffix (``hopper`` -> ``sac_hopper.yaml``).
    :ivar levels: RT-MLMC levels of the robust agents measured.
    :ivar steps: environment steps per agent per round.
    :ivar rounds: interleaved rounds.
    :ivar learning_starts: override of the configs' warm-up (same for every agent).
    :ivar device: torch device.
    :ivar force: overwrite existing results.
    :ivar without_control_variate: also measure each robust agent with ``control_variate=False``
        (the nominal next state's row dropped from every target pass).
    """

    out: Path
    env: str
    task: str
    levels: tuple[int, ...]
    steps: int
    rounds: int
    learning_starts: int | None
    device: str
    force: bool
    without_control_variate: bool = False


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/throughput_continuous"))
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--task", default="hopper")
    p.add_argument("--levels", type=int, nargs="+", default=[4])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--learning-starts", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true")
    p.add_argument(
        "--without-control-variate",
        action="store_true",
        help="also measure the robust agents with control_variate=False",
    )
    a = p.parse_args()
    return Args(
        a.out, a.env, a.task, tuple(a.levels), a.steps, a.rounds, a.learning_starts, a.device,
        a.force, a.without_control_variate,
    )  # fmt: skip


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def agents(args: Args) -> list[tuple[str, str, str, dict]]:
    """(name, baseline name, algo, config) of every agent measured."""
    out = []
    for family in ("sac", "td3"):
        plain = load_config(CONFIGS / f"{family}_{args.task}.yaml")
        robust = load_config(CONFIGS / f"robust_{family}_{args.task}.yaml")
        if args.learning_starts is not None:
            plain["learning_starts"] = robust["learning_starts"] = args.learning_starts
        base = f"{family.upper()} (SB3)"
        out.append((base, base, family, plain))
        for level in args.levels:
            cfg = {**robust, "max_level": level, "estimator": "rt-mlmc"}
            out.append((f"Robust{family.upper()} RT-MLMC L={level}", base, f"robust-{family}", cfg))
            if args.without_control_variate:
                out.append(
                    (
                        f"Robust{family.upper()} RT-MLMC L={level}, no control variate",
                        base,
                        f"robust-{family}",
                        {**cfg, "control_variate": False},
                    )
                )
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(args: Args) -> tuple[list[dict], dict[str, float]]:
    """Median env-steps/s per agent over interleaved rounds, and per-update target times."""
    models = {}
    for name, base, algo, cfg in agents(args):
        model = make_model(algo, args.env, cfg, seed=0, device=args.device)
        model.learn(int(cfg.get("learning_starts", 100)) + 1)  # fill the buffer, first update
        models[name] = (model, base)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, _) in models.items():
            _sync(args.device)
            start = time.perf_counter()
            model.learn(args.steps, reset_num_timesteps=False)
            _sync(args.device)
            rates[name].append(args.steps / (time.perf_counter() - start))
    rows = []
    for name, (_, base) in models.items():
        ratios = np.asarray(rates[name]) / np.asarray(rates[base])
        q1, q3 = np.quantile(ratios, [0.25, 0.75])
        rows.append(
            {
                "agent": name,
                "steps_per_s": float(np.median(rates[name])),
                "ratio": float(np.median(ratios)),
                "ratio_q1": float(q1),
                "ratio_q3": float(q3),
            }
        )
    targets = {name: _target_time(model, args.device) for name, (model, _) in models.items()}
    for row in rows:
        model = models[row["agent"]][0]
        row["beyond_forward_ms"] = (
            1e3 * _bookkeeping_time(model, args.device)
            if hasattr(model, "robust_estimate")
            else None
        )
    return rows, targets


def _bookkeeping_time(model, device: str, calls: int = 50) -> float:
    """Seconds per robust target with the networks replaced by a stub that returns preallocated
    values: the target's time beyond its forward pass (draws, plan, functional, bookkeeping)."""
    batch = model.replay_buffer.sample(model.batch_size).next_observations
    out = torch.zeros(64 * model.batch_size, device=model.device)

    def stub(obs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return out[: obs.shape[0]]

    with torch.no_grad():
        model.robust_estimate(batch, stub)
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            model.robust_estimate(batch, stub)
        _sync(device)
    model._robust_estimates.clear()
    return (time.perf_counter() - start) / calls


def _target_time(model, device: str, calls: int = 20) -> float:
    """Seconds per target computation on a replay batch (SB3's own target for SB3 agents)."""
    batch = model.replay_buffer.sample(model.batch_size).next_observations
    with torch.no_grad():
        if hasattr(model, "robust_next_values"):
            alpha = torch.ones(1, device=model.device)
            fn = (
                (lambda: model.robust_next_values(batch, alpha))
                if isinstance(model, RobustSAC)
                else (lambda: model.robust_next_values(batch))
            )
        elif hasattr(model, "actor_target"):

            def fn() -> object:
                mu = model.actor_target(batch)
                return torch.cat(model.critic_target(batch, mu.clamp(-1, 1)), dim=1).amin(dim=1)

        else:

            def fn() -> object:
                actions, _ = model.actor.action_log_prob(batch)
                return torch.cat(model.critic_target(batch, actions), dim=1).amin(dim=1)

        fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
    return (time.perf_counter() - start) / calls


def report(
    args: Args,
    rows: list[dict],
    targets: dict[str, float],
    load: tuple[str, str],
    wall_s: float,
) -> str:
    lines = [
        "# Throughput: RobustSAC / RobustTD3 vs SB3 SAC / TD3",
        "",
        f"Env `{args.env}`, configs `experiments/configs/{{sac,td3}}_{args.task}.yaml` and the "
        f"robust ones (identical SB3 hyperparameters), device `{args.device}`, "
        f"{torch.get_num_threads()} torch thread(s), {args.rounds} interleaved rounds of "
        f"{args.steps} env steps per agent (one gradient step per env step), median env-steps/s.",
        "",
        f"Machine: {machine()}; load average before {load[0]}, after {load[1]}; wall time "
        f"{wall_time(wall_s)}.",
        "",
        "| agent | env-steps/s (median) | ratio to SB3 (median of rounds) | ratio quartiles "
        "| target (ms) | target beyond its forward pass (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        beyond = "n/a" if r["beyond_forward_ms"] is None else f"{r['beyond_forward_ms']:.2f}"
        lines.append(
            f"| {r['agent']} | {r['steps_per_s']:.2f} | {r['ratio']:.2f} | "
            f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f} | {1e3 * targets[r['agent']]:.2f} | "
            f"{beyond} |"
        )
    lines += [
        "",
        "Target: one computation of the next-state value on a replay batch (SB3: its own target; "
        "robust: all perturbed draws and the centres through actor and twin target critics). "
        "Beyond its forward pass: the robust target with actor and critics replaced by a stub "
        "returning preallocated values (draws, levels, plan, functional, bookkeeping).",
        "",
        "Command: `python experiments/bench_throughput_continuous.py "
        f"--env {args.env} --task {args.task} --levels {' '.join(map(str, args.levels))} "
        f"--steps {args.steps} --rounds {args.rounds} --device {args.device}"
        + (f" --learning-starts {args.learning_starts}" if args.learning_starts else "")
        + (" --without-control-variate" if args.without_control_variate else "")
        + f" --out {args.out}`",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    md, table = args.out / "throughput.md", args.out / "throughput.csv"
    if not args.force and (md.exists() or table.exists()):
        raise OutputExistsError(f"{md} exists; pass --force to overwrite it")
    start = time.perf_counter()
    before = load_average()
    rows, targets = measure(args)
    after = load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    fields = [
        "agent", "steps_per_s", "ratio", "ratio_q1", "ratio_q3", "target_ms", "beyond_forward_ms"
    ]  # fmt: skip
    table_rows = [{**r, "target_ms": 1e3 * targets[r["agent"]]} for r in rows]
    atomic_write_text(table, csv_text(table_rows, fields), force=True)
    text = report(args, rows, targets, (before, after), time.perf_counter() - start)
    atomic_write_text(md, text, force=True)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
