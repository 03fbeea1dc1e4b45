"""Reading a sweep file: :func:`load_sweep` and :func:`parse_sweep` turn YAML into a validated
:class:`~robust_rl.sweep.spec.SweepSpec` (the file's format and the tuning protocol it must obey
are described in :mod:`robust_rl.sweep.spec`). Every check runs here, before any trial."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any

from robust_rl.config_checks import SEED_MAX
from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep.spec import (
    ATTACK_KEYS,
    SPLITS,
    EvaluationSpec,
    SearchSpec,
    SpaceParam,
    SweepSpec,
    VariantSpec,
)
from robust_rl.training import ALGOS, check_env_id, load_config, validate_config

__all__ = ["load_sweep", "parse_evaluation", "parse_sweep"]

_VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


# --------------------------------------------------------------------------------------------
# small checks


def _check_type(name: str, value: Any, kind: type | UnionType | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidArgumentError(f"sweep: {name} must be {what}, got {value!r}")
    return value


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"sweep: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_keys(where: str, data: Mapping[str, Any], accepted: Sequence[str]) -> None:
    unknown = sorted(str(k) for k in set(data) - set(accepted))
    if unknown:
        raise InvalidArgumentError(
            f"sweep: unknown key(s) {unknown} in {where}; accepted: {', '.join(accepted)}"
        )


# --------------------------------------------------------------------------------------------
# parsing


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep file (see the module docstring).

    :param path: the YAML file; ``config`` and suite paths in it are relative to its folder
        (or to the working directory).
    :raises FileNotFoundError: the file (or a config it names) does not exist.
    :raises ValueError: anything invalid, naming the key and what is accepted.
    """
    data = load_config(path)
    return parse_sweep(data, base_dir=Path(path).parent, default_name=Path(path).stem)


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None and (base_dir / p).exists():
        return base_dir / p
    return p


def parse_evaluation(data: Any, base_dir: Path | None = None) -> EvaluationSpec:
    """A sweep file's ``evaluation`` mapping (or a trial record's, as ``result.json`` stores it)
    as a checked :class:`~robust_rl.sweep.spec.EvaluationSpec`.

    :param data: the mapping.
    :param base_dir: the folder a relative suite YAML path is relative to (None: the current).
    :raises InvalidArgumentError: a missing or bad key, naming it.
    """
    data = _check_type("evaluation", data, dict, "a mapping with at least a suite")
    keys = [
        "suite",
        "tune_split",
        "report_split",
        "tune_episodes",
        "tune_seed",
        "episodes",
        "seed",
        "grid_points",
        "grid_axes",
        "grid_episodes",
        "attacks",
    ]
    _check_keys("evaluation", data, keys)
    if "suite" not in data:
        raise InvalidArgumentError(
            "sweep: evaluation.suite is required (a registered suite name or a suite YAML file)"
        )
    suite = _check_type("evaluation.suite", data["suite"], str, "a suite name or YAML path")
    if suite.endswith((".yaml", ".yml")):
        suite = str(_resolve(suite, base_dir).resolve())  # absolute: Ray workers run elsewhere
    tune = data.get("tune_split", "validation")
    report = data.get("report_split", "test")
    for key, value in (("tune_split", tune), ("report_split", report)):
        if value not in SPLITS:
            raise InvalidArgumentError(
                f"sweep: evaluation.{key} must be one of {list(SPLITS)}, got {value!r}"
            )
    if tune == report or tune != "validation":
        raise InvalidArgumentError(
            f"sweep: evaluation.tune_split is {tune!r} and evaluation.report_split is "
            f"{report!r}: a sweep must not tune on the MDPs it reports; rank trials on "
            "tune_split: validation and report report_split: test"
        )
    ints = {
        "tune_episodes": (data.get("tune_episodes", 20), 1),
        "tune_seed": (data.get("tune_seed", 20_000), 0),
        "episodes": (data.get("episodes", 50), 1),
        "seed": (data.get("seed", 10_000), 0),
        "grid_points": (data.get("grid_points", 0), 0),
        "grid_episodes": (data.get("grid_episodes", 10), 1),
    }
    values = {k: _check_int(f"evaluation.{k}", v, m) for k, (v, m) in ints.items()}
    if values["grid_points"] == 1:
        raise InvalidArgumentError(
            "sweep: evaluation.grid_points must be 0 (no grid) or >= 2 (both bounds), got 1"
        )
    axes = data.get("grid_axes", [])
    if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
        raise InvalidArgumentError(
            f"sweep: evaluation.grid_axes must be a list of parameter names, got {axes!r}"
        )
    attacks = data.get("attacks", [])
    if not isinstance(attacks, list) or not all(isinstance(a, dict) for a in attacks):
        raise InvalidArgumentError(
            f"sweep: evaluation.attacks must be a list of mappings, got {attacks!r}"
        )
    for i, attack in enumerate(attacks):
        _check_keys(f"evaluation.attacks[{i}]", attack, ATTACK_KEYS)
        if not isinstance(attack.get("attack"), str):
            raise InvalidArgumentError(
                f"sweep: evaluation.attacks[{i}].attack must name the attack (random, pgd, "
                f"q, critic, mad), got {attack.get('attack')!r}"
            )
        if "episodes" in attack:
            _check_int(f"evaluation.attacks[{i}].episodes", attack["episodes"], 1)
    _check_suite(suite, list(axes), values["grid_points"])
    spec = EvaluationSpec(
        suite=suite,
        tune_split=tune,
        report_split=report,
        grid_axes=tuple(axes),
        attacks=tuple(attacks),
        **values,
    )
    return spec


