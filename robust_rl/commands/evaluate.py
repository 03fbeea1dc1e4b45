"""``robust-rl evaluate``: a robustness report for saved SB3 models (any algorithm).

``robust-rl evaluate MODEL... --suite NAME|FILE [--grid [--points N]] [--attack A --epsilon E...]``
evaluates every model on the suite's test (or validation) MDPs, optionally on the inclusive grid
over its uncertainty set and under an observation attack, prints Markdown tables and, with
``--out``, writes ``suite``/``grid``/``attack`` ``.json``/``.csv``/``.md`` (and ``.png``) files.
The algorithm of each model is read from its file (:func:`robust_rl.evaluation.load_model`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from robust_rl._files import FolderLock, check_output_folder, refuse_existing
from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.evaluation import (
    ATTACKS,
    evaluate_attacks,
    evaluate_grid,
    evaluate_suite,
    get_suite,
    load_model,
    save_results,
    suite_names,
)
from robust_rl.evaluation.models import check_model_env

__all__ = ["add_parser", "model_name", "run"]

_OUTPUTS = {
    "suite": ("json", "csv", "md"),
    "grid": ("json", "csv", "md", "png"),
    "attack": ("json", "csv", "md", "png"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="robustness report for saved SB3 models: suite, grid, observation attacks",
        description="Evaluate saved Stable-Baselines3 models (DQN, RobustDQN, PPO, A2C, SAC, "
        "TD3, ...; the algorithm is read from each file) on a suite's MDPs; with --grid on an "
        "inclusive grid over its uncertainty set (average and worst case); with --attack under "
        "an observation attack for each --epsilon. Prints Markdown tables and, with --out, "
        "writes JSON/CSV/Markdown (and PNG figures).",
    )
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="saved model files (.zip), or run folders (robust-rl train's, an RL Zoo run's)",
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="NAME|FILE",
        help=f"a registered suite ({', '.join(suite_names())}) or a suite YAML file (default: "
        "the suite whose task the models' observation and action spaces fit)",
    )
    p.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="MDPs of the suite to report (default: test; validation is for tuning)",
    )
    p.add_argument("--episodes", type=int, default=100, help="episodes per MDP (default 100)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses reset seed SEED + i")
    g = p.add_argument_group("grid over the uncertainty set")
    g.add_argument("--grid", action="store_true", help="also evaluate the grid")
    g.add_argument("--points", type=int, default=5, help="grid points per axis (default 5)")
    g.add_argument("--axes", nargs="+", default=None, help="parameters to vary (default: all)")
    g.add_argument(
        "--grid-episodes", type=int, default=10, help="episodes per grid point (default 10)"
    )
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="grid: worker processes (--no-lockstep, --backend ray) or threads stepping a MuJoCo "
        "robot in lockstep (default 1)",
    )
    g.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="run the grid's workers here or on a Ray cluster (default local)",
    )
    g.add_argument("--address", default=None, help="Ray cluster address (--backend ray)")
    g.add_argument(
        "--no-lockstep",
        action="store_true",
        help="suite, grid and attacks: step each MDP's (each radius's) episodes in their own "
        "envs (the reference path) instead of all (MDP, episode) rows together on the task's "
        "batched simulator (the default with --backend local for every task with one; "
        "--workers K then steps a MuJoCo robot's rows on K threads)",
    )
    a = p.add_argument_group("observation attacks")
    a.add_argument("--attack", choices=ATTACKS, default=None, help="attack to evaluate")
    a.add_argument(
        "--epsilon",
        type=float,
        nargs="+",
        default=[0.0, 0.05, 0.1, 0.2],
        help="attack radii (default: 0 0.05 0.1 0.2)",
    )
    a.add_argument(
        "--epsilon-scale",
        choices=("absolute", "std", "random", "normalized"),
        default="absolute",
        help="(default absolute) radius in observation units; times each coordinate's std on the model's clean "
        "episodes (std); or times its std under uniformly random actions, the same for every "
        "model (random); or in the units of the models' VecNormalize statistics (normalized)",
    )
    a.add_argument("--attack-episodes", type=int, default=None, help="default: --episodes")
    a.add_argument("--attack-steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument(
        "--vecnormalize",
        default="auto",
        metavar="auto|none|FILE",
        help="observation statistics of a run trained with VecNormalize, put in front of each "
        "model (clean and attacked observations alike): auto (default) takes vecnormalize.pkl "
        "beside each model or in the one folder beside it (as the RL Zoo saves it); none "
        "evaluates on raw observations; FILE applies that file to every model",
    )
    p.add_argument("--out", default=None, help="folder for the JSON/CSV/Markdown/PNG files")
    p.add_argument("--force", action="store_true", help="overwrite existing result files")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bars on stderr (the tables still print)"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="load the models with SB3's own loader, which runs the code their pickled fields "
        "name; by default nothing from a model file is run and a file that needs code is refused",
    )
    p.set_defaults(handler=run)


def model_name(path: Path) -> str:
    """``runs/robust/model.zip`` -> ``robust``; ``dqn_seed0.zip`` -> ``dqn_seed0``; a run folder
    (``runs/robust``, an RL Zoo run ``logs/sac/Pendulum-v1_1``) -> its name."""
    if path.is_dir():
        return path.name
    return (
        path.parent.name if path.stem in ("model", "checkpoint") and path.parent.name else path.stem
    )


def statistics_file(path: Path, choice: str) -> Path | None:
    """The ``VecNormalize`` statistics for the model at ``path`` under ``--vecnormalize``."""
    from robust_rl.evaluation.normalization import find_vecnormalize

    if choice == "none":
        return None
    if choice == "auto":
        return find_vecnormalize(path)
    return Path(choice)


def _with_statistics(name: str, model: Any, file: Path | None) -> Any:
    """``model`` behind the observation statistics in ``file``, if any (said on stderr)."""
    from robust_rl.evaluation.normalization import NormalizedModel, load_vecnormalize

    if file is None:
        return model
    print(f"model {name!r}: observations normalised with {file}", file=sys.stderr)
    return NormalizedModel(model, load_vecnormalize(file))


def run(args: argparse.Namespace) -> int:
    from robust_rl.evaluation.models import model_in_folder

    given = [Path(m) for m in args.models]
    names = [model_name(p) for p in given]
    paths = [model_in_folder(p) if p.is_dir() else p for p in given]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"models must have distinct names (file stem or run folder), got {names}"
        )
    kinds = ["suite"] + (["grid"] if args.grid else []) + (["attack"] if args.attack else [])
    if args.attack:  # before the suite runs, not after
        from robust_rl.evaluation.attack_eval import check_epsilons

        check_epsilons(args.epsilon)
    if args.grid and args.suite is not None:  # bad --points or --axes: refused before any work
        from robust_rl.evaluation.suites import grid_points

        grid_points(get_suite(args.suite), args.points, args.axes)
    if args.vecnormalize not in ("auto", "none") and not Path(args.vecnormalize).is_file():
        raise MissingFileError(f"--vecnormalize: {args.vecnormalize} does not exist")
    stats = [statistics_file(p, args.vecnormalize) for p in paths]  # looked up once, here
    normalised = [p for p, f in zip(paths, stats, strict=True) if f is not None]
    if normalised and args.grid and (args.backend != "local" or args.workers > 1):
        raise InvalidArgumentError(
            "--vecnormalize: models with observation statistics are evaluated in this process; "
            f"drop --workers/--backend ray for {', '.join(map(str, normalised))} (or --vecnormalize none)"
        )
    if args.grid and args.backend == "ray" and args.address is not None:
        from robust_rl._ray import check_reachable

        check_reachable(args.address)  # before the suite runs, not after
    if args.out is None:
        return _evaluate(args, paths, names, kinds, stats)
    out = Path(args.out)
    check_output_folder("--out", out)
    with FolderLock(out, "robust-rl evaluate"):
        return _evaluate(args, paths, names, kinds, stats)


def _evaluate(
    args: argparse.Namespace,
    paths: list[Path],
    names: list[str],
    kinds: list[str],
    stats: list[Path | None],
) -> int:
    if args.out is not None:
        planned = (Path(args.out) / f"{kind}.{ext}" for kind in kinds for ext in _OUTPUTS[kind])
        refuse_existing(planned, args.force)
    models = {
        n: _with_statistics(n, load_model(p, device="cpu", trust=args.trust), f)
        for n, p, f in zip(names, paths, stats, strict=True)
    }
    if args.suite is None:
        from robust_rl.evaluation.models import infer_suite
        from robust_rl.evaluation.suites import grid_points

        args.suite = infer_suite(models)
        if args.grid:  # before the suite runs
            grid_points(get_suite(args.suite), args.points, args.axes)
    nominal_id = get_suite(args.suite).nominal_id
    for n, model in models.items():
        check_model_env(model, nominal_id, f"model {n!r}")
        if args.attack:  # an attack a model cannot take is refused before any episode runs
            from robust_rl.evaluation.attacks import resolve_attack

            resolve_attack(args.attack, model)
    common: dict[str, Any] = {
        "seed": args.seed,
        "lockstep": False if args.no_lockstep else None,
        "progress": not args.quiet,
    }
    results = [
        evaluate_suite(models, args.suite, n_episodes=args.episodes, split=args.split, **common)
    ]
    if args.grid:
        grid_models = (
            models
            if args.backend == "local"
            else dict(zip(names, [str(p) for p in paths], strict=True))
        )
        results.append(
            evaluate_grid(
                grid_models,
                args.suite,
                n_episodes=args.grid_episodes,
                points=args.points,
                axes=args.axes,
                n_workers=args.workers,
                backend=args.backend,
                address=args.address,
                **common,
            )
        )
    if args.attack:
        results.append(
            evaluate_attacks(
                models,
                args.suite,
                n_episodes=args.attack_episodes or args.episodes,
                attack=args.attack,
                epsilons=args.epsilon,
                scale=args.epsilon_scale,
                split=args.split,
                steps=args.attack_steps,
                **common,
            )
        )
    for res in results:
        print(res.to_markdown())
    if args.out is not None:
        for path in save_results(results, args.out, force=args.force):
            print(f"wrote {path}")
    return 0
