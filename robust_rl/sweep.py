"""Seeds × hyperparameters × algorithms: trials that train, evaluate and resume.

A sweep is a list of :class:`Trial` objects (usually from a YAML file, see :func:`load_sweep`).
Each trial trains one model with :func:`robust_rl.training.train`, evaluates it on the perturbed
suite and the physics grid, and writes everything under ``out/<trial-name>/``; its
``result.json`` marks it finished, so running the sweep again skips it (a ``result.json`` written
by a different trial, e.g. after the config changed, is refused rather than reused); an unfinished
trial continues from its last checkpoint. A failed trial is reported with its error and the others
go on. Trials run in local worker processes or as Ray tasks (:mod:`robust_rl._ray_backend`).

Sweep file::

    name: cartpole_radius_eta
    env: robust_rl/CartPole-v1
    seeds: [0, 1, 2]
    evaluation: {episodes: 50, grid_episodes: 10}
    search: grid                 # or random: n_trials points of each variant's grid
    variants:
      robust-dqn:
        algo: robust-dqn
        config: experiments/configs/robust_dqn_cartpole.yaml
        params:                  # overrides; lists are searched over
          eta: [0.03, 0.3]
          radius: [[0.03, 0.03, 0.003, 0.03], [0.06, 0.06, 0.006, 0.06]]
      dqn:
        algo: dqn
        config: experiments/configs/dqn_cartpole.yaml

A list in ``params`` is a search axis, except for ``radius`` and ``*_kwargs`` keys, whose value
is itself a list or mapping: there a flat list (or a mapping) is one value and a list of lists
(or of mappings) is an axis. ``config`` paths are relative to the sweep file (or the working
directory). Trial folders are named ``<variant>[__<key>=<value>...]__seed<k>`` with the searched
keys only; the trials of one group (same name without the seed) are averaged over seeds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robust_rl._io import atomic_write_text, save_figure
from robust_rl.errors import InvalidArgumentError
from robust_rl.training import ALGOS, check_env_id, load_config, validate_config

__all__ = [
    "BACKENDS",
    "RESULT_FILE",
    "Trial",
    "TrialResult",
    "expand_sweep",
    "load_sweep",
    "run_sweep",
    "run_trial",
    "summarize",
    "write_summary",
]

BACKENDS: tuple[str, ...] = ("local", "ray")
RESULT_FILE = "result.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Trial:
    """One training run: an algorithm with a config, on an env, with a seed.

    :ivar name: unique folder name, ``<variant>[__k=v...]__seed<k>``.
    :ivar variant: the variant (algorithm setting) it belongs to.
    :ivar group: ``name`` without the seed: trials of one group are averaged over seeds.
    :ivar params: the searched hyperparameters of this trial.
    """

    name: str
    variant: str
    group: str
    algo: str
    env: str
    seed: int
    config: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    episodes: int = 50
    grid_episodes: int = 10


@dataclass(frozen=True)
class TrialResult:
    """Outcome of one trial: returns per MDP (``suite``) and per grid point (``grid``)."""

    trial: Trial
    status: str  # "done", "skipped" (finished earlier), "failed"
    suite: dict[str, float] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    error: str | None = None


def _fmt(value: Any) -> str:
    """A hyperparameter value as a piece of a folder name (letters, digits and ``_.+-``)."""
    if isinstance(value, dict):
        return "-".join(f"{_fmt(k)}-{_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "-".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return _UNSAFE.sub("_", str(value))


def _check_type(name: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidArgumentError(f"sweep: {name} must be {what}, got {value!r}")
    return value


def load_sweep(path: str | os.PathLike[str]) -> tuple[str, list[Trial]]:
    """Read a sweep file and expand it into trials (validated: algorithms, env, hyperparameters)."""
    spec = load_config(path)
    base = Path(path).parent
    return spec.get("name", Path(path).stem), expand_sweep(spec, base_dir=base)


def expand_sweep(spec: Mapping[str, Any], base_dir: Path | None = None) -> list[Trial]:
    """Expand a sweep mapping (see the module docstring) into trials."""
    known = {"name", "env", "seeds", "evaluation", "search", "n_trials", "search_seed", "variants"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InvalidArgumentError(f"sweep: unknown key(s) {unknown}; accepted: {sorted(known)}")
    env = _check_type("env", spec.get("env", "robust_rl/CartPole-v1"), str, "a gymnasium id")
    seeds = _check_type("seeds", spec.get("seeds", [0]), list, "a non-empty list of integers")
    if not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise InvalidArgumentError(
            f"sweep: seeds must be a non-empty list of non-negative integers, got {seeds!r}"
        )
    evaluation = _check_type("evaluation", spec.get("evaluation", {}), dict, "a mapping")
    bad = sorted(set(evaluation) - {"episodes", "grid_episodes"})
    if bad:
        raise InvalidArgumentError(
            f"sweep: unknown evaluation key(s) {bad}; accepted: episodes, grid_episodes"
        )
    episodes = _check_type("evaluation.episodes", evaluation.get("episodes", 50), int, "an integer")
    grid_episodes = _check_type(
        "evaluation.grid_episodes", evaluation.get("grid_episodes", 10), int, "an integer"
    )
    if episodes < 1 or grid_episodes < 0:
        raise InvalidArgumentError("sweep: evaluation.episodes must be >= 1 and grid_episodes >= 0")
    search = spec.get("search", "grid")
    if search not in ("grid", "random"):
        raise InvalidArgumentError(f"sweep: search must be 'grid' or 'random', got {search!r}")
    n_trials = spec.get("n_trials")
    if n_trials is not None:
        _check_type("n_trials", n_trials, int, "a positive integer")
        if n_trials < 1:
            raise InvalidArgumentError(
                f"sweep: n_trials must be a positive integer, got {n_trials!r}"
            )
    search_seed = _check_type("search_seed", spec.get("search_seed", 0), int, "an integer")
    if search != "random" and (n_trials is not None or "search_seed" in spec):
        raise InvalidArgumentError("sweep: n_trials and search_seed apply to search: random only")
    variants = _check_type("variants", spec.get("variants"), dict, "a non-empty mapping")
    if not variants:
        raise InvalidArgumentError("sweep: variants must be a non-empty mapping")

    trials: list[Trial] = []
    for vname, vspec in variants.items():
        if not isinstance(vname, str) or not _VARIANT_RE.match(vname):
            raise InvalidArgumentError(
                f"sweep: variant name {vname!r} must start with a letter or digit and hold only "
                "letters, digits and _.+- (it names the trials' folders)"
            )
        _check_type(f"variants.{vname}", vspec, dict, "a mapping")
        vbad = sorted(set(vspec) - {"algo", "config", "env", "params"})
        if vbad:
            raise InvalidArgumentError(
                f"sweep: unknown key(s) {vbad} in variant {vname!r}; accepted: algo, config, env, params"
            )
        algo = vspec.get("algo")
        if algo not in ALGOS:
            raise InvalidArgumentError(
                f"sweep: variant {vname!r}: algo must be one of {sorted(ALGOS)}, got {algo!r}"
            )
        venv = check_env_id(vspec.get("env", env))
        config: dict[str, Any] = {}
        if "config" in vspec:
            cpath = Path(_check_type(f"variants.{vname}.config", vspec["config"], str, "a path"))
            # relative to the sweep file's folder first, then to the working directory
            if not cpath.is_absolute() and base_dir is not None and (base_dir / cpath).is_file():
                cpath = base_dir / cpath
            config = load_config(cpath)
        params = _check_type(f"variants.{vname}.params", vspec.get("params", {}), dict, "a mapping")
        axes = {
            k: (v if isinstance(v, list) and _is_axis(k, v) else [v]) for k, v in params.items()
        }
        for k, values in axes.items():
            if not values:
                raise InvalidArgumentError(f"sweep: variant {vname!r}: the grid for {k!r} is empty")
        points = [
            dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())
        ]
        if search == "random":
            rng = random.Random(search_seed)
            points = rng.sample(points, min(n_trials or len(points), len(points)))
        for point in points:
            cfg = validate_config(algo, {**config, **point})
            searched = {k: v for k, v in point.items() if len(axes[k]) > 1}
            group = "__".join([vname] + [f"{k}={_fmt(v)}" for k, v in searched.items()])
            for seed in seeds:
                trials.append(
                    Trial(
                        f"{group}__seed{seed}",
                        vname,
                        group,
                        algo,
                        venv,
                        seed,
                        cfg,
                        searched,
                        episodes,
                        grid_episodes,
                    )
                )
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("sweep: trial names collide; give variants distinct names")
    return trials


def _is_axis(key: str, value: list[Any]) -> bool:
    """A list is a search axis, except a flat list of numbers for list-valued hyperparameters
    (``radius: [0.03, 0.03, 0.003, 0.03]`` is one radius; ``[[...], [...]]`` two)."""
    if key in ("radius",) or key.endswith("_kwargs"):
        return all(isinstance(v, list | dict) for v in value)
    return True


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _changed(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Keys (``config.<name>`` inside the config) whose values differ between two trial records."""
    changed = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if key == "config" and isinstance(old, dict) and isinstance(new, dict):
            changed += [f"config.{k}" for k in _changed(old, new)]
        elif old != new:
            changed.append(key)
    return changed