def _check_suite(name: str, axes: Sequence[str], points: int) -> None:
    """The suite exists, has validation MDPs, and knows the grid's axes and size."""
    from robust_rl.evaluation import get_suite

    suite = get_suite(name)
    if not suite.validation:
        raise InvalidArgumentError(
            f"sweep: evaluation.suite {name!r} has no validation MDPs to tune on"
        )
    unknown = [a for a in axes if a not in suite.axes]
    if unknown:
        raise InvalidArgumentError(
            f"sweep: evaluation.grid_axes {unknown} are not parameters of suite {name!r}; "
            f"its uncertainty set: {list(suite.axes)}"
        )
    if points > suite.max_grid_points:
        raise InvalidArgumentError(
            f"sweep: evaluation.grid_points must be at most {suite.max_grid_points}, got {points}"
        )


def _check_seed_ranges(ev: EvaluationSpec, search: SearchSpec) -> None:
    n_tune = max(ev.tune_episodes, search.checkpoint_episodes if search.checkpoints else 0)
    tune = range(ev.tune_seed, ev.tune_seed + n_tune)
    report = ev.report_seeds()
    if tune.start < report.stop and report.start < tune.stop:
        raise InvalidArgumentError(
            f"sweep: the tuning episode seeds {tune.start}..{tune.stop - 1} "
            f"(evaluation.tune_seed, tune_episodes, search.checkpoint_episodes) overlap the "
            f"reported episode seeds {report.start}..{report.stop - 1} (evaluation.seed, "
            "episodes, grid_episodes): tune on seeds the tables never report"
        )


