"""Reproduce the paper's CartPole table: DQN vs RobustDQN vs its eta = inf ablation vs
domain-randomised DQN, and RobustDQN with the physics uncertainty set (the dynamics-set target,
eta tuned and eta = inf), each with hyperparameters chosen on validation MDPs.

Trains the four variants on nominal CartPole (the domain-randomised baseline on
``robust_rl/CartPoleDomainRandomized-v1``) with the same budget and training seeds 0..seeds-1,
through the sweep machinery (:mod:`robust_rl.sweep`: parallel trials, resume after a crash).
Their hyperparameters come from ``--configs``: by default the best point of each variant in the
CartPole re-tune (``experiments/sweeps/cartpole_radius_eta.yaml``: 8 Optuna points per variant,
ranked on the suite's validation MDPs with training seeds 100 and 101), so every variant had the
same tuning budget and none saw the test MDPs or the grid; ``--configs shipped`` uses the
shipped files instead. The dynamics-set variants take their config from ``--dynamics-configs``
(the best point, by validation mean, over the variants of ``experiments/sweeps/cartpole_dynamics.yaml``:
the estimator and eta chosen on the validation MDPs; the eta = inf ablation is the same file with
eta = inf). Every trial is evaluated on the ``cartpole`` suite's test MDPs (the
paper's four), its validation MDPs and a grid over the uncertainty set.

Writes ``OUT/<variant>_seed<k>.zip`` (each model), ``OUT/results.md`` (paper-style table, mean ±
std over seeds; with ``--previous DIR`` the table in DIR beside it; and whether the variants can
be told apart: permutation test over seeds), ``OUT/results.csv``, ``OUT/per_seed.csv``,
``OUT/evaluation_over_seeds.{json,md,png}`` (the PNG: the grid); the trials are under
``OUT/runs/``.

    python experiments/reproduce_cartpole.py --seeds 10 --out experiments/results/cartpole_tuned \\
        --previous experiments/results/cartpole

The dynamics-set table (100k steps, where the tuned DQN learns more reliably than at 50k; a grid
over all three axes of the set)::

    python experiments/reproduce_cartpole.py --seeds 20 --timesteps 100000 \
        --out experiments/results/cartpole_dynamics --grid-axes masspole length gravity \
        --grid-episodes 10 --max-parallel 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reproduction import (
    aggregate,
    best_point,
    comparison_table,
    per_seed,
    read_wide_csv,
    results_table,
    run_variants,
    write_report,
)

from robust_rl.errors import MissingFileError
from robust_rl.sweep import TrialResult, parse_sweep

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
TUNED = HERE / "results" / "sweep_radius_eta_v2" / "best"
TUNED_DYNAMICS = HERE / "results" / "sweep_cartpole_dynamics"
DYNAMICS_SWEEP = HERE / "sweeps" / "cartpole_dynamics.yaml"
#: the dynamics sweep's variants (one per estimator); the best point over them is used
DYNAMICS_TUNED = ("robust-dqn-dynamics", "robust-dqn-dynamics-saa")
SUITE = "cartpole"
PUBLISHED = {  # talk, CartPole, 500-step episodes: (regular Q-learning, robust Q-learning)
    "original": ("469.42 ± 19.03", "487.11 ± 9.09"),
    "heavy pole": ("187.63 ± 29.40", "394.12 ± 12.01"),
    "short pole": ("355.54 ± 28.89", "443.17 ± 9.98"),
    "strong gravity": ("271.41 ± 20.7", "418.42 ± 13.64"),
}
LABELS = {
    "dqn": "DQN",
    "robust-dqn": "RobustDQN",
    "robust-dqn-eta-inf": "RobustDQN η=∞",
    "dqn-dr": "DQN + domain rand.",
    "robust-dqn-dynamics": "RobustDQN dynamics set",
    "robust-dqn-dynamics-eta-inf": "RobustDQN dynamics η=∞",
}
#: variants whose config comes from --dynamics-configs
DYNAMICS = ("robust-dqn-dynamics", "robust-dqn-dynamics-eta-inf")
#: (algo, training env) of each variant
VARIANTS = {
    "dqn": ("dqn", "robust_rl/CartPole-v1"),
    "robust-dqn": ("robust-dqn", "robust_rl/CartPole-v1"),
    "robust-dqn-eta-inf": ("robust-dqn", "robust_rl/CartPole-v1"),
    "dqn-dr": ("dqn", "robust_rl/CartPoleDomainRandomized-v1"),
    "robust-dqn-dynamics": ("robust-dqn", "robust_rl/CartPole-v1"),
    "robust-dqn-dynamics-eta-inf": ("robust-dqn", "robust_rl/CartPole-v1"),
}
PAIRS = [
    ("robust-dqn-dynamics", "dqn"),
    ("robust-dqn-dynamics", "dqn-dr"),
    ("robust-dqn-dynamics", "robust-dqn-dynamics-eta-inf"),
    ("robust-dqn-dynamics-eta-inf", "dqn"),
    ("robust-dqn-dynamics-eta-inf", "dqn-dr"),
    ("robust-dqn-dynamics", "robust-dqn"),
    ("robust-dqn", "robust-dqn-eta-inf"),
    ("robust-dqn", "dqn"),
    ("robust-dqn", "dqn-dr"),
]
#: a seed "learned the nominal task" when its mean nominal return is at least this
LEARNED = 475.0


@dataclass
class Args:
    """Command-line arguments."""

    seeds: int
    """number of seeds (0..seeds-1) per variant"""
    out: Path
    """output folder"""
    configs: str
    """folder with <variant>.yaml for every variant (a sweep's best/), or 'shipped'"""
    dynamics_configs: Path
    """output folder of the dynamics sweep (its best point over all its variants is used)"""
    previous: Path | None
    """an earlier run's output folder whose table is shown beside the new one"""
    max_parallel: int
    """trials at once (one torch thread each)"""
    backend: str
    """sweep backend: local or ray"""
    address: str | None
    """Ray cluster address (backend ray); default: a private Ray"""
    episodes: int
    """evaluation episodes per test MDP and model (reset seeds 10000, 10001, ...)"""
    tune_episodes: int
    """episodes per validation MDP (reset seeds 20000, ...; reported, not used to choose)"""
    grid_points: int
    """grid points per axis over the suite's uncertainty set (0: no grid)"""
    grid_axes: list[str]
    """grid axes (the grid has grid_points ** len(grid_axes) points)"""
    grid_episodes: int
    """evaluation episodes per grid point and model"""
    timesteps: int | None
    """override the configs' training budget (default: 50,000 steps, the RL Zoo's)"""
    variants: list[str] | None
    """variants to train now (default: every variant with a config; all are reported)"""
    select: str
    """the policy evaluated: 'last' (end of training) or 'best' (best validation checkpoint)"""
    checkpoints: int
    """validation checkpoints per run with --select best (every timesteps/checkpoints steps)"""
    checkpoint_episodes: int
    """episodes per validation MDP at each checkpoint (reset seeds 20000, ...)"""


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("experiments/results/cartpole_tuned"))
    p.add_argument("--configs", default=str(TUNED))
    p.add_argument("--dynamics-configs", type=Path, default=TUNED_DYNAMICS)
    p.add_argument("--previous", type=Path, default=None)
    p.add_argument("--max-parallel", type=int, default=os.cpu_count() or 1)
    p.add_argument("--backend", default="local", choices=("local", "ray"))
    p.add_argument("--address", default=None)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--tune-episodes", type=int, default=20)
    p.add_argument("--grid-points", type=int, default=4)
    p.add_argument("--grid-axes", nargs="+", default=["masspole", "length"])
    p.add_argument("--grid-episodes", type=int, default=20)
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--variants", nargs="+", default=None, choices=list(LABELS))
    p.add_argument("--select", default="last", choices=("last", "best"))
    p.add_argument("--checkpoints", type=int, default=10)
    p.add_argument("--checkpoint-episodes", type=int, default=5)
    return Args(**vars(p.parse_args()))


