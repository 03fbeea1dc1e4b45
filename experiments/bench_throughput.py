"""Throughput of RobustDQN relative to SB3's DQN (env-steps/s), measured in one run, with a profile.

Same hyperparameters (the RL Zoo CartPole config), same seed and budget; the agents are
interleaved over ``--repeats`` rounds so that machine noise hits all of them alike, and the ratio
uses the median steps/s of each. Then a per-gradient-step profile on a filled replay buffer:

* the whole gradient step (``model.train``) of DQN and of each RobustDQN variant, interleaved;
* the robust target (``robust_next_values``) split into its *forward rows* (the target network on
  the perturbed next states and the centres: the method) and *everything else* (level draw, index
  plan, noise, gathers, the set functional, the combination), measured by calling the target with
  the network replaced by a stub that returns a preallocated output of the same shape;
* DQN's own target (one forward pass on the batch and a max) for comparison.

Writes ``OUT/throughput.md``, ``OUT/throughput.csv`` and ``OUT/profile.csv``; records the load
average (``/proc/loadavg``) before and after, since other processes on the machine skew timings.

    python experiments/bench_throughput.py --out experiments/results/throughput
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from robust_rl.io import atomic_write_text
from robust_rl.provenance import replicate_lines
from robust_rl.risk.functionals import EntropicFunctional
from robust_rl.training import load_config, make_model

CONFIGS = Path(__file__).resolve().parent / "configs"


def variants(
    levels: list[int], saa_levels: list[int], basic: bool = False
) -> list[tuple[str, str, dict]]:
    """(name, algorithm, overrides of the shipped config) for every agent measured.

    :param basic: DQN and the RT-MLMC levels only (runs against code without ``level_sampling``).
    """
    out: list[tuple[str, str, dict]] = [("DQN (SB3)", "dqn", {})]
    for level in levels:
        out.append((f"RobustDQN RT-MLMC L={level}", "robust-dqn", {"max_level": level}))
    ref = 4 if 4 in levels else levels[0]
    out.append(
        (
            f"RobustDQN RT-MLMC L={ref}, one batch per target pass",
            "robust-dqn",
            {"max_level": ref, "target_batches": 1},
        )
    )
    if basic:
        return out
    out.append(
        (
            f"RobustDQN RT-MLMC L={ref}, systematic levels",
            "robust-dqn",
            {"max_level": ref, "level_sampling": "systematic"},
        )
    )
    out.append(
        (
            f"RobustDQN RT-MLMC L={ref}, no control variate",
            "robust-dqn",
            {"max_level": ref, "control_variate": False},
        )
    )
    for level in saa_levels:
        out.append(
            (
                f"RobustDQN SAA L={level}",
                "robust-dqn",
                {"estimator": "saa", "max_level": level, "control_variate": None},
            )
        )
    return out


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class _StubNet(torch.nn.Module):
    """Stands in for the target network: returns a preallocated output of the right shape."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out[: z.shape[0]]


def _timer(device: str) -> Callable[[Callable[[], object], int], float]:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn: Callable[[], object], n: int) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - start) / n

    return timed


def profile(
    models: dict[str, tuple[BaseAlgorithm, int, int]],
    device: str,
    rounds: int,
    calls: int,
) -> list[dict]:
    """Per-gradient-step timings (seconds), medians over ``rounds`` interleaved rounds.

    :param models: name -> (trained model with a filled replay buffer, batch size, gradient
        steps per update).
    """
    timed = _timer(device)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    for _ in range(rounds):
        for name, (model, batch, grad_steps) in models.items():
            for key, value in _profile_once(model, batch, grad_steps, timed, calls).items():
                samples[name].setdefault(key, []).append(value)
    return [
        {"agent": name, **{k: float(np.median(v)) for k, v in rec.items()}}
        for name, rec in samples.items()
    ]


def _profile_once(
    model: BaseAlgorithm,
    batch: int,
    grad_steps: int,
    timed: Callable[[Callable[[], object], int], float],
    calls: int,
) -> dict[str, float]:
    rec = {"step": timed(partial(model.train, grad_steps, batch), 1) / grad_steps}
    net = model.q_net_target
    with torch.no_grad():
        if not hasattr(model, "robust_next_values"):
            nxt = model.replay_buffer.sample(batch).next_observations
            rec["target"] = timed(lambda: net(nxt).max(dim=1), calls)
            rec["forward"] = timed(partial(net, nxt), calls)
            rec["rows"] = float(batch)
            return rec
        # the targets of `chunk` gradient steps are computed in one pass: report per step
        chunk = model._target_chunk(batch)
        nxt = torch.cat([model.replay_buffer.sample(batch).next_observations for _ in range(chunk)])
        target = partial(model.robust_next_values, nxt, chunk)
        rec["target"] = timed(target, calls) / chunk
        rows = [target().n_evaluations for _ in range(200)]
        rec["rows"] = float(np.mean(rows)) / chunk
        stub_in = torch.zeros(max(rows) * 4, *nxt.shape[1:], device=nxt.device)
        model.q_net_target = _StubNet(net(stub_in))
        try:
            rec["other"] = timed(target, calls) / chunk
        finally:
            model.q_net_target = net
        z = torch.zeros(round(float(np.mean(rows))), *nxt.shape[1:], device=nxt.device)
        rec["forward"] = timed(partial(net, z), calls) / chunk
        model._robust_estimates.clear()
    return rec


