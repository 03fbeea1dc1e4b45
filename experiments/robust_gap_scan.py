"""How pessimistic the robust target is, per radius and η, with a trained SAC agent's own networks.

RobustSAC replaces the value of each next state by an entropic soft-min over a ball around it;
the difference, ``train/robust_gap`` (estimate minus the value at the next state), acts like a
per-step penalty on the reward that compounds through the discount. This script loads a saved
SB3 SAC model trained on the nominal MDP, collects next states with its deterministic policy,
puts its actor and critics into a RobustSAC and measures the mean gap for every (radius, η) in a
grid, the radius in units of each observation coordinate's standard deviation under random actions
(what ``radius_scale="std"`` measures from the replay buffer when learning starts). It is a map of
the search space for tuning, read from nominal states only: no perturbed MDP and no return is
evaluated. Writes ``OUT/<model stem>.md``.

    python experiments/robust_gap_scan.py --model experiments/results/continuous/hopper/sac-dr_seed2.zip \\
        --env robust_rl/Hopper-v5 --radii 0.005 0.01 0.02 0.05 0.1 --etas 0.1 0.7 2 5 20 inf \\
        --out experiments/results/robust_gap_scan
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch as th
from model_probe import ProbeArgs, load_probe, probe_parser, refuse_existing, rollout, write_report
from stable_baselines3 import SAC

import robust_rl  # noqa: F401  (registers the robust_rl/ env ids)
from robust_rl import RobustSAC
from robust_rl.errors import InvalidArgumentError


@dataclass
class Args(ProbeArgs):
    """Command-line arguments."""

    radii: list[float]
    etas: list[float]
    max_level: int
    scale_steps: int


def parse_args(argv: list[str] | None = None) -> Args:
    p = probe_parser(
        __doc__,
        model_help="a saved SB3 SAC model (.zip)",
        states=2048,
        repeats=10,
        repeats_help="targets per point (new draws)",
        out="experiments/results/robust_gap_scan",
    )
    p.add_argument("--radii", type=float, nargs="+", required=True, help="in std units")
    p.add_argument("--etas", type=float, nargs="+", required=True, help="η > 0 (inf allowed)")
    p.add_argument("--max-level", type=int, default=4, help="RT-MLMC truncation level")
    p.add_argument(
        "--scale-steps", type=int, default=10_000, help="random-action steps for the std"
    )
    args = Args(**vars(p.parse_args(argv)))
    if not args.radii or any(not r > 0 for r in args.radii):
        raise InvalidArgumentError(f"--radii must all be > 0, got {args.radii}")
    if not args.etas or any(not eta > 0 for eta in args.etas):
        raise InvalidArgumentError(f"--etas must all be > 0 (inf allowed), got {args.etas}")
    if args.states < 1 or args.repeats < 1 or args.scale_steps < 2:
        raise InvalidArgumentError("--states and --repeats must be >= 1, --scale-steps >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    out = args.out / f"{args.model.stem}.md"
    refuse_existing(out, args.force)
    th.manual_seed(args.seed)
    probe = load_probe(SAC, args.model, args.env, args.states, args.seed)
    sac, next_states, rewards, ent_coef = probe.model, probe.states, probe.rewards, probe.ent_coef
    random_states, _ = rollout(args.env, args.scale_steps, args.seed)
    std = random_states.std(axis=0).astype(np.float64)

    gaps: dict[tuple[float, float], list[float]] = {}
    centres: list[float] = []
    for radius in args.radii:
        for eta in args.etas:
            robust = RobustSAC(
                "MlpPolicy", args.env, radius=(radius * std).tolist(), eta=eta,
                max_level=args.max_level, policy_kwargs=sac.policy_kwargs, seed=args.seed,
                device="cpu",
            )  # fmt: skip
            robust.policy.load_state_dict(sac.policy.state_dict())
            gaps[radius, eta] = []
            with th.no_grad():
                for k in range(args.repeats):
                    robust._robust_generator.manual_seed(args.seed + k)
                    est = robust.robust_next_values(next_states, ent_coef)
                    assert est.center is not None
                    gaps[radius, eta].append(float((est.per_point - est.center).mean()))
                    centres.append(float(est.center.mean()))

    reward = float(rewards.mean())
    lines = [
        f"# Robust gap per radius and η with a trained SAC's networks ({args.model.stem})",
        "",
        f"Model `{args.model}` on `{args.env}`; {args.states} next states from its deterministic "
        f"policy (reset seeds {args.seed}…), mean reward per step there {reward:.3f}, mean "
        f"soft value at the next states {np.mean(centres):.2f}. Radius in units of each "
        f"coordinate's std over {args.scale_steps} random-action steps (ℓ∞ ball), RT-MLMC "
        f"L = {args.max_level} with the agent's shared action noise. Cell: mean over the states "
        f"of `estimate − value at the next state` (`train/robust_gap`), mean ± std over "
        f"{args.repeats} targets, and in brackets that gap as a share of the mean reward per "
        "step (the robust target acts on the Bellman backup like that much reward lost per step).",
        "",
        "| radius (std) | " + " | ".join(f"η = {eta:g}" for eta in args.etas) + " |",
        "|---:|" + "---:|" * len(args.etas),
    ]
    for radius in args.radii:
        cells = []
        for eta in args.etas:
            g = gaps[radius, eta]
            cells.append(f"{np.mean(g):+.3f} ± {np.std(g):.3f} ({np.mean(g) / abs(reward):+.1%})")
        lines.append(f"| {radius:g} | " + " | ".join(cells) + " |")
    lines += ["", f"Observation std under random actions: {np.array2string(std, precision=3)}."]
    write_report(out, lines, "robust_gap_scan.py", argv, time.perf_counter() - start, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