def _parse_search(data: Any) -> SearchSpec:
    data = _check_type("search", data, dict, "a mapping")
    keys = [
        "method",
        "n_trials",
        "sampler_seed",
        "pruner",
        "n_startup_trials",
        "checkpoints",
        "checkpoint_episodes",
        "select",
    ]
    _check_keys("search", data, keys)
    method = data.get("method", "grid")
    if method not in ("grid", "optuna"):
        raise InvalidArgumentError(
            f"sweep: search.method must be 'grid' or 'optuna', got {method!r}"
        )
    select = data.get("select", "last")
    if select not in ("last", "best"):
        raise InvalidArgumentError(f"sweep: search.select must be 'last' or 'best', got {select!r}")
    checkpoints = _check_int("search.checkpoints", data.get("checkpoints", 4), 0)
    checkpoint_episodes = _check_int(
        "search.checkpoint_episodes", data.get("checkpoint_episodes", 5), 1
    )
    if select == "best" and checkpoints == 0:
        raise InvalidArgumentError(
            "sweep: search.select: best needs search.checkpoints >= 1 (the candidates)"
        )
    if method == "grid":
        allowed = {"method", "select"} | (
            {"checkpoints", "checkpoint_episodes"} if select == "best" else set()
        )
        extra = sorted(set(data) - allowed)
        if extra:
            raise InvalidArgumentError(
                f"sweep: search keys {extra} apply to method: optuna (checkpoints, "
                "checkpoint_episodes also to select: best) only"
            )
        if select == "last":
            return SearchSpec()
        return SearchSpec(
            checkpoints=checkpoints, checkpoint_episodes=checkpoint_episodes, select="best"
        )
    if "n_trials" not in data:
        raise InvalidArgumentError(
            "sweep: search.n_trials (Optuna points per variant: the tuning budget) is required"
        )
    pruner = data.get("pruner", "median")
    if pruner not in ("median", "none"):
        raise InvalidArgumentError(
            f"sweep: search.pruner must be 'median' or 'none', got {pruner!r}"
        )
    if pruner != "none" and checkpoints == 0:
        raise InvalidArgumentError(
            "sweep: search.pruner needs search.checkpoints >= 1 (intermediate evaluations)"
        )
    return SearchSpec(
        method="optuna",
        n_trials=_check_int("search.n_trials", data["n_trials"], 1),
        sampler_seed=_check_int("search.sampler_seed", data.get("sampler_seed", 0), 0),
        pruner=pruner,
        n_startup_trials=_check_int("search.n_startup_trials", data.get("n_startup_trials", 2), 0),
        checkpoints=checkpoints,
        checkpoint_episodes=checkpoint_episodes,
        select=select,
    )


def _is_axis(key: str, value: list[Any]) -> bool:
    """A list is a grid axis, except a flat list for list-valued hyperparameters
    (``radius: [0.03, 0.03, 0.003, 0.03]`` is one radius; ``[[...], [...]]`` two)."""
    if key in ("radius",) or key.endswith("_kwargs"):
        return all(isinstance(v, list | dict) for v in value)
    return True


def _parse_space(
    vname: str, algo: str, data: Any, config: Mapping[str, Any]
) -> tuple[SpaceParam, ...]:
    where = f"variants.{vname}.space"
    data = _check_type(where, data, dict, "a mapping {hyperparameter: {low, high} or {choices}}")
    out = []
    for key, entry in data.items():
        w = f"{where}.{key}"
        entry = _check_type(w, entry, dict, "a mapping: {low: ..., high: ...} or {choices: [...]}")
        _check_keys(w, entry, ["low", "high", "log", "step", "type", "choices"])
        param = _choice_param(w, key, entry) if "choices" in entry else _range_param(w, key, entry)
        out.append(param)
    if not out:
        raise InvalidArgumentError(f"sweep: {where} must name at least one hyperparameter")
    # every searched key must be a hyperparameter of the algorithm
    validate_config(algo, {**config, **{p.name: _probe(p) for p in out}})
    return tuple(out)


def _choice_param(w: str, key: str, entry: Mapping[str, Any]) -> SpaceParam:
    """``{choices: [...]}``: a categorical hyperparameter."""
    if set(entry) - {"choices"}:
        raise InvalidArgumentError(f"sweep: {w}: choices excludes low, high, log, step, type")
    choices = _check_type(f"{w}.choices", entry["choices"], list, "a non-empty list")
    if not choices:
        raise InvalidArgumentError(f"sweep: {w}.choices must be a non-empty list")
    bad = [c for c in choices if not _plain(c)]
    if bad:
        raise InvalidArgumentError(
            f"sweep: {w}.choices must be numbers, strings, booleans, null, or lists "
            f"and mappings of those, got {bad!r}"
        )
    return SpaceParam(key, "categorical", choices=tuple(choices))