def _stale_error(trial: Trial, out_dir: str | os.PathLike[str]) -> str | None:
    """Why ``out_dir/<trial>/result.json`` does not belong to ``trial`` (None if it does)."""
    done = Path(out_dir) / trial.name / RESULT_FILE
    try:
        recorded = json.loads(done.read_text())["trial"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{done} is unreadable ({type(exc).__name__}: {exc}); delete it to rerun the trial"
    changed = _changed(recorded, _as_json(asdict(trial)))
    if changed:
        return (
            f"{done} was written by a different trial (changed: {', '.join(changed)}); "
            "delete that trial's folder to rerun it, or choose another --out"
        )
    return None


def _same_run(trial: Trial, folder: Path) -> bool:
    """Whether ``folder/config.yaml`` (written by :func:`~robust_rl.training.train`) is this trial's."""
    import yaml

    try:
        info = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    current = {"algo": trial.algo, "env": trial.env, "seed": trial.seed, "config": trial.config}
    return isinstance(info, dict) and _as_json(info) == _as_json(current)


def run_trial(trial: Trial, out_dir: str | os.PathLike[str], torch_threads: int = 1) -> TrialResult:
    """Train, evaluate and record one trial in ``out_dir/<trial.name>/`` (never raises).

    A trial whose ``result.json`` exists is not run again (status ``"skipped"``, its recorded
    returns), unless the file was written by a different trial (another config, seed or
    evaluation: status ``"failed"``). An unfinished trial continues from its last checkpoint if
    that checkpoint was made with the same config, else it starts afresh.
    """
    import torch

    from robust_rl.envs import CARTPOLE_SUITE
    from robust_rl.evaluation import DEFAULT_GRID, evaluate_grid, evaluate_suite, save_results
    from robust_rl.training import CHECKPOINT_FILE, train

    torch.set_num_threads(torch_threads)
    folder = Path(out_dir) / trial.name
    done = folder / RESULT_FILE
    if done.is_file():
        stale = _stale_error(trial, out_dir)
        if stale is not None:
            return TrialResult(trial, "failed", error=f"ValueError: {stale}")
        data = json.loads(done.read_text())
        return TrialResult(trial, "skipped", data["suite"], data["grid"], data["wall_time_s"])
    start = time.perf_counter()
    try:
        result = train(
            trial.algo,
            trial.env,
            trial.config,
            trial.seed,
            folder,
            tensorboard_log=str(folder / "tb"),
            force=True,
            resume=(folder / CHECKPOINT_FILE).is_file() and _same_run(trial, folder),
        )
        models = {trial.name: result.model}
        suite = evaluate_suite(models, CARTPOLE_SUITE, n_episodes=trial.episodes, seed=10_000)
        outputs = [suite]
        grid_means: dict[str, float] = {}
        if trial.grid_episodes > 0:
            grid = evaluate_grid(models, DEFAULT_GRID, n_episodes=trial.grid_episodes, seed=10_000)
            outputs.append(grid)
            grid_means = {row.mdp: row.mean for row in grid.rows}
        save_results(outputs, folder / "eval", force=True)
        suite_means = {row.mdp: row.mean for row in suite.rows}
        wall = time.perf_counter() - start
        record = {
            "trial": asdict(trial),
            "suite": suite_means,
            "grid": grid_means,
            "wall_time_s": wall,
        }
        atomic_write_text(done, json.dumps(record, indent=2), force=True)
        return TrialResult(trial, "done", suite_means, grid_means, wall)
    except Exception as exc:  # a failed trial is reported, the sweep goes on
        tb = traceback.format_exc(limit=3)
        return TrialResult(
            trial,
            "failed",
            wall_time_s=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}\n{tb}",
        )


