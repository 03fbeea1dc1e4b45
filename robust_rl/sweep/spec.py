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
      select: last                      # or best: evaluate each run's policy at its best
                                        # validation checkpoint (also with method: grid)
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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from robust_rl.errors import InvalidArgumentError
from robust_rl.training import validate_config

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
    "point_hash",
    "point_trials",
]

#: keys of an ``evaluation.attacks`` entry (see :func:`robust_rl.evaluation.evaluate_attacks`;
#: ``episodes`` defaults to ``evaluation.episodes``, the MDP to the report split's first)
ATTACK_KEYS: tuple[str, ...] = ("attack", "epsilons", "scale", "steps", "episodes", "mdp")
#: the splits of a suite (see :mod:`robust_rl.evaluation`)
SPLITS: tuple[str, ...] = ("validation", "test")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


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
    :param select: the policy a training run is evaluated with: ``"last"`` (the model at the
        end of training) or ``"best"`` (the model at the checkpoint with the highest mean
        validation return, the earliest among ties; the end of training is the last checkpoint).
    """

    method: str = "grid"
    n_trials: int = 0
    sampler_seed: int = 0
    pruner: str = "median"
    n_startup_trials: int = 2
    checkpoints: int = 0
    checkpoint_episodes: int = 5
    select: Literal["last", "best"] = "last"


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
    :param checkpoints: intermediate validation evaluations during training (for pruning and
        ``select="best"``).
    :param checkpoint_episodes: episodes per validation MDP at each of them.
    :param select: ``"last"`` or ``"best"`` (see :class:`SearchSpec`).
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
    select: Literal["last", "best"] = "last"


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
    search = spec.search
    checkpoints = search.checkpoints if search.method == "optuna" or search.select == "best" else 0
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
            checkpoint_episodes=search.checkpoint_episodes,
            select=search.select,
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