class _CompiledSegments:
    """The shipped functional with its segment reductions under ``torch.compile``."""

    def __init__(self, functional: EntropicFunctional) -> None:
        self.functional = functional
        self.segment_values = torch.compile(functional.segment_values, dynamic=True)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return self.functional(values)


def compile_check(robust_cfg: dict, device: str, calls: int, rounds: int) -> dict[str, float]:
    """The robust target's bookkeeping (network stubbed, the default number of replay batches per
    pass) with the set functional's segment reductions eager and under ``torch.compile``;
    medians over ``rounds`` interleaved rounds (seconds per gradient step)."""
    timed = _timer(device)
    model = make_model("robust-dqn", "CartPole-v1", robust_cfg, seed=0, device=device)
    model.learn(int(robust_cfg["learning_starts"]) + int(robust_cfg["train_freq"]))
    batch = int(robust_cfg["batch_size"])
    chunk = model._target_chunk(batch)
    nxt = torch.cat([model.replay_buffer.sample(batch).next_observations for _ in range(chunk)])
    est = model._target_estimator
    eager = est.functional
    compiled = _CompiledSegments(eager)
    stub_in = torch.zeros(nxt.shape[0] * 2 ** int(robust_cfg["max_level"]) * 2, *nxt.shape[1:])
    with torch.no_grad():
        model.q_net_target = _StubNet(model.q_net_target(stub_in.to(nxt.device)))
        target = partial(model.robust_next_values, nxt, chunk)
        est.functional = compiled
        for _ in range(20):  # compile (dynamic shapes: the row count changes every call)
            target()
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(rounds):
            for key, fn in (("eager", eager), ("compiled", compiled)):
                est.functional = fn
                times[key].append(timed(target, calls) / chunk)
        est.functional = eager
        model._robust_estimates.clear()
    return {k: float(np.median(v)) for k, v in times.items()}


