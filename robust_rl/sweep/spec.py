"""A sweep file, read and validated: variants, grid axes, the Optuna search space, seeds, the
suite a sweep tunes on and the one it reports on.

Sweep file (YAML)::

    name: cartpole_radius_eta
    env: robust_rl/CartPole-v1          # training env (a variant may override it)
    seeds: [0, 1, 2]                    # training seeds: every point runs over all of them
    evaluation:
      suite: cartpole                   # a registered suite, or a suite YAML file
      tune_split: validation            # trials are ranked here (never "test")
      report_split: test                # the summary reports this split, the grid and attacks
      tune_episodes: 20                 # episodes per validation MDP ...
      tune_seed: 20000                  # ... reset with seeds tune_seed, tune_seed + 1, ...
      episodes: 50                      # episodes per test MDP ...
      seed: 10000                       # ... with seeds seed, seed + 1, ... (disjoint from tuning)
      grid_points: 5                    # inclusive grid, points per axis (0: no grid)
      grid_axes: [masspole, length]     # default: every axis of the suite's uncertainty set
      grid_episodes: 10
      attacks:                          # observation attacks on the report split's first MDP
        - {attack: pgd, epsilons: [0.0, 0.05, 0.1], scale: std, steps: 10, episodes: 20}
    search:                             # optional: default {method: grid}
      method: optuna                    # or grid: every point of each variant's params lists
      n_trials: 8                       # Optuna points PER VARIANT: the same budget for each
      sampler_seed: 0                   # TPE sampler seed
      pruner: median                    # median or none; prunes on intermediate validation
      n_startup_trials: 2               # ... evaluations once this many points finished
      checkpoints: 4                    # intermediate validation evaluations per training run
      checkpoint_episodes: 5            # episodes per validation MDP at each of them
    variants:
      robust-dqn:
        algo: robust-dqn
        config: ../configs/robust_dqn_cartpole.yaml   # relative to the sweep file
        params: {radius: [0.03, 0.03, 0.003, 0.03]}   # fixed values (grid: lists are axes)
        space:                                        # Optuna search space (method: optuna)
          eta: {low: 0.01, high: 1.0, log: true}
          learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
      dqn:
        algo: dqn
        config: ../configs/dqn_cartpole.yaml
        space:
          learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
          batch_size: {choices: [32, 64, 128]}

The tuning protocol is enforced here: ``tune_split`` must be ``validation`` and differ from
``report_split``; the tuning episode seeds must not overlap the reported ones; and every variant
gets the same budget: with ``method: optuna`` each variant declares a ``space`` and gets
``n_trials`` points, with ``method: grid`` a sweep that searches (some variant has more than one
point) must give every variant the same number of points over its own hyperparameters.

In ``params`` (grid search) a list is an axis, except for ``radius`` and ``*_kwargs`` keys,
whose value is itself a list or mapping: there a flat list (or a mapping) is one value and a list
of lists (or of mappings) is an axis. A variant's ``grid`` mapping (method grid) names axes
explicitly, every entry of its lists one full value: ``grid: {radius: [0.01, 0.03]}`` sweeps two
scalar radii, which ``params`` would read as one radius per coordinate; a key goes in ``params``
or ``grid``, not both. A space entry is ``{choices: [...]}`` (categorical; a choice
may be a list or mapping, e.g. a per-coordinate radius, stored in the study as JSON text) or
``{low: a, high: b}`` with optional ``log: true``, ``step`` and ``type: int|float`` (default:
``int`` when both bounds are integers). The grid has ``grid_points ** len(grid_axes)`` points.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal

from robust_rl.config_checks import SEED_MAX
from robust_rl.errors import InvalidArgumentError
from robust_rl.training import ALGOS, check_env_id, load_config, validate_config

__all__ = [
    "ATTACK_KEYS",
    "SPLITS",
    "EvaluationSpec",
    "SearchSpec",
    "SpaceParam",
    "SweepSpec",
    "Trial",
    "VariantSpec",
    "expand_sweep",
    "load_sweep",
    "parse_sweep",
    "point_hash",
    "point_trials",
]

#: keys of an ``evaluation.attacks`` entry (see :func:`robust_rl.evaluation.evaluate_attacks`;
#: ``episodes`` defaults to ``evaluation.episodes``, the MDP to the report split's first)
ATTACK_KEYS: tuple[str, ...] = ("attack", "epsilons", "scale", "steps", "episodes", "mdp")
#: the splits of a suite (see :mod:`robust_rl.evaluation`)
SPLITS: tuple[str, ...] = ("validation", "test")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
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


def _fmt(value: Any) -> str:
    """A hyperparameter value as a piece of a folder name (letters, digits and ``_.+-``)."""
    if isinstance(value, dict):
        return "-".join(f"{_fmt(k)}-{_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "-".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return _UNSAFE.sub("_", str(value))


# --------------------------------------------------------------------------------------------
# the parts of a sweep


@dataclass(frozen=True)
class EvaluationSpec:
    """What a trial is evaluated on (the sweep file's ``evaluation`` key).

    :param suite: a registered suite name or the path of a suite YAML file.
    :param tune_split: the split trials are ranked on (always ``"validation"``).
    :param report_split: the split the summary reports (``"test"``).
    :param tune_episodes: episodes per validation MDP for the final ranking evaluation.
    :param tune_seed: reset seed of the first tuning episode.
    :param episodes: episodes per reported MDP.
    :param seed: reset seed of the first reported episode (suite, grid and attacks).
    :param grid_points: points per axis of the inclusive grid over the uncertainty set; 0: none.
    :param grid_axes: the axes of the grid (empty: every axis of the suite).
    :param grid_episodes: episodes per grid point.
    :param attacks: observation attacks, passed to the evaluation package as they are.
    """

    suite: str
    tune_split: Literal["validation", "test"] = "validation"
    report_split: Literal["validation", "test"] = "test"
    tune_episodes: int = 20
    tune_seed: int = 20_000
    episodes: int = 50
    seed: int = 10_000
    grid_points: int = 0
    grid_axes: tuple[str, ...] = ()
    grid_episodes: int = 10
    attacks: tuple[dict[str, Any], ...] = ()

    def report_seeds(self) -> range:
        """Every episode seed a reported evaluation uses."""
        n = max(self.episodes, self.grid_episodes if self.grid_points else 0)
        for attack in self.attacks:
            n = max(n, int(attack.get("episodes", self.episodes)))
        return range(self.seed, self.seed + n)


@dataclass(frozen=True)
class SpaceParam:
    """One hyperparameter of an Optuna search space.

    :param name: the hyperparameter (a constructor argument of the variant's algorithm).
    :param kind: ``"float"``, ``"int"`` or ``"categorical"``.
    :param low: lower bound (float and int).
    :param high: upper bound (float and int).
    :param log: sample on a log scale.
    :param step: discretisation step, or None.
    :param choices: the values of a categorical parameter.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        """Whether the choices are lists or mappings, stored in the study as JSON text."""
        return any(isinstance(c, list | dict) for c in self.choices)

    def distribution(self) -> Any:
        """The :mod:`optuna.distributions` object of this parameter."""
        from optuna import distributions as d

        if self.kind == "categorical":
            if self.encoded:
                return d.CategoricalDistribution([json.dumps(c) for c in self.choices])
            return d.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return d.IntDistribution(
                int(self.low or 0), int(self.high or 0), log=self.log, step=int(self.step or 1)
            )
        return d.FloatDistribution(
            float(self.low or 0.0), float(self.high or 0.0), log=self.log, step=self.step
        )

    def decode(self, value: Any) -> Any:
        """The hyperparameter's value from the study's (JSON text for list or mapping choices)."""
        return json.loads(value) if self.kind == "categorical" and self.encoded else value


@dataclass(frozen=True)
class SearchSpec:
    """How a sweep chooses hyperparameters (the sweep file's ``search`` key).

    :param method: ``"grid"`` (every point of the variants' params lists) or ``"optuna"``.
    :param n_trials: Optuna points per variant (the tuning budget, equal for every variant).
    :param sampler_seed: seed of the TPE sampler.
    :param pruner: ``"median"`` or ``"none"``.
    :param n_startup_trials: finished points before the pruner prunes anything.
    :param checkpoints: intermediate validation evaluations per training run (0: none).
    :param checkpoint_episodes: episodes per validation MDP at each of them.
    """

    method: str = "grid"
    n_trials: int = 0
    sampler_seed: int = 0
    pruner: str = "median"
    n_startup_trials: int = 2
    checkpoints: int = 0
    checkpoint_episodes: int = 5


@dataclass(frozen=True)
class VariantSpec:
    """One algorithm setting of a sweep.

    :param name: the variant's name (it starts its trials' folder names).
    :param algo: a key of :data:`robust_rl.training.ALGOS`.
    :param env: the training env id.
    :param config: the base config (its file merged with the fixed ``params``).
    :param axes: grid axes ``{key: [values]}`` (method grid), each value a full value.
    :param space: the Optuna search space (method optuna).
    """

    name: str
    algo: str
    env: str
    config: dict[str, Any]
    axes: dict[str, list[Any]] = field(default_factory=dict)
    space: tuple[SpaceParam, ...] = ()

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A study's parameters as hyperparameter values (see :meth:`SpaceParam.decode`)."""
        space = {p.name: p for p in self.space}
        return {k: space[k].decode(v) if k in space else v for k, v in params.items()}

    def grid(self) -> list[dict[str, Any]]:
        """Every point of the grid axes (one empty point without axes)."""
        return [
            dict(zip(self.axes, c, strict=True)) for c in itertools.product(*self.axes.values())
        ]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file.

    :param name: the sweep's name (titles, the Optuna study names).
    :param seeds: training seeds; every point runs over all of them.
    :param evaluation: what trials are evaluated on.
    :param search: how hyperparameters are chosen.
    :param variants: the algorithm settings, in file order.
    """

    name: str
    seeds: tuple[int, ...]
    evaluation: EvaluationSpec
    search: SearchSpec
    variants: tuple[VariantSpec, ...]

    def variant(self, name: str) -> VariantSpec:
        """The variant called ``name``."""
        for v in self.variants:
            if v.name == name:
                return v
        raise InvalidArgumentError(
            f"unknown variant {name!r}; variants: {[v.name for v in self.variants]}"
        )

    def budget(self) -> dict[str, int]:
        """Hyperparameter points per variant: the tuning budget the summary prints."""
        if self.search.method == "optuna":
            return {v.name: self.search.n_trials for v in self.variants}
        return {v.name: len(v.grid()) for v in self.variants}


@dataclass(frozen=True)
class Trial:
    """One training run: a variant at one hyperparameter point, with one seed.

    :param name: unique folder name, ``<group>__seed<k>``.
    :param variant: the variant it belongs to.
    :param group: the point: ``<variant>[__<key>=<value>...]`` (grid) or ``<variant>__p<hash>``
        (Optuna); the trials of one group are averaged over seeds.
    :param algo: the algorithm.
    :param env: the training env id.
    :param seed: the training seed.
    :param config: the full, validated config.
    :param params: the searched hyperparameters of this point.
    :param evaluation: what it is evaluated on.
    :param checkpoints: intermediate validation evaluations during training (for pruning).
    :param checkpoint_episodes: episodes per validation MDP at each of them.
    """

    name: str
    variant: str
    group: str
    algo: str
    env: str
    seed: int
    config: dict[str, Any]
    params: dict[str, Any]
    evaluation: EvaluationSpec
    checkpoints: int = 0
    checkpoint_episodes: int = 5


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


def _parse_evaluation(data: Any, base_dir: Path | None) -> EvaluationSpec:
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
    ]
    _check_keys("search", data, keys)
    method = data.get("method", "grid")
    if method not in ("grid", "optuna"):
        raise InvalidArgumentError(
            f"sweep: search.method must be 'grid' or 'optuna', got {method!r}"
        )
    if method == "grid":
        extra = sorted(set(data) - {"method"})
        if extra:
            raise InvalidArgumentError(f"sweep: search keys {extra} apply to method: optuna only")
        return SearchSpec()
    if "n_trials" not in data:
        raise InvalidArgumentError(
            "sweep: search.n_trials (Optuna points per variant: the tuning budget) is required"
        )
    pruner = data.get("pruner", "median")
    if pruner not in ("median", "none"):
        raise InvalidArgumentError(
            f"sweep: search.pruner must be 'median' or 'none', got {pruner!r}"
        )
    checkpoints = _check_int("search.checkpoints", data.get("checkpoints", 4), 0)
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
        checkpoint_episodes=_check_int(
            "search.checkpoint_episodes", data.get("checkpoint_episodes", 5), 1
        ),
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
        if "choices" in entry:
            if set(entry) - {"choices"}:
                raise InvalidArgumentError(
                    f"sweep: {w}: choices excludes low, high, log, step, type"
                )
            choices = _check_type(f"{w}.choices", entry["choices"], list, "a non-empty list")
            if not choices:
                raise InvalidArgumentError(f"sweep: {w}.choices must be a non-empty list")
            bad = [c for c in choices if not _plain(c)]
            if bad:
                raise InvalidArgumentError(
                    f"sweep: {w}.choices must be numbers, strings, booleans, null, or lists "
                    f"and mappings of those, got {bad!r}"
                )
            param = SpaceParam(key, "categorical", choices=tuple(choices))
        else:
            if "low" not in entry or "high" not in entry:
                raise InvalidArgumentError(f"sweep: {w} needs low and high (or choices)")
            low, high = entry["low"], entry["high"]
            for n, v in (("low", low), ("high", high)):
                _check_type(f"{w}.{n}", v, int | float, "a number")
            kind = entry.get(
                "type", "int" if isinstance(low, int) and isinstance(high, int) else "float"
            )
            if kind not in ("int", "float"):
                raise InvalidArgumentError(
                    f"sweep: {w}.type must be 'int' or 'float', got {kind!r}"
                )
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
            param = SpaceParam(key, kind, float(low), float(high), log, step)
        out.append(param)
    if not out:
        raise InvalidArgumentError(f"sweep: {where} must name at least one hyperparameter")
    # every searched key must be a hyperparameter of the algorithm
    validate_config(algo, {**config, **{p.name: _probe(p) for p in out}})
    return tuple(out)


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
    evaluation = _parse_evaluation(data["evaluation"], base_dir)
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


# --------------------------------------------------------------------------------------------
# trials


def point_hash(params: Mapping[str, Any]) -> str:
    """Eight hex digits identifying a hyperparameter point (Optuna trials' folder names)."""
    text = json.dumps(dict(params), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def point_trials(
    spec: SweepSpec, variant: VariantSpec, params: Mapping[str, Any], group: str | None = None
) -> list[Trial]:
    """The trials (one per seed) of ``variant`` at the point ``params``.

    :param group: the point's name; default ``<variant>__p<hash>`` (Optuna points).
    :raises ValueError: a hyperparameter the algorithm does not accept.
    """
    cfg = validate_config(variant.algo, {**variant.config, **params})
    group = group or f"{variant.name}__p{point_hash(params)}"
    checkpoints = spec.search.checkpoints if spec.search.method == "optuna" else 0
    return [
        Trial(
            name=f"{group}__seed{seed}",
            variant=variant.name,
            group=group,
            algo=variant.algo,
            env=variant.env,
            seed=seed,
            config=cfg,
            params=dict(params),
            evaluation=spec.evaluation,
            checkpoints=checkpoints,
            checkpoint_episodes=spec.search.checkpoint_episodes,
        )
        for seed in spec.seeds
    ]


def expand_sweep(spec: SweepSpec) -> list[Trial]:
    """Every trial of a grid sweep: each variant's grid points × the seeds.

    Trial folders are ``<variant>[__<key>=<value>...]__seed<k>`` with the searched keys only.

    :raises ValueError: for an Optuna sweep (its points are chosen while it runs) or colliding
        trial names.
    """
    if spec.search.method != "grid":
        raise InvalidArgumentError(
            "expand_sweep: an Optuna sweep's points are chosen as it runs; use run_sweep"
        )
    trials: list[Trial] = []
    for variant in spec.variants:
        for point in variant.grid():
            group = "__".join([variant.name] + [f"{k}={_fmt(v)}" for k, v in point.items()])
            trials += point_trials(spec, variant, point, group)
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("sweep: trial names collide; give variants distinct names")
    return trials