def run_sweep(
    trials: Sequence[Trial],
    out_dir: str | os.PathLike[str],
    *,
    backend: str = "local",
    max_parallel: int = 2,
    address: str | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> list[TrialResult]:
    """Run every trial (finished ones are skipped) and return their results in trial order.

    :param backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (Ray tasks; a
        local Ray instance, or the cluster at ``address``).
    :param max_parallel: trials running at once (each pins torch to one thread).
    :param address: Ray cluster address (``backend="ray"`` only); None starts a local Ray.
    :param on_result: called with each result as it arrives.
    :raises ValueError: on a bad argument, or a finished trial in ``out_dir`` whose
        ``result.json`` was written by a different trial (checked before anything runs).
    """
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise InvalidArgumentError(f"max_parallel must be a positive integer, got {max_parallel!r}")
    if address is not None and backend != "ray":
        raise InvalidArgumentError("address applies to backend='ray' only")
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("trial names must be unique (they name the trials' folders)")
    out = Path(out_dir)
    for trial in trials:
        if (out / trial.name / RESULT_FILE).is_file():
            stale = _stale_error(trial, out)
            if stale is not None:
                raise InvalidArgumentError(stale)
    out.mkdir(parents=True, exist_ok=True)
    if backend == "ray":
        from robust_rl._ray_backend import run_with_ray

        results = run_with_ray(
            trials, out, max_parallel=max_parallel, address=address, on_result=on_result
        )
    else:
        results = _run_local(trials, out, max_parallel, on_result)
    order = {t.name: i for i, t in enumerate(trials)}
    return sorted(results, key=lambda r: order[r.trial.name])


def _run_local(
    trials: Sequence[Trial],
    out: Path,
    max_parallel: int,
    on_result: Callable[[TrialResult], None] | None,
) -> list[TrialResult]:
    results = []
    if max_parallel == 1:
        for trial in trials:
            res = run_trial(trial, out)
            results.append(res)
            if on_result:
                on_result(res)
        return results
    with ProcessPoolExecutor(max_workers=max_parallel) as pool:
        futures = {pool.submit(run_trial, trial, out): trial for trial in trials}
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # the worker died (run_trial itself never raises)
                res = TrialResult(futures[fut], "failed", error=f"{type(exc).__name__}: {exc}")
            results.append(res)
            if on_result:
                on_result(res)
    return results


def summarize(results: Iterable[TrialResult]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-trial rows and per-group rows (mean ± std over seeds), groups ranked by the
    robustness criterion: the mean return over the suite's MDPs (nominal and perturbed),
    ties broken by the worst grid point."""
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.status == "failed":
            rows.append(
                {
                    "trial": r.trial.name,
                    "group": r.trial.group,
                    "status": "failed",
                    "error": (r.error or "").splitlines()[0],
                }
            )
            continue
        grid = list(r.grid.values())
        rows.append(
            {
                "trial": r.trial.name,
                "group": r.trial.group,
                "status": r.status,
                "seed": r.trial.seed,
                **{f"param:{k}": _fmt(v) for k, v in r.trial.params.items()},
                **{f"suite:{k}": v for k, v in r.suite.items()},
                "suite_mean": float(np.mean(list(r.suite.values()))),
                "grid_mean": float(np.mean(grid)) if grid else float("nan"),
                "grid_worst": float(np.min(grid)) if grid else float("nan"),
                "wall_time_s": r.wall_time_s,
            }
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] != "failed":
            groups.setdefault(row["group"], []).append(row)
    summary = []
    for group, members in groups.items():
        agg: dict[str, Any] = {"group": group, "n_seeds": len(members)}
        agg.update({k: v for k, v in members[0].items() if k.startswith("param:")})
        for key in [k for k in members[0] if k.startswith("suite:")] + [
            "suite_mean",
            "grid_mean",
            "grid_worst",
        ]:
            vals = np.array([m[key] for m in members], dtype=float)
            agg[key] = float(vals.mean())
            agg[key + "_std"] = float(vals.std())
        summary.append(agg)
    summary.sort(key=lambda a: (-a["suite_mean"], -a.get("grid_worst", 0.0)))
    return rows, summary


def _csv(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines = [",".join(keys)]
    for row in rows:
        cells = []
        for k in keys:
            v = row.get(k, "")
            cell = f"{v:.6g}" if isinstance(v, float) else str(v)
            cells.append(
                '"' + cell.replace('"', "'") + '"' if "," in cell or "\n" in cell else cell
            )
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_summary(
    results: Sequence[TrialResult],
    out_dir: str | os.PathLike[str],
    title: str = "sweep",
    footer: str = "",
) -> list[Path]:
    """Write ``trials.csv``, ``summary.csv``, ``summary.md`` and ``summary.png`` (overwriting the
    previous summary of this sweep: it is regenerated from the trials' result files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    rows, summary = summarize(results)
    written = [
        atomic_write_text(out / "trials.csv", _csv(rows), force=True),
        atomic_write_text(out / "summary.csv", _csv(summary), force=True),
    ]
    mdps = [
        k.removeprefix("suite:")
        for k in (summary[0] if summary else {})
        if k.startswith("suite:") and not k.endswith("_std")
    ]
    lines = [
        f"# {title}",
        "",
        "Ranked by the mean return over the suite's MDPs (mean ± std over seeds); ties broken by the",
        "worst grid point. Returns are means over the evaluation episodes of each seed.",
        "",
        "| rank | group | seeds | " + " | ".join(mdps) + " | suite mean | grid mean | grid worst |",
        "|---:|---|---:|" + "---:|" * (len(mdps) + 3),
    ]
    for i, agg in enumerate(summary, 1):
        cells = [f"{agg['suite:' + m]:.1f} ± {agg['suite:' + m + '_std']:.1f}" for m in mdps]
        cells += [
            f"{agg[k]:.1f} ± {agg[k + '_std']:.1f}" if np.isfinite(agg[k]) else "–"
            for k in ("suite_mean", "grid_mean", "grid_worst")
        ]
        lines.append(f"| {i} | {agg['group']} | {agg['n_seeds']} | " + " | ".join(cells) + " |")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "Failed trials:", ""] + [f"- {r['trial']}: {r['error']}" for r in failed]
    if footer:
        lines += ["", footer]
    written.append(atomic_write_text(out / "summary.md", "\n".join(lines) + "\n", force=True))
    if summary:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(summary)), 4))
        x = np.arange(len(summary))
        width = 0.8 / max(1, len(mdps))
        for j, m in enumerate(mdps):
            ax.bar(
                x + j * width,
                [a["suite:" + m] for a in summary],
                width,
                yerr=[a["suite:" + m + "_std"] for a in summary],
                label=m,
                capsize=2,
            )
        ax.set_xticks(
            x + 0.4 - width / 2, [a["group"] for a in summary], rotation=30, ha="right", fontsize=7
        )
        ax.set_ylabel("return (mean ± std over seeds)")
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(save_figure(fig, out / "summary.png", force=True))
        plt.close(fig)
    return written