def _compile_line(robust_cfg: dict, args: argparse.Namespace) -> str:
    try:
        compiled = compile_check(robust_cfg, args.device, args.profile_calls, args.profile_rounds)
    except Exception as exc:
        return f"`torch.compile` of the set functional failed: {type(exc).__name__}: {exc}"
    return (
        f"`torch.compile` of the set functional's segment reductions (shipped config, network "
        f"stubbed, per gradient step): {1e6 * compiled['eager']:.0f} µs eager, "
        f"{1e6 * compiled['compiled']:.0f} µs compiled."
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/throughput"))
    p.add_argument("--timesteps", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--levels", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--saa-levels", type=int, nargs="*", default=[4])
    p.add_argument("--batch-size", type=int, default=None, help="override the configs' 64")
    p.add_argument("--profile-rounds", type=int, default=5)
    p.add_argument("--profile-calls", type=int, default=300)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    p.add_argument(
        "--profile-only",
        action="store_true",
        help="skip the throughput runs: train each agent just past learning_starts, profile it",
    )
    p.add_argument(
        "--basic", action="store_true", help="DQN and the RT-MLMC levels only (see variants())"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    load_before = load_average()
    dqn_cfg = load_config(CONFIGS / "dqn_cartpole.yaml")
    robust_cfg = load_config(CONFIGS / "robust_dqn_cartpole.yaml")
    if args.batch_size is not None:
        dqn_cfg["batch_size"] = robust_cfg["batch_size"] = args.batch_size
    rates: dict[str, list[float]] = {}
    runs = variants(args.levels, args.saa_levels, args.basic)
    last: dict[str, tuple[BaseAlgorithm, int, int]] = {}
    if args.profile_only:
        args.repeats = 0
        for name, algo, extra in runs:
            cfg = {**(dqn_cfg if algo == "dqn" else robust_cfg), **extra}
            model = make_model(algo, "CartPole-v1", cfg, seed=0, device=args.device)
            model.learn(int(cfg["learning_starts"]) + int(cfg["train_freq"]))
            last[name] = (model, int(cfg["batch_size"]), int(cfg["gradient_steps"]))
            rates[name] = [float("nan")]
    for _ in range(args.repeats):
        for name, algo, extra in runs:
            cfg = {**(dqn_cfg if algo == "dqn" else robust_cfg), **extra}
            model = make_model(algo, "CartPole-v1", cfg, seed=0, device=args.device)
            t = time.perf_counter()
            model.learn(args.timesteps)
            rates.setdefault(name, []).append(args.timesteps / (time.perf_counter() - t))
            last[name] = (model, int(cfg["batch_size"]), int(cfg["gradient_steps"]))
    load_mid = load_average()
    for model, batch, _ in last.values():  # the profile samples from the replay buffer
        if model.replay_buffer.size() < batch:
            model.learn(batch, reset_num_timesteps=False)
    prof = profile(last, args.device, args.profile_rounds, args.profile_calls)
    if args.no_compile:
        compile_line = "`torch.compile` of the set functional: not measured (--no-compile)."
    else:
        compile_line = _compile_line(robust_cfg, args)
    load_after = load_average()
    base = float(np.median(rates["DQN (SB3)"]))
    lines = [
        "# RobustDQN throughput relative to SB3's DQN",
        "",
        f"CartPole-v1, RL Zoo DQN hyperparameters (batch {dqn_cfg['batch_size']}, 128 gradient "
        f"steps every 256 env steps, net [256, 256]), {args.timesteps} env steps per run, median "
        f"of {args.repeats} interleaved runs, device {args.device}, {args.threads} torch "
        f"thread(s). Robust: radius {robust_cfg['radius']}, eta {robust_cfg['eta']}, the shipped "
        f"config (control variate on, independent levels) unless stated.",
        "",
        "| agent | env-steps/s (median) | runs | ratio to DQN | ratio per round: median (quartiles) |",
        "|---|---:|---|---:|---:|",
    ]
    csv = ["agent,median_steps_per_s,ratio,round_ratio_median,round_ratio_q1,round_ratio_q3"]
    for name, _, _ in runs:
        med = float(np.median(rates[name]))
        cells = ", ".join(f"{r:.0f}" for r in rates[name])
        # each round runs every agent once, back to back: its ratio is paired against drift
        per_round = np.asarray(rates[name]) / np.asarray(rates["DQN (SB3)"])
        q1, mid, q3 = np.percentile(per_round, [25, 50, 75])
        lines.append(
            f"| {name} | {med:.0f} | {cells} | {med / base:.2f} | {mid:.3f} ({q1:.3f}–{q3:.3f}) |"
        )
        csv.append(f"{name},{med:.2f},{med / base:.4f},{mid:.4f},{q1:.4f},{q3:.4f}")
    dqn_prof = next(r for r in prof if r["agent"] == "DQN (SB3)")
    lines += [
        "",
        "## Profile per gradient step (µs, medians of "
        f"{args.profile_rounds} interleaved rounds on a filled buffer)",
        "",
        "*step*: one whole gradient step (`model.train`). *target*: the target's next values "
        "(DQN: forward pass and max; RobustDQN: `robust_next_values`, which computes the targets "
        "of `target_batches` gradient steps in one pass, divided by that number). *rows*: rows "
        "through the target network per gradient step (mean). *forward rows*: the target network "
        "alone on that many rows (one pass per `target_batches` steps). *everything else*: "
        "`robust_next_values` with the network replaced by a stub returning a preallocated "
        "output, i.e. the robust target's time beyond its forward pass, per gradient step. "
        "*extra vs DQN*: step time minus DQN's step time.",
        "",
        "| agent | step | extra vs DQN | target | rows | forward rows | everything else |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    pcsv = ["agent,step_us,target_us,rows,forward_us,other_us"]
    for r in prof:
        other = r.get("other")
        lines.append(
            f"| {r['agent']} | {1e6 * r['step']:.0f} | {1e6 * (r['step'] - dqn_prof['step']):+.0f} "
            f"| {1e6 * r['target']:.0f} | {r['rows']:.0f} | {1e6 * r['forward']:.0f} | "
            + (f"{1e6 * other:.0f} |" if other is not None else "n/a |")
        )
        pcsv.append(
            f"{r['agent']},{1e6 * r['step']:.1f},{1e6 * r['target']:.1f},{r['rows']:.1f},"
            f"{1e6 * r['forward']:.1f},{'' if other is None else f'{1e6 * other:.1f}'}"
        )
    wall = time.perf_counter() - start
    lines += ["", compile_line]
    load = (
        f"Load average (1, 5, 15 min) at the start: {load_before}; after the throughput runs: "
        f"{load_mid}; at the end: {load_after}."
    )
    lines += ["", *replicate_lines("experiments/bench_throughput.py", wall_s=wall, note=load)]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "throughput.md", text, force=True)
    atomic_write_text(args.out / "throughput.csv", "\n".join(csv) + "\n", force=True)
    atomic_write_text(args.out / "profile.csv", "\n".join(pcsv) + "\n", force=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
