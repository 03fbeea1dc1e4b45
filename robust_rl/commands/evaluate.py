"""``robust-rl evaluate``: evaluate saved models on the perturbed suite and a physics grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from robust_rl.envs import CARTPOLE_SUITE
from robust_rl.errors import InvalidArgumentError, OutputExistsError
from robust_rl.evaluation import DEFAULT_GRID, evaluate_grid, evaluate_suite, save_results
from robust_rl.training import load_model

SUITES = {"cartpole": CARTPOLE_SUITE}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate saved models on perturbed MDPs",
        description="Evaluate saved DQN/RobustDQN models (SB3 .zip files) on a suite of "
        "perturbed MDPs and, with --grid, on a grid of physics factors. Prints the table and, "
        "with --out, writes CSV/Markdown (and a PNG for the grid).",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="saved model files")
    p.add_argument("--suite", default="cartpole", choices=sorted(SUITES))
    p.add_argument("--episodes", type=int, default=100, help="episodes per MDP (default 100)")
    p.add_argument("--grid", action="store_true", help="also evaluate the physics grid")
    p.add_argument("--grid-episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED + i")
    p.add_argument("--out", default=None, help="folder for suite/grid CSV, Markdown and PNG")
    p.add_argument("--force", action="store_true", help="overwrite existing result files")
    p.set_defaults(handler=run)


def model_name(path: Path) -> str:
    """``runs/robust/model.zip`` -> ``robust``; ``dqn_seed0.zip`` -> ``dqn_seed0``."""
    return (
        path.parent.name if path.stem in ("model", "checkpoint") and path.parent.name else path.stem
    )


def run(args: argparse.Namespace) -> int:
    paths = [Path(m) for m in args.models]
    names = [model_name(p) for p in paths]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"models must have distinct names (file stem or run folder), got {names}"
        )
    if args.out is not None:
        out = Path(args.out)
        planned = [out / f"suite.{ext}" for ext in ("csv", "md")]
        if args.grid:
            planned += [out / f"grid.{ext}" for ext in ("csv", "md", "png")]
        existing = [str(p) for p in planned if p.exists()]
        if existing and not args.force:
            raise OutputExistsError(f"{existing[0]} already exists; pass --force to overwrite it")
    models = {name: load_model(p, device="cpu") for name, p in zip(names, paths, strict=True)}
    results = [evaluate_suite(models, SUITES[args.suite], n_episodes=args.episodes, seed=args.seed)]
    if args.grid:
        results.append(
            evaluate_grid(models, DEFAULT_GRID, n_episodes=args.grid_episodes, seed=args.seed)
        )
    for res in results:
        print(res.to_markdown())
        print()
    if args.out is not None:
        for path in save_results(results, args.out, force=args.force):
            print(f"wrote {path}")
    return 0
