"""Where RobustDQN's gradient step spends its time, part by part, against SB3's DQN.

Runs DQN's update (sample, target, online forward and loss, backward, clipping and optimizer step)
by hand for SB3's DQN, for RobustDQN and for a control (DQN that also runs its target network on
as many extra rows as the robust target, and discards them), on the same CartPole buffer size and
network, interleaved in rounds, and reports the median time of each part. The parts other than the target run the
same code for both agents: a difference there is what the robust target does to the rest of the
step (its larger activations and index tensors pass through the caches before the online network
runs). RobustDQN's target is computed here one replay batch per pass, as with
``target_batches=1``; ``bench_throughput.py`` measures the default, which computes the targets of
several gradient steps in one pass.

    python experiments/bench_step_breakdown.py --out experiments/results/throughput
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DQN

from robust_rl import RobustDQN
from robust_rl.io import atomic_write_text
from robust_rl.provenance import replicate_lines
from robust_rl.training import load_config

CONFIGS = Path(__file__).resolve().parent / "configs"
PARTS = ("sample", "target", "forward + loss", "backward", "clip + optimizer")
ROBUST_KEYS = ("radius", "eta", "norm", "estimator", "max_level", "target_form", "control_variate")


def one_step(
    model: DQN, robust: bool, times: list[list[float]], batch_size: int, extra_rows: int = 0
) -> None:
    """SB3's DQN update, timed part by part (RobustDQN: its robust target in place; with
    ``extra_rows``, DQN also runs its target network on that many more rows and discards them)."""
    clock = [time.perf_counter()]
    data = model.replay_buffer.sample(batch_size)
    clock.append(time.perf_counter())
    with th.no_grad():
        if robust:
            next_v = model.robust_next_values(data.next_observations).per_point.reshape(-1, 1)
        else:
            next_v = model.q_net_target(data.next_observations).max(dim=1)[0].reshape(-1, 1)
            if extra_rows:
                rows = data.next_observations.repeat(extra_rows // batch_size + 1, 1)
                model.q_net_target(rows[:extra_rows])
        target = data.rewards + (1 - data.dones) * model.gamma * next_v
    clock.append(time.perf_counter())
    q = th.gather(model.q_net(data.observations), dim=1, index=data.actions.long())
    loss = F.smooth_l1_loss(q, target)
    clock.append(time.perf_counter())
    model.policy.optimizer.zero_grad()
    loss.backward()
    clock.append(time.perf_counter())
    th.nn.utils.clip_grad_norm_(model.policy.parameters(), model.max_grad_norm)
    model.policy.optimizer.step()
    clock.append(time.perf_counter())
    for k in range(len(PARTS)):
        times[k].append(clock[k + 1] - clock[k])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per agent")
    p.add_argument("--steps", type=int, default=128, help="gradient steps per round")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args()
    th.set_num_threads(1)
    start = time.perf_counter()
    robust_cfg = load_config(CONFIGS / "robust_dqn_cartpole.yaml")
    cfg = load_config(CONFIGS / "dqn_cartpole.yaml")
    kwargs = {k: v for k, v in cfg.items() if k not in ("n_timesteps", "policy")}
    robust_kw = {k: robust_cfg[k] for k in ROBUST_KEYS if k in robust_cfg}
    filled = int(cfg["learning_starts"]) + int(cfg["train_freq"])
    agents = {
        "DQN (SB3)": (DQN("MlpPolicy", "CartPole-v1", seed=0, **kwargs).learn(filled), False),
        "RobustDQN": (
            RobustDQN("MlpPolicy", "CartPole-v1", seed=0, **kwargs, **robust_kw).learn(filled),
            True,
        ),
    }
    batch = int(cfg["batch_size"])
    robust_model = agents["RobustDQN"][0]
    with th.no_grad():  # rows the robust target passes beyond DQN's, on average
        data = robust_model.replay_buffer.sample(batch)
        rows = [robust_model.robust_next_values(data.next_observations).n_evaluations
                for _ in range(200)]  # fmt: skip
    robust_model._robust_estimates.clear()
    extra = round(float(np.mean(rows))) - batch
    control = f"DQN + {extra} discarded target rows"
    agents[control] = (DQN("MlpPolicy", "CartPole-v1", seed=0, **kwargs).learn(filled), False)
    times = {name: [[] for _ in PARTS] for name in agents}
    for _ in range(args.rounds):
        for name, (model, robust) in agents.items():
            model.policy.set_training_mode(True)
            n_extra = extra if name == control else 0
            for _ in range(args.steps):
                one_step(model, robust, times[name], batch, n_extra)
            if robust:
                model._robust_estimates.clear()
    med = {n: [float(np.median(t)) * 1e6 for t in parts] for n, parts in times.items()}
    wall = time.perf_counter() - start
    lines = [
        "# RobustDQN's gradient step, part by part, against SB3's DQN",
        "",
        "CartPole-v1, RL Zoo DQN hyperparameters (batch "
        f"{cfg['batch_size']}, net {cfg['policy_kwargs']['net_arch']}); RobustDQN adds the shipped "
        f"robust keys ({', '.join(f'{k}={v}' for k, v in robust_kw.items())}). Median µs per "
        f"gradient step over {args.rounds} interleaved rounds of {args.steps} steps, one torch "
        "thread, CPU.",
        "",
        "| agent | " + " | ".join(PARTS) + " | total |",
        "|---|" + "---:|" * (len(PARTS) + 1),
    ]
    for name, parts in med.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{v:.0f}" for v in parts) + f" | {sum(parts):.0f} |"
        )
    base = med["DQN (SB3)"]
    for name in ("RobustDQN", control):
        diff = [r - b for r, b in zip(med[name], base, strict=True)]
        lines.append(
            f"| {name} − DQN | " + " | ".join(f"{v:+.0f}" for v in diff) + f" | {sum(diff):+.0f} |"
        )
    lines += [
        "",
        "Every part but the target runs the same code for all three. The control runs DQN's own "
        f"target plus its target network on {extra} more rows (the robust target's extra rows on "
        "average), discarded: what passing that many rows costs the rest of the step with none of "
        "the robust bookkeeping.",
        "",
        *replicate_lines(
            "experiments/bench_step_breakdown.py",
            wall_s=wall,
            note=f"Load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        ),
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "step_breakdown.md", text, force=args.force)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