def _relative(path: str) -> str:
    """``path`` relative to the repository when it lies inside it (tables name no home folder)."""
    p = Path(path).resolve()
    return str(p.relative_to(HERE.parent)) if p.is_relative_to(HERE.parent) else str(path)


def variant_configs(configs: str, dynamics: Path | None = None) -> dict[str, tuple[Path, dict]]:
    """``{variant: (config file, fixed params)}`` (the dynamics-set variants when ``dynamics``
    holds their file; with ``"shipped"``, the shipped dynamics config)."""
    found = {}
    f = (
        CONFIGS / "robust_dqn_dynamics_cartpole.yaml"
        if configs == "shipped"
        else None
        if dynamics is None
        else best_point(DYNAMICS_SWEEP, dynamics, DYNAMICS_TUNED)
    )
    if f is not None and f.is_file():
        found = {DYNAMICS[0]: (f, {}), DYNAMICS[1]: (f, {"eta": math.inf})}
    return {**_base_configs(configs), **found}


def _base_configs(configs: str) -> dict[str, tuple[Path, dict]]:
    if configs == "shipped":
        dqn, robust = CONFIGS / "dqn_cartpole.yaml", CONFIGS / "robust_dqn_cartpole.yaml"
        return {
            "dqn": (dqn, {}),
            "robust-dqn": (robust, {}),
            "robust-dqn-eta-inf": (robust, {"eta": math.inf}),
            "dqn-dr": (dqn, {}),
        }
    folder = Path(configs)
    files = {v: folder / f"{v}.yaml" for v in LABELS if v not in DYNAMICS}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise MissingFileError(
            f"--configs: {folder} lacks {', '.join(missing)} (expected a sweep's best/ folder "
            "with one <variant>.yaml per variant, or 'shipped')"
        )
    return {v: (f, {}) for v, f in files.items()}


