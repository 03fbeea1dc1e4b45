"""Cost of the dynamics-set target: env-steps/s of RobustDQN with the physics set against SB3's DQN.

Same hyperparameters (``configs/robust_dqn_dynamics_cartpole.yaml``: the tuned DQN's, with the
CartPole task's uncertainty set), same seed and budget; the agents are interleaved over
``--repeats`` rounds so that machine noise hits all of them alike, and each ratio uses the median
env-steps/s. Then a per-gradient-step breakdown on a filled replay buffer, medians over interleaved
rounds: the whole gradient step of each agent, and the dynamics target's parts: the batched
simulation of every draw (``envs/simulators.py``), the target network's forward pass on the same
number of rows, and everything else (parameter draws, levels, gathers, the soft-min).

With ``--mujoco-task`` (e.g. ``robust_rl/Hopper-v5``), also the cost of the MuJoCo one-step
simulator per row (state, action, drawn masses and friction): the whole batched step, its
parameter writes (a ``ModelWriter`` and ``mj_setConst`` per row), and the raw MuJoCo steps it needs
(the same rows rolled out ``frame_skip`` steps with one model: ``mj_step`` in C, nothing else).

Writes ``OUT/dynamics.md`` and ``OUT/dynamics.csv``.

    python experiments/bench_dynamics.py --out experiments/results/throughput_dynamics
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import robust_rl.common.robust as robust_module
from robust_rl.io import atomic_write_text
from robust_rl.provenance import command_line, machine, wall_time
from robust_rl.training import load_config, make_model

CONFIG = Path(__file__).resolve().parent / "configs" / "robust_dqn_dynamics_cartpole.yaml"
ENV = "robust_rl/CartPole-v1"


def agents(levels: list[int], saa_levels: list[int]) -> list[tuple[str, str, dict]]:
    """(name, algorithm, config overrides) of every agent measured."""
    out: list[tuple[str, str, dict]] = [("DQN (SB3)", "dqn", {})]
    out += [
        (
            f"RobustDQN dynamics, RT-MLMC L={lv}",
            "robust-dqn",
            {"estimator": "rt-mlmc", "max_level": lv},
        )
        for lv in levels
    ]
    for lv in saa_levels:
        saa = {"estimator": "saa", "max_level": lv}
        out.append((f"RobustDQN dynamics, SAA L={lv}", "robust-dqn", saa))
        # the target network on all rows of a pass in one call (TARGET_CHUNK_ROWS unbounded)
        out.append((f"RobustDQN dynamics, SAA L={lv}, one call", "robust-dqn", {**saa, ONE: 1}))
    return out


#: an agent's override: its target network is called on all rows of a pass at once
ONE = "_target_in_one_call"


@contextmanager
def chunk_rows(overrides: dict) -> Iterator[dict]:
    """The config overrides without :data:`ONE`; while open, the target chunk size the agent
    asks for (unbounded with :data:`ONE`, the library's default otherwise)."""
    saved = robust_module.TARGET_CHUNK_ROWS
    robust_module.TARGET_CHUNK_ROWS = 2**62 if overrides.get(ONE) else saved
    try:
        yield {k: v for k, v in overrides.items() if k != ONE}
    finally:
        robust_module.TARGET_CHUNK_ROWS = saved


def config_for(algo: str, overrides: dict) -> dict:
    cfg = load_config(CONFIG)
    for key in ("n_timesteps", "n_envs"):
        cfg.pop(key, None)
    if algo == "dqn":
        for key in ("perturbation", "eta", "estimator", "max_level"):
            cfg.pop(key, None)
    return {**cfg, **overrides}


def throughput(specs: list[tuple[str, str, dict]], steps: int, repeats: int) -> dict[str, list]:
    """Env-steps/s of every agent, ``repeats`` interleaved rounds (fresh model each time)."""
    rates: dict[str, list[float]] = {name: [] for name, _, _ in specs}
    for _ in range(repeats):
        for name, algo, overrides in specs:
            with chunk_rows(overrides) as config:
                model = make_model(algo, ENV, config_for(algo, config), seed=0)
                start = time.perf_counter()
                model.learn(steps)
                rates[name].append(steps / (time.perf_counter() - start))
    return rates


def breakdown(specs: list[tuple[str, str, dict]], rounds: int, calls: int) -> dict[str, dict]:
    """Seconds per gradient step: the whole step, and the dynamics target's parts."""
    models = {}
    for name, algo, overrides in specs:
        with chunk_rows(overrides) as config:
            cfg = config_for(algo, config)
            model = make_model(algo, ENV, cfg, seed=0)
            model.learn(int(cfg["learning_starts"]) + 2 * int(cfg["train_freq"]))
        models[name] = (model, int(cfg["batch_size"]), overrides)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    for _ in range(rounds):
        for name, (model, batch, overrides) in models.items():
            rec = out[name]
            with chunk_rows(overrides):
                start = time.perf_counter()
                model.train(32, batch)
            rec.setdefault("step", []).append((time.perf_counter() - start) / 32)
            if getattr(model, "dynamics", None) is None:
                continue
            samples = model.replay_buffer.sample(batch)
            with torch.no_grad(), chunk_rows(overrides):
                start = time.perf_counter()
                for _ in range(calls):
                    model.robust_targets(samples, model._target_values, model.gamma)
                target = (time.perf_counter() - start) / calls
                rows = [e.n_evaluations for e, _ in model._robust_estimates]
                model._robust_estimates.clear()
                n = round(float(np.mean(rows)))
                sim = model._dynamics_target.simulator
                idx = np.random.default_rng(0).integers(0, batch, n)
                params = np.tile(model.dynamics.nominal, (n, 1))
                start = time.perf_counter()
                for _ in range(calls):
                    step = sim.step(
                        samples.physics_states[idx], samples.buffer_actions[idx], params
                    )
                simulate = (time.perf_counter() - start) / calls
                obs = torch.as_tensor(step.observations)
                # as the target calls it: in parts of TARGET_CHUNK_ROWS rows
                values = robust_module.in_chunks(model._target_values)
                index = torch.as_tensor(idx)
                start = time.perf_counter()
                for _ in range(calls):
                    values(obs, index)
                forward = (time.perf_counter() - start) / calls
            rec.setdefault("target", []).append(target)
            rec.setdefault("simulate", []).append(simulate)
            rec.setdefault("forward", []).append(forward)
            rec.setdefault("rows", []).append(float(n))
    return {name: {k: float(np.median(v)) for k, v in rec.items()} for name, rec in out.items()}


def mujoco_cost(task_id: str, rows: int, rounds: int) -> dict[str, float]:
    """Seconds per row: the simulator's batched step, its parameter writes, and the raw
    ``frame_skip`` MuJoCo steps of the same rows; medians over ``rounds``."""
    from mujoco import rollout

    from robust_rl.common.dynamics import DynamicsSet
    from robust_rl.envs import get_task

    task = get_task(task_id)
    sim = task.make_simulator()
    resolved = DynamicsSet().resolve(task)
    env = sim._env
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = np.tile(env.get_physics_state(), (rows, 1))
    states[:, sim._nq :] += rng.normal(0.0, 0.1, (rows, sim._nv))
    actions = rng.uniform(-1.0, 1.0, (rows, env.action_space.shape[0]))
    params = rng.uniform(resolved.low, resolved.high, (rows, len(resolved.names)))
    sim.step(states, actions, params)  # allocates the model pool
    init = np.zeros((rows, sim._nstate))
    init[:, 1:] = states
    control = np.repeat(actions[:, None, :], sim._frame_skip, axis=1)
    times: dict[str, list[float]] = {"step": [], "params": [], "mj_step": []}
    for _ in range(rounds):
        for key, fn in (
            ("step", lambda: sim.step(states, actions, params)),
            ("params", lambda: sim._pool(params)),
            ("mj_step", lambda: rollout.rollout(env.model, sim._datas, init, control)),
        ):
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) / rows)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/throughput_dynamics"))
    p.add_argument("--timesteps", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6])
    p.add_argument("--saa-levels", type=int, nargs="*", default=[4])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--mujoco-task", default=None, help="e.g. robust_rl/Hopper-v5")
    p.add_argument("--mujoco-rows", type=int, default=1024)
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = agents(args.levels, args.saa_levels)
    start = time.perf_counter()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rates = throughput(specs, args.timesteps, args.repeats)
    parts = breakdown(specs, args.rounds, args.calls)
    mj = mujoco_cost(args.mujoco_task, args.mujoco_rows, args.rounds) if args.mujoco_task else None
    wall = time.perf_counter() - start
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    base = float(np.median(rates["DQN (SB3)"]))
    lines = [
        "# The dynamics-set target's cost on CartPole",
        "",
        f"`{command_line('experiments/bench_dynamics.py')}`; {machine(torch_threads=1)}; "
        f"{args.repeats} interleaved rounds of "
        f"{args.timesteps:,} steps per agent, medians; load average {' '.join(load_before)} "
        f"before, {' '.join(load_after)} after; wall time {wall_time(wall)}.",
        "",
        "| agent | env-steps/s (median) | ratio to DQN | gradient step (µs) | rows per "
        "transition | target (µs/transition) | simulate | forward | other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    csv = ["agent,steps_per_s,ratio,step_us,rows,target_us,simulate_us,forward_us"]
    for name, _, _ in specs:
        rate = float(np.median(rates[name]))
        part = parts[name]
        step = 1e6 * part["step"]
        if "target" in part:
            batch = 64
            t, s, f = (1e6 * part[k] for k in ("target", "simulate", "forward"))
            cells = [
                f"{part['rows'] / batch:.2f}",
                f"{t / batch:.2f}",
                f"{s / batch:.2f}",
                f"{f / batch:.2f}",
                f"{(t - s - f) / batch:.2f}",
            ]
            csv.append(
                f"{name},{rate:.1f},{rate / base:.3f},{step:.1f},{part['rows']:.1f},{t:.1f},"
                f"{s:.1f},{f:.1f}"
            )
        else:
            cells = ["1", "–", "–", "–", "–"]
            csv.append(f"{name},{rate:.1f},1.000,{step:.1f},,,,")
        lines.append(
            f"| {name} | {rate:,.0f} | {rate / base:.2f} | {step:.0f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Per gradient step, batch 64: the target's parts per replay transition; *simulate* is "
        "the batched one-step simulation of all draws and centres, *forward* the target network on "
        "as many rows, *other* the rest of the target (parameter draws, levels, gathers, the "
        "soft-min).",
    ]
    if mj is not None:
        lines += [
            "",
            f"## {args.mujoco_task}: the one-step simulator per row",
            "",
            f"{args.mujoco_rows} rows (a state, an action, masses and friction drawn from the "
            f"set), one thread, medians over {args.rounds} rounds.",
            "",
            "| batched step | of which parameter writes | raw MuJoCo steps of the same rows | "
            "step / raw |",
            "|---:|---:|---:|---:|",
            f"| {1e6 * mj['step']:.1f} µs | {1e6 * mj['params']:.1f} µs | "
            f"{1e6 * mj['mj_step']:.1f} µs | {mj['step'] / mj['mj_step']:.2f} |",
        ]
        csv.append(
            f"{args.mujoco_task} simulator,,{mj['step'] / mj['mj_step']:.3f},"
            f"{1e6 * mj['step']:.1f},,,{1e6 * mj['params']:.1f},{1e6 * mj['mj_step']:.1f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "dynamics.md", "\n".join(lines) + "\n", force=True)
    atomic_write_text(args.out / "dynamics.csv", "\n".join(csv) + "\n", force=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