def _range_param(w: str, key: str, entry: Mapping[str, Any]) -> SpaceParam:
    """``{low, high[, log, step, type]}``: an int or float hyperparameter."""
    if "low" not in entry or "high" not in entry:
        raise InvalidArgumentError(f"sweep: {w} needs low and high (or choices)")
    low, high = entry["low"], entry["high"]
    for n, v in (("low", low), ("high", high)):
        _check_type(f"{w}.{n}", v, int | float, "a number")
    kind = entry.get("type", "int" if isinstance(low, int) and isinstance(high, int) else "float")
    if kind not in ("int", "float"):
        raise InvalidArgumentError(f"sweep: {w}.type must be 'int' or 'float', got {kind!r}")
    log = _check_type(f"{w}.log", entry.get("log", False), bool, "true or false")
    if not low < high:
        raise InvalidArgumentError(f"sweep: {w} needs low < high, got {low!r}, {high!r}")
    if log and low <= 0:
        raise InvalidArgumentError(f"sweep: {w}: log scale needs low > 0, got {low!r}")
    step = entry.get("step")
    if step is not None:
        _check_type(f"{w}.step", step, int | float, "a positive number")
        if step <= 0 or log:
            raise InvalidArgumentError(f"sweep: {w}.step must be > 0 and excludes log")
    return SpaceParam(key, kind, float(low), float(high), log, step)


def _plain(value: Any) -> bool:
    """Whether ``value`` is JSON data (numbers, strings, booleans, null, lists, mappings)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | float | bool)


def _probe(p: SpaceParam) -> Any:
    return (
        p.choices[0] if p.kind == "categorical" else (int(p.low or 0) if p.kind == "int" else p.low)
    )


def _parse_variant(
    vname: Any, vspec: Any, env: str, method: str, base_dir: Path | None
) -> VariantSpec:
    if not isinstance(vname, str) or not _VARIANT_RE.match(vname):
        raise InvalidArgumentError(
            f"sweep: variant name {vname!r} must start with a letter or digit and hold only "
            "letters, digits and _.+- (it names the trials' folders)"
        )
    vspec = _check_type(f"variants.{vname}", vspec, dict, "a mapping")
    _check_keys(f"variant {vname!r}", vspec, ["algo", "config", "env", "params", "grid", "space"])
    algo = vspec.get("algo")
    if algo not in ALGOS:
        raise InvalidArgumentError(
            f"sweep: variant {vname!r}: algo must be one of {sorted(ALGOS)}, got {algo!r}"
        )
    venv = check_env_id(_check_type(f"variants.{vname}.env", vspec.get("env", env), str, "an id"))
    config: dict[str, Any] = {}
    if "config" in vspec:
        cpath = _check_type(f"variants.{vname}.config", vspec["config"], str, "a path")
        config = load_config(_resolve(cpath, base_dir))
    params = _check_type(f"variants.{vname}.params", vspec.get("params", {}), dict, "a mapping")
    listed: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, list) and _is_axis(k, v):
            if not v:
                raise InvalidArgumentError(f"sweep: variant {vname!r}: the grid for {k!r} is empty")
            if method == "optuna":
                raise InvalidArgumentError(
                    f"sweep: variant {vname!r}: params.{k} is a list (a grid axis) but "
                    "search.method is optuna: declare it under space, or give one value"
                )
            listed[k] = list(v)
        else:
            fixed[k] = v
    if "grid" in vspec:
        listed.update(_grid_axes(vname, vspec["grid"], method, set(params)))
    # a one-value axis is a fixed value
    axes = {k: v for k, v in listed.items() if len(v) > 1}
    fixed.update({k: v[0] for k, v in listed.items() if len(v) == 1})
    config = {**config, **fixed}
    for point in [dict(zip(axes, c, strict=True)) for c in itertools.product(*axes.values())]:
        validate_config(algo, {**config, **point})
    space: tuple[SpaceParam, ...] = ()
    if "space" in vspec:
        if method != "optuna":
            raise InvalidArgumentError(
                f"sweep: variant {vname!r} declares a space but search.method is grid; "
                "set search: {method: optuna, n_trials: N}"
            )
        space = _parse_space(vname, algo, vspec["space"], config)
    return VariantSpec(vname, algo, venv, validate_config(algo, config), axes, space)


def _grid_axes(vname: str, data: Any, method: str, in_params: set[str]) -> dict[str, list[Any]]:
    """A variant's explicit ``grid`` axes: ``{key: [value, ...]}``, every entry a full value."""
    where = f"variants.{vname}.grid"
    data = _check_type(where, data, dict, "a mapping {hyperparameter: [values]}")
    if method != "grid":
        raise InvalidArgumentError(
            f"sweep: variant {vname!r} declares grid axes but search.method is {method}: "
            "declare them under space, or drop search.method"
        )
    out: dict[str, list[Any]] = {}
    for k, v in data.items():
        if not isinstance(v, list) or not v:
            raise InvalidArgumentError(
                f"sweep: {where}.{k} must be a non-empty list of values, got {v!r}"
            )
        if k in in_params:
            raise InvalidArgumentError(
                f"sweep: variant {vname!r}: {k!r} is in both params and grid; give it in one"
            )
        out[str(k)] = list(v)
    return out


