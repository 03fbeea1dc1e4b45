"""How far the robust target of RobustSAC / RobustTD3 falls below the nominal value when the
policy's action noise is drawn independently for every perturbed copy of a next state, against
drawing it once per next state and sharing it (what the agents do).

At radius 0 every draw is the next state itself, so the soft-min should equal the value of the
next state: any gap is a minimum over the policy's own noise (SAC's action sample, TD3's
target smoothing), not robustness. This script loads a trained SAC or TD3 model, collects next
states by running its policy, puts its networks into the robust agent and measures, for each η,
the mean of ``estimate − value at the next state`` (``train/robust_gap``) both ways, with the same
perturbation draws and levels. Writes ``OUT/<name>.md``.

    python experiments/target_noise_bias.py \\
        --model experiments/results/continuous/inverted-pendulum/td3_seed0.zip --algo td3 \\
        --env robust_rl/InvertedPendulum-v5 --etas 0.1 0.56 1 inf --out experiments/results/target_noise_bias
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch as th
from model_probe import ProbeArgs, load_probe, probe_parser, refuse_existing, write_report
from stable_baselines3 import SAC, TD3

import robust_rl  # noqa: F401  (registers the robust_rl/ env ids)
from robust_rl import RobustSAC, RobustTD3
from robust_rl.errors import InvalidArgumentError

ALGOS = {"sac": (SAC, RobustSAC), "td3": (TD3, RobustTD3)}


@dataclass
class Args(ProbeArgs):
    """Command-line arguments."""

    algo: str
    etas: list[float]
    radius: float
    estimator: str
    max_level: int


def parse_args(argv: list[str] | None = None) -> Args:
    p = probe_parser(
        __doc__,
        model_help="a saved SB3 SAC or TD3 model (.zip)",
        states=1024,
        repeats=20,
        repeats_help="targets per η and way (new noise)",
        out="experiments/results/target_noise_bias",
    )
    p.add_argument("--algo", choices=sorted(ALGOS), required=True)
    p.add_argument("--etas", type=float, nargs="+", default=[0.1, 0.56, 1.0, math.inf])
    p.add_argument("--radius", type=float, default=0.0, help="absolute radius (0: noise only)")
    p.add_argument("--estimator", choices=("rt-mlmc", "saa"), default="rt-mlmc")
    p.add_argument("--max-level", type=int, default=4)
    args = Args(**vars(p.parse_args(argv)))
    if any(not eta > 0 for eta in args.etas):
        raise InvalidArgumentError(f"--etas must be > 0 (inf allowed), got {args.etas}")
    if args.radius < 0 or args.states < 1 or args.repeats < 1:
        raise InvalidArgumentError("--radius must be >= 0, --states and --repeats >= 1")
    return args


def independent_values(robust, ent_coef: th.Tensor | None):
    """The target's values with fresh action noise for every row (every draw and centre)."""

    def values(obs: th.Tensor, index: th.Tensor) -> th.Tensor:
        n, d = obs.shape[0], int(np.prod(robust.action_space.shape))
        if isinstance(robust, RobustSAC):
            return robust._soft_values(obs, th.randn(n, d), ent_coef)
        noise = th.randn(n, d) * robust.target_policy_noise
        noise = noise.clamp(-robust.target_noise_clip, robust.target_noise_clip)
        return robust._smoothed_values(obs, noise)

    return values


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    out = args.out / f"{args.model.stem}_radius{args.radius:g}.md"
    refuse_existing(out, args.force)
    th.manual_seed(args.seed)
    parent_cls, robust_cls = ALGOS[args.algo]
    probe = load_probe(parent_cls, args.model, args.env, args.states, args.seed)
    parent, states, ent_coef = probe.model, probe.states, probe.ent_coef

    rows = []
    for eta in args.etas:
        robust = robust_cls(
            "MlpPolicy", args.env, radius=args.radius, eta=eta, estimator=args.estimator,
            max_level=args.max_level, policy_kwargs=parent.policy_kwargs, seed=args.seed,
            device="cpu",
        )  # fmt: skip
        robust.policy.load_state_dict(parent.policy.state_dict())
        extra = (ent_coef,) if args.algo == "sac" else ()
        gaps: dict[str, list[float]] = {"shared": [], "independent": []}
        centre = []
        with th.no_grad():
            for k in range(args.repeats):
                for way in gaps:
                    robust._robust_generator.manual_seed(args.seed + k)  # same draws both ways
                    if way == "shared":
                        est = robust.robust_next_values(states, *extra)
                    else:
                        est = robust.robust_estimate(states, independent_values(robust, ent_coef))
                    assert est.center is not None
                    gaps[way].append(float((est.per_point - est.center).mean()))
                    centre.append(float(est.center.mean()))
        rows.append((eta, gaps, float(np.mean(centre))))

    lines = [
        f"# Robust target minus nominal value: action noise shared vs independent per draw ({args.algo.upper()})",
        "",
        f"Model `{args.model}` on `{args.env}`; {args.states} next states from its deterministic "
        f"policy (reset seeds {args.seed}…); radius {args.radius:g} (absolute), estimator "
        f"{args.estimator}, L = {args.max_level}; mean over the states of `estimate − value at "
        f"the next state`, mean ± std over {args.repeats} targets (new noise and draws each, the "
        "same draws and levels both ways). At radius 0 the right answer is 0.",
        "",
        "| η | shared noise (the agents) | independent noise per draw | mean value at the next states |",
        "|---:|---:|---:|---:|",
    ]
    for eta, gaps, centre in rows:
        cells = [f"{np.mean(g):+.4f} ± {np.std(g):.4f}" for g in gaps.values()]
        lines.append(f"| {eta:g} | {cells[0]} | {cells[1]} | {centre:.2f} |")
    write_report(out, lines, "target_noise_bias.py", argv, time.perf_counter() - start, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