def sweep_file(args: Args) -> dict:
    """The sweep, as a sweep file would hold it: one point per variant."""
    budget = {"n_timesteps": args.timesteps} if args.timesteps else {}
    search = (
        {
            "select": "best",
            "checkpoints": args.checkpoints,
            "checkpoint_episodes": args.checkpoint_episodes,
        }
        if args.select == "best"
        else {}
    )
    return {
        "name": "reproduce_cartpole",
        "env": "robust_rl/CartPole-v1",
        "seeds": list(range(args.seeds)),
        "evaluation": {
            "suite": SUITE,
            "tune_episodes": args.tune_episodes,
            "episodes": args.episodes,
            "grid_points": args.grid_points,
            "grid_axes": args.grid_axes,
            "grid_episodes": args.grid_episodes,
        },
        **({"search": search} if search else {}),
        "variants": {
            v: {
                "algo": VARIANTS[v][0],
                "env": VARIANTS[v][1],
                "config": str(path),
                "params": {**params, **budget},
            }
            for v, (path, params) in variant_configs(args.configs, args.dynamics_configs).items()
        },
    }


def main() -> int:
    args = parse_args()
    known = variant_configs(args.configs, args.dynamics_configs)
    if args.variants is None:
        args.variants = list(known)
    lacking = [v for v in args.variants if v not in known]
    if lacking:
        raise MissingFileError(
            f"--variants {' '.join(lacking)}: no finished trials in {args.dynamics_configs} "
            "(run experiments/sweeps/cartpole_dynamics.yaml first, or pass --dynamics-configs)"
        )
    start = time.perf_counter()
    spec = parse_sweep(sweep_file(args))
    variants = [v.name for v in spec.variants]
    title = "reproduce_cartpole"
    results = run_variants(
        spec,
        args.variants,
        args.out,
        backend=args.backend,
        max_parallel=args.max_parallel,
        address=args.address,
        title=title,
    )
    failed = [r for r in results if r.status == "failed"]
    done = [r for r in results if r.ok]
    if not done:
        print("no finished trials")
        return 1
    # the tables show the variants with finished trials in this folder
    variants = [v for v in variants if any(r.trial.variant == v for r in done)]
    over = aggregate(done, args.out)
    previous = read_wide_csv(args.previous / "results.csv") if args.previous else {}
    extra = {}
    for v, cells in previous.items():
        extra[f"before: {LABELS.get(v, v)}"] = [cells.get(m, "–") for m in PUBLISHED]
    extra["paper: regular Q"] = [PUBLISHED[m][0] for m in PUBLISHED]
    extra["paper: robust Q"] = [PUBLISHED[m][1] for m in PUBLISHED]
    configs = "shipped files" if args.configs == "shipped" else f"`{_relative(args.configs)}`"
    if any(v in variants for v in DYNAMICS):
        configs += f"; the dynamics-set variants from `{_relative(str(known[DYNAMICS[0]][0]))}`"
    nominal = {v: per_seed(done, v, "nominal") for v in variants}
    pairs = [p for p in PAIRS if p[0] in variants and p[1] in variants]
    learned = [r for r in done if per_seed([r], r.trial.variant, "nominal")[0] >= LEARNED]
    counts = ", ".join(f"{LABELS[v]} {len(nominal[v])}" for v in variants)
    lines = [
        "# CartPole: DQN, domain-randomised DQN and the robust targets (observation ball, "
        "physics set)",
        "",
        "Return (mean ± std over training seeds of each seed's mean over "
        f"{args.episodes} evaluation episodes; 500-step episodes) on the `{SUITE}` suite's test "
        "MDPs. All trained on nominal CartPole (the DR baseline on randomised physics) with the "
        f"RL Zoo DQN budget; hyperparameters from {configs}. Training seeds 0, 1, ... per "
        f"variant: {counts}.",
        *(
            [
                "",
                f"Each run is evaluated with its policy at the best of {args.checkpoints} "
                "validation checkpoints (every "
                f"1/{args.checkpoints} of training; mean return over the validation MDPs, "
                f"{args.checkpoint_episodes} episodes each; the earliest among ties): "
                "`search.select: best`, the same rule for every variant; the chosen checkpoint "
                "is in each trial's `result.json` (`selected`).",
            ]
            if args.select == "best"
            else []
        ),
        "",
        *results_table(over, done, variants, LABELS, extra),
        "",
        "Seeds whose mean return on the nominal MDP is ≥ 475: "
        + ", ".join(
            f"{LABELS[v]} {sum(x >= LEARNED for x in nominal[v])}/{len(nominal[v])}"
            for v in variants
        )
        + ".",
        "",
        f"Grid: every point of a {args.grid_points}-per-axis grid over "
        f"{', '.join(args.grid_axes)} (the suite's uncertainty set), {args.grid_episodes} "
        "episodes per point; `evaluation_over_seeds.png`. 'Grid worst case (per seed)' is the "
        "mean ± std over seeds of each seed's worst grid point. Per-seed numbers: `per_seed.csv`, `runs/trials.csv`.",
    ]
    if args.previous:
        lines += [
            "",
            f"'before' columns: the table in `{args.previous}/results.md` (its own protocol is "
            "stated there).",
        ]
    if not pairs:
        lines += ["", "No compared pair among the variants in this folder."]
    else:
        lines += comparison_section(done, learned, pairs)
    wall = time.perf_counter() - start
    return write_report(
        args.out, lines, over, done, failed, variants, "reproduce_cartpole.py", wall
    )


def comparison_section(
    done: list[TrialResult], learned: list[TrialResult], pairs: list[tuple[str, str]]
) -> list[str]:
    """The permutation tests of every compared pair, over all seeds and over the seeds that
    learned the nominal task."""
    return [
        "",
        "## Can the variants be told apart?",
        "",
        "Difference of the means over training seeds, its 95% bootstrap interval, and the "
        "two-sided permutation p-value of equal means (`robust_rl.evaluation.compare_means`; "
        "(MC): 20,000 random relabellings).",
        "",
        *comparison_table(done, pairs, LABELS),
        "",
        f"### Only the seeds that learned the nominal task (nominal return ≥ {LEARNED:.0f})",
        "",
        "A post-hoc cut (it conditions on the outcome): it separates robustness from learning "
        "failures, and is no substitute for the table over all seeds above.",
        "",
        *comparison_table(learned, pairs, LABELS),
    ]


if __name__ == "__main__":
    sys.exit(main())
