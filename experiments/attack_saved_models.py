"""Attack the saved models of a reproduction after the fact, with radii that are the same for
every model: return versus ε under one observation attack, mean ± std over training seeds per
variant, and whether two variants can be told apart at each ε.

The reproductions evaluate attacks with ε relative to each model's own observation std on clean
episodes (``scale="std"``). A policy that holds its state tightly sees tiny radii that way (a
balanced InvertedPendulum: pole-angle std 0.002 rad), so no agent moves. Here ε is relative to
the observation std under uniformly random actions on the nominal MDP (``scale="random"``,
:func:`robust_rl.evaluation.random_observation_scale`): the same radii for every model, in the
units of the robust agents' ``radius_scale="std"``.

Models are the ``<variant>_seed<k>.zip`` files a reproduction writes beside its tables (they are
not committed: run this on the machine that trained them). Writes ``OUT/attacks_<attack>.md``
``attacks_<attack>_over_seeds.{json,csv,md,png}`` (mean ± std over seeds per variant),
``attacks_<attack>_per_seed.csv`` (one row per model and ε) and ``attacks_<attack>_episodes.json``
(every episode's return; ``--resume`` reuses it for the models attacked with the same settings and
attacks only the models added since).

    python experiments/attack_saved_models.py --models experiments/results/continuous/inverted-pendulum \\
        --suite inverted-pendulum --attack critic --epsilons 0 0.1 0.25 0.5 \\
        --pairs robust-sac:sac robust-td3:td3 robust-sac:sac-dr robust-sac:robust-sac-eta-inf
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from reproduction import comparison_lines

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation import (
    EvaluationResults,
    EvaluationRow,
    aggregate_over_seeds,
    evaluate_attacks,
    get_suite,
    random_observation_scale,
    save_results,
)
from robust_rl.evaluation.attack_eval import RANDOM_SCALE_STEPS
from robust_rl.io import atomic_write_text
from robust_rl.provenance import replicate_lines

MODEL_FILE = re.compile(r"^(?P<variant>.+)_seed(?P<seed>\d+)\.zip$")


@dataclass
class Args:
    """Command-line arguments."""

    models: Path
    """folder with the ``<variant>_seed<k>.zip`` files"""
    suite: str
    """suite of the attacked MDP (its nominal test MDP)"""
    attack: str
    """random, pgd, q, critic or mad"""
    epsilons: list[float]
    """radii, times the random-action observation std"""
    episodes: int
    """episodes per model and ε"""
    seed: int
    """reset seed of the first episode"""
    steps: int
    """PGD steps"""
    pairs: list[str]
    """comparisons ``a:b`` (variant a minus variant b)"""
    out: Path | None
    """output folder (default: --models)"""
    force: bool
    """replace earlier files"""
    resume: bool
    """reuse the per-episode results of an earlier run with the same settings (models added
    since are attacked; the tables are rewritten)"""


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, required=True)
    p.add_argument("--suite", required=True)
    p.add_argument("--attack", default="critic", choices=("random", "pgd", "q", "critic", "mad"))
    p.add_argument("--epsilons", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--pairs", nargs="*", default=[])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse the per-episode results of an earlier run with the same settings",
    )
    return Args(**vars(p.parse_args(argv)))


def find_models(folder: Path) -> dict[str, Path]:
    """``{"<variant>_seed<k>": path}`` for every model file in ``folder``, sorted by name."""
    found = {p.stem: p for p in sorted(folder.glob("*.zip")) if MODEL_FILE.match(p.name)}
    if not found:
        raise InvalidArgumentError(
            f"--models: no <variant>_seed<k>.zip files in {folder} (models are written beside "
            "a reproduction's tables on the machine that trained them)"
        )
    return found


def parse_pairs(pairs: list[str], variants: set[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        a, sep, b = pair.partition(":")
        if not sep or a not in variants or b not in variants:
            raise InvalidArgumentError(
                f"--pairs: expected A:B with A and B among {sorted(variants)}, got {pair!r}"
            )
        out.append((a, b))
    return out


def reusable_rows(cache: Path, args: Args, scale: np.ndarray) -> dict[str, list[EvaluationRow]]:
    """``{model: rows}`` of an earlier run (``--resume``) whose every row was made under the
    same attack, radii, scale, episodes, seed; models attacked otherwise are attacked again."""
    if not cache.is_file():
        return {}
    by_model: dict[str, list[EvaluationRow]] = {}
    for row in EvaluationResults.from_json(cache.read_text()).rows:
        by_model.setdefault(row.model, []).append(row)
    wanted = sorted(float(e) for e in args.epsilons)

    def same(rows: list[EvaluationRow]) -> bool:
        return sorted(r.epsilon for r in rows) == wanted and all(
            r.n_episodes == args.episodes
            and r.seed == args.seed
            and np.allclose(r.epsilon_scale, scale, rtol=0, atol=0)
            and (args.attack in ("pgd", r.attack))
            for r in rows
        )

    return {m: rows for m, rows in by_model.items() if same(rows)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    out = args.out or args.models
    models = find_models(args.models)
    variant_of = {name: MODEL_FILE.match(f"{name}.zip")["variant"] for name in models}
    if not (args.force or args.resume):
        for path in (
            out / f"attacks_{args.attack}.md",
            out / f"attacks_{args.attack}_per_seed.csv",
        ):
            if path.exists():
                raise InvalidArgumentError(f"{path} already exists; pass --force to replace it")
    variants = list(dict.fromkeys(variant_of.values()))
    pairs = parse_pairs(args.pairs, set(variants))
    scale = random_observation_scale(args.suite, seed=args.seed)
    stem = f"attacks_{args.attack}"
    cache = out / f"{stem}_episodes.json"
    known = reusable_rows(cache, args, scale) if args.resume else {}
    todo = {name: str(path) for name, path in models.items() if name not in known}
    rows = [row for name in models if name in known for row in known[name]]
    if todo:
        fresh = evaluate_attacks(
            todo,
            args.suite,
            n_episodes=args.episodes,
            seed=args.seed,
            attack=args.attack,
            epsilons=args.epsilons,
            scale=scale,
            steps=args.steps,
        )
        rows += fresh.rows
    results = EvaluationResults(tuple(rows), name=stem, suite=get_suite(args.suite).name)
    atomic_write_text(cache, results.to_json(), force=True)
    print(f"models attacked now: {len(todo)}; reused from {cache.name}: {len(models) - len(todo)}")
    over = aggregate_over_seeds(results.merge(name=stem), group_of=variant_of.__getitem__)
    save_results(over, out, force=args.force or args.resume)

    def per_seed(variant: str, eps: float) -> list[float]:
        return [r.mean for r in results.rows if variant_of[r.model] == variant and r.epsilon == eps]

    seed_of = {name: int(MODEL_FILE.match(f"{name}.zip")["seed"]) for name in models}
    seeds = {v: sorted(seed_of[n] for n in models if variant_of[n] == v) for v in variants}
    lines = [
        f"# Attacks after the fact: `{args.attack}` on the `{args.suite}` suite's nominal MDP",
        "",
        f"Return (mean ± std over training seeds of each seed's mean over {args.episodes} "
        f"episodes, reset seeds {args.seed}..) of the models in `{args.models}`; ε times the "
        "per-coordinate observation std under uniformly random actions on the nominal MDP "
        f"({RANDOM_SCALE_STEPS:,} steps): [{', '.join(f'{s:.4g}' for s in scale)}], the same for every model. "
        f"PGD steps: {args.steps}. Seeds: " + "; ".join(f"{v} {seeds[v]}" for v in variants) + ".",
        "",
        "| ε | " + " | ".join(variants) + " |",
        "|---:|" + "---:|" * len(variants),
    ]
    for eps in args.epsilons:
        cells = []
        for v in variants:
            xs = per_seed(v, eps)
            cells.append(f"{np.mean(xs):.1f} ± {np.std(xs):.1f}")
        lines.append(f"| {eps:g} | " + " | ".join(cells) + " |")
    if pairs:
        lines += [
            "",
            "Difference of the means over seeds, 95% bootstrap interval and two-sided "
            "permutation p-value (`robust_rl.evaluation.compare_means`).",
            "",
        ]
        lines += comparison_lines(
            pairs, [f"{e:g}" for e in args.epsilons], lambda v, e: per_seed(v, float(e)), "ε"
        )
    wall = time.perf_counter() - start
    lines += ["", *replicate_lines("experiments/attack_saved_models.py", argv, wall_s=wall)]
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n", force=args.force or args.resume)
    csv_rows = ["variant,seed,epsilon,mean_return"] + [
        f"{variant_of[r.model]},{seed_of[r.model]},{r.epsilon:g},{r.mean:.6g}" for r in results.rows
    ]
    atomic_write_text(
        out / f"{stem}_per_seed.csv", "\n".join(csv_rows) + "\n", force=args.force or args.resume
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