def _check_budget(search: SearchSpec, variants: Sequence[VariantSpec]) -> None:
    """Every variant gets the same tuning budget over its own hyperparameters."""
    if search.method == "optuna":
        missing = [v.name for v in variants if not v.space]
        if missing:
            raise InvalidArgumentError(
                f"sweep: variant(s) {missing} declare no space while search.method is optuna: "
                "every variant (the baseline included) gets the same tuning budget "
                f"(search.n_trials = {search.n_trials} points) over its own hyperparameters; "
                "give each a space, or use method: grid with published defaults only"
            )
        return
    sizes = {v.name: len(v.grid()) for v in variants}
    if max(sizes.values()) > 1 and len(set(sizes.values())) > 1:
        raise InvalidArgumentError(
            f"sweep: unequal tuning budgets, points per variant {sizes}: a sweep that chooses "
            "hyperparameters gives every variant (the baseline included) the same number of "
            "points over its own hyperparameters (or every variant one point: published defaults)"
        )


def parse_sweep(
    data: Mapping[str, Any], base_dir: Path | None = None, default_name: str = "sweep"
) -> SweepSpec:
    """Validate a sweep mapping (see the module docstring).

    :param data: the sweep file's content.
    :param base_dir: folder that relative ``config`` and suite paths start from.
    :param default_name: the name when ``data`` has none.
    :raises ValueError: anything invalid, naming the key and what is accepted.
    """
    _check_type("the sweep file", data, dict, "a mapping")
    _check_keys(
        "the sweep file", data, ["name", "env", "seeds", "evaluation", "search", "variants"]
    )
    name = _check_type("name", data.get("name", default_name), str, "a string")
    if not _VARIANT_RE.match(name):
        raise InvalidArgumentError(
            f"sweep: name {name!r} must start with a letter or digit and hold only letters, "
            "digits and _.+-"
        )
    env = _check_type("env", data.get("env", ""), str, "a gymnasium id")
    seeds = _check_type("seeds", data.get("seeds", [0]), list, "a non-empty list of integers")
    if not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX for s in seeds
    ):
        raise InvalidArgumentError(
            f"sweep: seeds must be a non-empty list of integers in [0, {SEED_MAX}], got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise InvalidArgumentError(f"sweep: seeds must be distinct, got {seeds!r}")
    if "evaluation" not in data:
        raise InvalidArgumentError(
            "sweep: the evaluation key is required: {suite: NAME_OR_YAML, ...} names the suite "
            "the sweep tunes on (validation split) and reports on (test split)"
        )
    evaluation = parse_evaluation(data["evaluation"], base_dir)
    search = _parse_search(data.get("search", {}))
    _check_seed_ranges(evaluation, search)
    variants_data = _check_type("variants", data.get("variants"), dict, "a non-empty mapping")
    if not variants_data:
        raise InvalidArgumentError("sweep: variants must be a non-empty mapping")
    if not env and any("env" not in v for v in variants_data.values() if isinstance(v, dict)):
        raise InvalidArgumentError("sweep: env (the training env id) is required")
    variants = tuple(
        _parse_variant(k, v, env, search.method, base_dir) for k, v in variants_data.items()
    )
    _check_budget(search, variants)
    return SweepSpec(name, tuple(seeds), evaluation, search, variants)
