"""Spread of the dynamics-set target across repeated estimates: RT-MLMC against SAA, per η.

With a trained CartPole Q-network (any saved DQN or RobustDQN), collects transitions of its
ε-greedy policy on nominal CartPole (their physics states from ``info["physics_state"]``) and
estimates the dynamics-set target ``y = softmin_η,p [r_p + γ(1 − d_p) max_a Q(s'_p, a)]`` over the
task's uncertainty set ``--repeats`` times per transition, for each estimator and η. Reports, per
setting: the mean target, the mean over transitions of the standard deviation across repeats,
the share of estimates outside ``[min, max]`` of the one-step values (an unbiased RT-MLMC estimate
may leave that range; an SAA soft-min never does), and the most extreme estimate.

Writes ``OUT/variance.md`` and ``OUT/variance.csv``.

    python experiments/dynamics_target_variance.py \\
        --model experiments/results/sweep_cartpole_dynamics/robust-dqn-dynamics__eta=30__seed100/model.zip
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import robust_rl  # noqa: F401  (registers the envs)
from robust_rl.common.dynamics import DynamicsSet, DynamicsTarget, PhysicsReplaySamples
from robust_rl.envs import get_task
from robust_rl.io import atomic_write_text
from robust_rl.risk import FunctionalEstimator, entropic_min
from robust_rl.training import load_model

ENV = "robust_rl/CartPole-v1"


def collect(model, n: int, epsilon: float, seed: int) -> PhysicsReplaySamples:
    """``n`` transitions of the ε-greedy policy on nominal CartPole."""
    env = gym.make(ENV)
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "next", "rew", "done", "state")}
    obs, _ = env.reset(seed=seed)
    while len(rows["obs"]) < n:
        if rng.random() < epsilon:
            action = int(rng.integers(2))
        else:
            action = int(model.predict(obs, deterministic=True)[0])
        nxt, reward, terminated, truncated, info = env.step(action)
        for k, v in zip(
            rows,
            (obs, [action], nxt, [reward], [float(terminated)], info["physics_state"]),
            strict=False,
        ):
            rows[k].append(np.asarray(v))
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
    t = {k: torch.as_tensor(np.stack(v)) for k, v in rows.items()}
    return PhysicsReplaySamples(
        observations=t["obs"].float(),
        actions=t["act"].long(),
        next_observations=t["next"].float(),
        dones=t["done"].float(),
        rewards=t["rew"].float(),
        discounts=None,
        physics_states=np.stack(rows["state"]),
        buffer_actions=np.stack(rows["act"]),
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("experiments/results/dynamics_target_variance"))
    p.add_argument("--etas", type=float, nargs="+", default=[0.3, 3.0, 30.0, math.inf])
    p.add_argument("--max-level", type=int, default=4)
    p.add_argument("--transitions", type=int, default=256)
    p.add_argument("--repeats", type=int, default=64)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--gamma", type=float, default=None, help="default: the model's")
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = load_model(args.model)
    gamma = float(args.gamma if args.gamma is not None else model.gamma)
    samples = collect(model, args.transitions, args.epsilon, seed=0)
    resolved = DynamicsSet().resolve(get_task(ENV))
    net = model.q_net_target

    def values(obs: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        return net(obs).max(dim=1).values

    lines = [
        "# Spread of the dynamics-set target: RT-MLMC vs SAA",
        "",
        f"`{' '.join(['python', *sys.argv])}`",
        "",
        f"{args.transitions} transitions of the model's ε-greedy policy (ε = {args.epsilon}) on "
        f"nominal CartPole; the CartPole task's uncertainty set ({resolved.distribution}); "
        f"γ = {gamma:.4g}; {args.repeats} estimates per transition and setting; L = "
        f"{args.max_level} (SAA: 2^L draws).",
        "",
        "| estimator | η | mean target | mean std across repeats | outside [min, max] of the "
        "one-step values | most extreme estimate | mean evaluations |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    csv = ["estimator,eta,mean_target,mean_std,share_outside,min_estimate,evaluations"]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        low_high = one_step_range(resolved, samples, values, gamma, generator, draws=256)
        for estimator in ("rt-mlmc", "saa"):
            for eta in args.etas:
                f = FunctionalEstimator(
                    entropic_min(eta),
                    estimator=estimator,
                    max_level=args.max_level,
                    with_center=True,
                    sampler=resolved.sampler(),
                )
                target = DynamicsTarget(resolved, f)
                ys, evals = [], []
                for _ in range(args.repeats):
                    e, _ = target(samples, values, gamma, generator)
                    ys.append(e.per_point)
                    evals.append(e.n_evaluations / args.transitions)
                y = torch.stack(ys)  # (repeats, B)
                outside = ((y < low_high[0] - 1e-4) | (y > low_high[1] + 1e-4)).float().mean()
                row = (
                    estimator,
                    eta,
                    float(y.mean()),
                    float(y.std(dim=0).mean()),
                    float(outside),
                    float(y.min()),
                    float(np.mean(evals)),
                )
                lines.append(
                    f"| {row[0]} | {row[1]:g} | {row[2]:.2f} | {row[3]:.2f} | {100 * row[4]:.1f}% | "
                    f"{row[5]:.1f} | {row[6]:.2f} |"
                )
                csv.append(",".join(str(v) for v in row))
    lines += [
        "",
        "The one-step values' range per transition is taken over 256 draws of the set; over "
        f"these transitions they lie in [{float(low_high[0].min()):.1f}, "
        f"{float(low_high[1].max()):.1f}], and the mean width of a transition's range is "
        f"{float((low_high[1] - low_high[0]).mean()):.1f}. Wall "
        f"{(time.perf_counter() - start) / 60:.1f} min.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "variance.md", "\n".join(lines) + "\n", force=True)
    atomic_write_text(args.out / "variance.csv", "\n".join(csv) + "\n", force=True)
    print("\n".join(lines))
    return 0


def one_step_range(resolved, samples, values, gamma, generator, draws):
    """Per transition, the min and max of the one-step values ``r_p + γ(1 − d_p)V(s'_p)`` over
    ``draws`` parameter draws from the set."""
    batch = samples.physics_states.shape[0]
    params = torch.tensor(resolved.nominal, dtype=torch.float64).repeat(batch * draws, 1)
    resolved.sampler().sample_(params, generator)
    rows = np.repeat(np.arange(batch), draws)
    simulator = get_task(resolved.task_id).make_simulator()
    step = simulator.step(
        samples.physics_states[rows], samples.buffer_actions[rows], params.numpy()
    )
    v = values(torch.as_tensor(step.observations), torch.as_tensor(rows))
    y = (
        torch.as_tensor(step.rewards, dtype=torch.float32)
        + (1 - torch.as_tensor(step.terminated, dtype=torch.float32)) * gamma * v
    ).view(batch, draws)
    return y.min(dim=1).values, y.max(dim=1).values


if __name__ == "__main__":
    sys.exit(main())
