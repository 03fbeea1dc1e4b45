"""Evaluate policies on a suite of perturbed MDPs or on a grid of physics perturbations.

Any object with an SB3-style ``predict(observation, deterministic=True) -> (action, state)``
method can be evaluated: a trained :class:`stable_baselines3.DQN`, a robust agent, or a
hand-written controller. Evaluation is reproducible: episode ``i`` of every MDP is reset with
seed ``seed + i``, so every model meets the same initial states, and episodes end at the
registered time limit (500 steps for the ``robust_rl/CartPole*-v1`` ids).

The result objects (:class:`EvaluationResults`) turn into a CSV file, a Markdown table (rows =
MDPs, columns = models, cells ``mean ± std``) and, for a grid, a PNG plot of the return versus
the perturbation factor; :func:`save_results` writes them atomically and never overwrites a file
unless asked to. :func:`aggregate_over_seeds` turns several models of one algorithm
(``dqn_seed0``, ``dqn_seed1``, ...) into mean ± std over training seeds.

.. code-block:: python

    from robust_rl.evaluation import evaluate_grid, evaluate_suite, save_results

    suite = evaluate_suite({"dqn": model}, n_episodes=100)
    grid = evaluate_grid({"dqn": model}, n_episodes=20)
    print(suite.to_markdown())
    save_results([suite, grid], "experiments/results/cartpole")
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import gymnasium as gym
import numpy as np

from robust_rl._io import atomic_write_bytes, atomic_write_text, check_writable, figure_png
from robust_rl.envs import CARTPOLE_SUITE
from robust_rl.errors import InvalidArgumentError, UnknownNameError

__all__ = [
    "DEFAULT_GRID",
    "EnvSource",
    "EvaluationResults",
    "EvaluationRow",
    "Predictor",
    "aggregate_over_seeds",
    "evaluate_grid",
    "evaluate_returns",
    "evaluate_suite",
    "save_results",
    "strip_seed_suffix",
]


@runtime_checkable
class Predictor(Protocol):
    """Anything with Stable-Baselines3's ``predict``.

    ``observation`` is a batch of shape ``(n_envs, *obs_shape)`` and the returned action has
    shape ``(n_envs, *action_shape)``, as for an SB3 model used with a ``VecEnv``; the second
    returned value (the recurrent state) is ignored.
    """

    def predict(self, observation: Any, *, deterministic: bool = ...) -> tuple[Any, Any]:
        """Return ``(actions, state)`` for a batch of observations."""
        ...


#: A registered gymnasium id, or a zero-argument callable returning a new environment.
EnvSource: TypeAlias = str | Callable[[], gym.Env]

#: Default perturbation grid of :func:`evaluate_grid`: factors multiplying the nominal value,
#: one parameter varied at a time. The suite's MDPs lie on it: heavy pole = masspole x20,
#: short pole = length x0.5, strong gravity = gravity x2.5.
DEFAULT_GRID: Mapping[str, tuple[float, ...]] = {
    "masspole": (0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
    "length": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    "gravity": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SEED_SUFFIX_RE = re.compile(r"^(?P<group>.+?)[_-]?seed\d+$")


# --------------------------------------------------------------------------------------------
# result objects


@dataclass(frozen=True)
class EvaluationRow:
    """The returns of one model on one MDP.

    :param model: the model's name (a key of the ``models`` mapping, or a group after
        :func:`aggregate_over_seeds`).
    :param mdp: display name of the MDP (a suite key, or ``"masspole x2"`` for a grid point).
    :param env: the gymnasium id of the MDP (or the factory's name).
    :param returns: per-episode returns; after :func:`aggregate_over_seeds`, the per-seed mean
        returns of the members.
    :param parameter: the perturbed parameter of a grid point (``None`` for a suite MDP).
    :param factor: the factor multiplying the nominal value (``None`` for a suite MDP).
    :param value: the parameter's value at the grid point (``None`` for a suite MDP).
    :param members: the models aggregated into this row (empty unless aggregated).
    """

    model: str
    mdp: str
    env: str
    returns: tuple[float, ...]
    parameter: str | None = None
    factor: float | None = None
    value: float | None = None
    members: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """Number of returns (episodes, or seeds after aggregation)."""
        return len(self.returns)

    @property
    def mean(self) -> float:
        """Mean of :attr:`returns`."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``, as SB3's ``evaluate_policy``)."""
        return float(np.std(self.returns))


@dataclass(frozen=True)
class EvaluationResults:
    """Returns of several models on several MDPs, with exports to CSV, Markdown and PNG.

    :param kind: ``"suite"`` (named MDPs) or ``"grid"`` (one parameter varied at a time).
    :param rows: one row per (model, MDP), in evaluation order.
    :param n_episodes: episodes per (model, MDP) (per member model after aggregation).
    :param seed: episode ``i`` was reset with seed ``seed + i``.
    :param over: ``"episodes"`` (a row holds per-episode returns) or ``"seeds"`` (a row holds
        per-seed mean returns, see :func:`aggregate_over_seeds`).
    :param name: file stem used by :func:`save_results` (defaults to ``kind``).
    """

    kind: Literal["suite", "grid"]
    rows: tuple[EvaluationRow, ...]
    n_episodes: int
    seed: int
    over: Literal["episodes", "seeds"] = "episodes"
    name: str = ""
    _index: dict[tuple[str, str], EvaluationRow] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind)
        for row in self.rows:
            key = (row.model, row.mdp)
            if key in self._index:
                raise InvalidArgumentError(
                    f"rows: duplicate row for model {row.model!r} on {row.mdp!r}"
                )
            self._index[key] = row

    @property
    def models(self) -> list[str]:
        """Model names, in order of first appearance."""
        return list(dict.fromkeys(r.model for r in self.rows))

    @property
    def mdps(self) -> list[str]:
        """MDP names, in order of first appearance."""
        return list(dict.fromkeys(r.mdp for r in self.rows))

    @property
    def parameters(self) -> list[str]:
        """Perturbed parameters of a grid, in order of first appearance."""
        return list(dict.fromkeys(r.parameter for r in self.rows if r.parameter is not None))

    def row(self, model: str, mdp: str) -> EvaluationRow:
        """The row of ``model`` on ``mdp``.

        :raises KeyError: naming the model or MDP and the available ones.
        """
        try:
            return self._index[(model, mdp)]
        except KeyError:
            raise UnknownNameError(
                f"no row for model {model!r} on MDP {mdp!r}; models: {self.models}, "
                f"MDPs: {self.mdps}"
            ) from None

    def means(self) -> dict[str, dict[str, float]]:
        """``{model: {mdp: mean return}}``."""
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            out.setdefault(r.model, {})[r.mdp] = r.mean
        return out

    def caption(self) -> str:
        """One sentence saying what the numbers are."""
        last = self.seed + self.n_episodes - 1
        episodes = f"{self.n_episodes} episodes (reset seeds {self.seed}..{last})"
        if self.over == "seeds":
            return (
                "Return: mean ± std over training seeds of each seed's mean return over "
                f"{episodes}."
            )
        return f"Return: mean ± std over {episodes}."

    def to_csv(self) -> str:
        """CSV text, one line per row.

        Columns: ``model, mdp, env, parameter, factor, value, over, n, mean, std, seed,
        returns, members``; ``returns`` and ``members`` are ``;``-separated, floats are written
        with :func:`repr` so that they read back exactly, and the grid-only columns are empty
        for a suite.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(
            [
                "model",
                "mdp",
                "env",
                "parameter",
                "factor",
                "value",
                "over",
                "n",
                "mean",
                "std",
                "seed",
                "returns",
                "members",
            ]
        )
        for r in self.rows:
            writer.writerow(
                [
                    r.model,
                    r.mdp,
                    r.env,
                    "" if r.parameter is None else r.parameter,
                    "" if r.factor is None else repr(r.factor),
                    "" if r.value is None else repr(r.value),
                    self.over,
                    r.n,
                    repr(r.mean),
                    repr(r.std),
                    self.seed,
                    ";".join(repr(float(x)) for x in r.returns),
                    ";".join(r.members),
                ]
            )
        return buf.getvalue()

    def to_markdown(self, precision: int = 1, caption: bool = True) -> str:
        """A Markdown table: one row per MDP, one column per model, cells ``mean ± std``.

        :param precision: digits after the decimal point.
        :param caption: put :meth:`caption` above the table.
        """
        if precision < 0:
            raise InvalidArgumentError(f"precision must be >= 0, got {precision}")
        models = self.models
        lines = []
        if caption:
            lines += [self.caption(), ""]
        lines.append("| MDP | " + " | ".join(_md_escape(m) for m in models) + " |")
        lines.append("|---|" + "---:|" * len(models))
        for mdp in self.mdps:
            cells = []
            for model in models:
                r = self._index.get((model, mdp))
                cells.append(
                    "–" if r is None else f"{r.mean:.{precision}f} ± {r.std:.{precision}f}"
                )
            lines.append(f"| {_md_escape(mdp)} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def plot_png(self, dpi: int = 120) -> bytes:
        """PNG of the return versus the perturbation factor (grid results only).

        One panel per parameter (log-scaled factor axis), one line per model (mean, with a
        shaded ± std band), a dotted vertical line at the nominal factor 1.

        :param dpi: resolution of the image.
        :raises ValueError: for suite results, which have no factors.
        """
        if self.kind != "grid":
            raise InvalidArgumentError(
                f"plot_png needs grid results (kind='grid'), got kind={self.kind!r}"
            )
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        params = self.parameters
        fig = Figure(figsize=(4.0 * len(params), 3.4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(params), sharey=True, squeeze=False)[0]
        for ax, param in zip(axes, params, strict=True):
            for model in self.models:
                rows = sorted(
                    (r for r in self.rows if r.model == model and r.parameter == param),
                    key=lambda r: float(r.factor or 0.0),
                )
                if not rows:
                    continue
                x = np.array([r.factor for r in rows], dtype=float)
                mean = np.array([r.mean for r in rows])
                std = np.array([r.std for r in rows])
                (line,) = ax.plot(x, mean, marker="o", label=model)
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
            ax.set_xscale("log")
            factors = sorted({float(r.factor or 0.0) for r in self.rows if r.parameter == param})
            ax.set_xticks(factors, [f"{f:g}" for f in factors])
            ax.minorticks_off()
            ax.set_xlabel(f"{param} factor (x nominal)")
            nominal = {
                f"{r.value / r.factor:.4g}"
                for r in self.rows
                if r.parameter == param and r.value is not None and r.factor
            }
            title = f"{param} (nominal {nominal.pop()})" if len(nominal) == 1 else param
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("return")
        axes[-1].legend(fontsize="small")
        return figure_png(fig, dpi=dpi)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------------------------
# argument checks


def _check_models(models: Mapping[str, Predictor]) -> None:
    if not isinstance(models, Mapping) or len(models) == 0:
        raise InvalidArgumentError(
            f"models must be a non-empty mapping {{name: model with predict()}}, got {models!r}"
        )
    for name, model in models.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"models: names must be non-empty strings, got {name!r}")
        if not callable(getattr(model, "predict", None)):
            raise TypeError(
                f"models[{name!r}] has no predict() method; expected an SB3-style model "
                "with predict(observation, deterministic=True) -> (action, state)"
            )


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_env_id(env_id: str, argument: str) -> None:
    if env_id not in gym.registry:
        ours = sorted(k for k in gym.registry if k.startswith("robust_rl/"))
        raise InvalidArgumentError(
            f"{argument}: unknown environment id {env_id!r}; registered robust_rl ids: "
            f"{', '.join(ours)} (or any other id registered with gymnasium)"
        )


def _env_factory(source: EnvSource, argument: str) -> Callable[[], gym.Env]:
    if isinstance(source, str):
        _check_env_id(source, argument)
        return lambda: gym.make(source)
    if callable(source):
        return source
    raise InvalidArgumentError(
        f"{argument} must be a registered environment id or a callable returning an "
        f"environment, got {source!r}"
    )


# --------------------------------------------------------------------------------------------
# evaluation


def evaluate_returns(
    model: Predictor,
    env: EnvSource,
    n_episodes: int = 10,
    seed: int = 0,
    *,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes of ``model`` on one MDP.

    Episode ``i`` is reset with seed ``seed + i``. Up to ``batch_size`` episodes run in
    lockstep, with one ``predict`` call per step on the batch of their observations; the
    result does not depend on ``batch_size`` for a model whose actions depend on each
    observation alone.

    :param model: an SB3-style model (see :class:`Predictor`).
    :param env: a registered id or a factory returning a fresh environment.
    :param n_episodes: number of episodes, ``>= 1``.
    :param seed: seed of the first episode, ``>= 0``.
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on the episode length; by default the environment's
        registered limit (``env.spec.max_episode_steps``). An environment with neither (e.g.
        an unwrapped instance from a factory) is refused.
    :param batch_size: episodes run in parallel, ``>= 1``.
    :return: float64 array of shape ``(n_episodes,)``.
    :raises ValueError: on an unknown id or bad counts.
    """
    n_episodes = _check_positive_int("n_episodes", n_episodes)
    seed = _check_seed(seed)
    batch_size = _check_positive_int("batch_size", batch_size)
    if max_episode_steps is not None:
        max_episode_steps = _check_positive_int("max_episode_steps", max_episode_steps)
    make = _env_factory(env, "env")
    envs = [make() for _ in range(min(batch_size, n_episodes))]
    try:
        cap = max_episode_steps
        spec = envs[0].spec
        if cap is None and spec is not None and spec.max_episode_steps is not None:
            cap = int(spec.max_episode_steps)
        if cap is None:
            raise InvalidArgumentError(
                f"env {env!r} has no registered time limit (env.spec.max_episode_steps); "
                "pass max_episode_steps or register the environment with one"
            )
        returns = np.zeros(n_episodes, dtype=np.float64)
        for start in range(0, n_episodes, len(envs)):
            episodes = list(range(start, min(start + len(envs), n_episodes)))
            _run_batch(model, envs, episodes, seed, cap, deterministic, returns)
    finally:
        for e in envs:
            e.close()
    return returns


def _run_batch(
    model: Predictor,
    envs: Sequence[gym.Env],
    episodes: Sequence[int],
    seed: int,
    cap: int,
    deterministic: bool,
    returns: np.ndarray,
) -> None:
    obs = [envs[j].reset(seed=seed + i)[0] for j, i in enumerate(episodes)]
    steps = [0] * len(episodes)
    active = list(range(len(episodes)))
    while active:
        actions, _ = model.predict(np.stack([obs[j] for j in active]), deterministic=deterministic)
        actions = np.asarray(actions)
        if actions.ndim == 0 or actions.shape[0] != len(active):
            raise InvalidArgumentError(
                f"model.predict returned actions of shape {actions.shape} for a batch of "
                f"{len(active)} observations; expected a leading dimension of {len(active)}"
            )
        still = []
        for j, action in zip(active, actions, strict=True):
            o, reward, terminated, truncated, _ = envs[j].step(action)
            returns[episodes[j]] += float(reward)
            steps[j] += 1
            if not (terminated or truncated or steps[j] >= cap):
                obs[j] = o
                still.append(j)
        active = still


def evaluate_suite(
    models: Mapping[str, Predictor],
    suite: Mapping[str, EnvSource] = CARTPOLE_SUITE,
    n_episodes: int = 100,
    seed: int = 0,
    *,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
) -> EvaluationResults:
    """Evaluate every model on every MDP of a suite.

    :param models: ``{name: model}``, each with an SB3-style ``predict``.
    :param suite: ``{display name: env id or factory}``; default
        :data:`robust_rl.envs.CARTPOLE_SUITE` (original, heavy pole, short pole, strong gravity).
    :param n_episodes: episodes per (model, MDP); episode ``i`` uses reset seed ``seed + i``.
    :param seed: seed of the first episode.
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: see :func:`evaluate_returns`.
    :param batch_size: see :func:`evaluate_returns`.
    :return: results with ``kind="suite"``, rows ordered by model then MDP.
    :raises ValueError: on an empty ``models`` or ``suite``, an unknown env id (checked before
        anything runs), ``n_episodes < 1`` or a negative seed.
    :raises TypeError: if a model has no ``predict``.
    """
    _check_models(models)
    n_episodes = _check_positive_int("n_episodes", n_episodes)
    seed = _check_seed(seed)
    if not isinstance(suite, Mapping) or len(suite) == 0:
        raise InvalidArgumentError(
            f"suite must be a non-empty mapping {{name: env id or factory}}, got {suite!r}"
        )
    for mdp, source in suite.items():
        _env_factory(source, f"suite[{mdp!r}]")
    rows = []
    for name, model in models.items():
        for mdp, source in suite.items():
            ret = evaluate_returns(
                model,
                source,
                n_episodes,
                seed,
                deterministic=deterministic,
                max_episode_steps=max_episode_steps,
                batch_size=batch_size,
            )
            env_name = source if isinstance(source, str) else getattr(source, "__name__", "")
            rows.append(
                EvaluationRow(
                    model=name,
                    mdp=mdp,
                    env=env_name or repr(source),
                    returns=tuple(float(x) for x in ret),
                )
            )
    return EvaluationResults("suite", tuple(rows), n_episodes=n_episodes, seed=seed)


def evaluate_grid(
    models: Mapping[str, Predictor],
    factors: Mapping[str, Sequence[float]] = DEFAULT_GRID,
    n_episodes: int = 20,
    seed: int = 0,
    *,
    env_id: str = "robust_rl/CartPole-v1",
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
) -> EvaluationResults:
    """Evaluate every model with one physics parameter scaled at a time.

    For each ``parameter`` and ``factor`` in ``factors``, the MDP is
    ``gym.make(env_id, **{parameter: factor * nominal})`` where ``nominal`` is the parameter's
    value in ``env_id``; the other parameters keep their values.

    :param models: ``{name: model}``, each with an SB3-style ``predict``.
    :param factors: ``{parameter: factors}``; default :data:`DEFAULT_GRID`. Parameters must be
        accepted by the environment's ``set_params`` (for CartPole: gravity, masscart,
        masspole, length, force_mag) and factors positive.
    :param n_episodes: episodes per (model, grid point); episode ``i`` uses seed ``seed + i``.
    :param seed: seed of the first episode.
    :param env_id: registered id of the nominal MDP; its constructor takes the parameters as
        keyword arguments.
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: see :func:`evaluate_returns`.
    :param batch_size: see :func:`evaluate_returns`.
    :return: results with ``kind="grid"``; MDP names read ``"masspole x2"``.
    :raises ValueError: on empty inputs, an unknown env id or parameter, a non-positive
        factor, ``n_episodes < 1`` or a negative seed.
    :raises TypeError: if a model has no ``predict``.
    """
    _check_models(models)
    n_episodes = _check_positive_int("n_episodes", n_episodes)
    seed = _check_seed(seed)
    _check_env_id(env_id, "env_id")
    probe = gym.make(env_id)
    try:
        get_params = getattr(probe.unwrapped, "get_params", None)
        if not callable(get_params):
            raise InvalidArgumentError(
                f"env_id: {env_id!r} has no get_params()/set_params(); use an environment "
                "with adjustable physics such as robust_rl/CartPole-v1"
            )
        nominal = dict(get_params())
    finally:
        probe.close()
    points = _check_factors(factors, nominal)
    rows = []
    for name, model in models.items():
        for param, factor in points:
            value = factor * nominal[param]
            ret = evaluate_returns(
                model,
                _grid_factory(env_id, param, value),
                n_episodes,
                seed,
                deterministic=deterministic,
                max_episode_steps=max_episode_steps,
                batch_size=batch_size,
            )
            rows.append(
                EvaluationRow(
                    model=name,
                    mdp=f"{param} x{factor:g}",
                    env=env_id,
                    returns=tuple(float(x) for x in ret),
                    parameter=param,
                    factor=factor,
                    value=value,
                )
            )
    return EvaluationResults("grid", tuple(rows), n_episodes=n_episodes, seed=seed)


def _grid_factory(env_id: str, param: str, value: float) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return gym.make(env_id, **{param: value})

    make.__name__ = f"{env_id}[{param}={value:g}]"
    return make


def _check_factors(
    factors: Mapping[str, Sequence[float]], nominal: Mapping[str, float]
) -> list[tuple[str, float]]:
    accepted = ", ".join(nominal)
    if not isinstance(factors, Mapping) or len(factors) == 0:
        raise InvalidArgumentError(
            f"factors must be a non-empty mapping {{parameter: [factors]}} over {accepted}, "
            f"got {factors!r}"
        )
    points: list[tuple[str, float]] = []
    for param, values in factors.items():
        if param not in nominal:
            raise InvalidArgumentError(
                f"factors: unknown parameter {param!r}; accepted names: {accepted}"
            )
        try:
            fs = [float(f) for f in values]
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"factors[{param!r}] must be a sequence of numbers, got {values!r}"
            ) from None
        if not fs:
            raise InvalidArgumentError(f"factors[{param!r}] is empty; give at least one factor")
        for f in fs:
            if not (math.isfinite(f) and f > 0):
                raise InvalidArgumentError(
                    f"factors[{param!r}] must be positive finite numbers, got {f!r}"
                )
        if len(set(fs)) != len(fs):
            raise InvalidArgumentError(f"factors[{param!r}] has repeated factors: {fs}")
        points += [(param, f) for f in fs]
    return points


# --------------------------------------------------------------------------------------------
# aggregation and output


def strip_seed_suffix(name: str) -> str:
    """Group name of a model trained with one seed: ``"dqn_seed3"`` -> ``"dqn"``.

    Removes a trailing ``seed<digits>`` (with an optional ``_`` or ``-`` before it); other
    names are returned unchanged.

    >>> strip_seed_suffix("robust_dqn-seed12"), strip_seed_suffix("dqn")
    ('robust_dqn', 'dqn')
    """
    m = _SEED_SUFFIX_RE.match(name)
    return m.group("group") if m else name


def aggregate_over_seeds(
    results: EvaluationResults,
    group_of: Callable[[str], str] = strip_seed_suffix,
) -> EvaluationResults:
    """Mean ± std over training seeds of the per-seed mean returns.

    Models are grouped by ``group_of(model name)`` (by default ``dqn_seed0``, ``dqn_seed1``,
    ... form the group ``dqn``). For each group and MDP the new row's ``returns`` are the
    members' mean returns, so its :attr:`~EvaluationRow.mean` is the mean over seeds and its
    :attr:`~EvaluationRow.std` the spread between seeds (not between episodes).

    :param results: per-episode results (``over="episodes"``).
    :param group_of: maps a model name to its group name.
    :return: results with ``over="seeds"`` and ``name=f"{results.name}_over_seeds"``.
    :raises ValueError: if ``results`` are already aggregated, or the members of a group were
        not all evaluated on the same MDPs.
    """
    if results.over != "episodes":
        raise InvalidArgumentError(
            f"results: expected per-episode results (over='episodes'), got over={results.over!r}"
        )
    groups: dict[str, list[str]] = {}
    for model in results.models:
        group = group_of(model)
        if not isinstance(group, str) or not group:
            raise InvalidArgumentError(
                f"group_of({model!r}) must return a non-empty string, got {group!r}"
            )
        groups.setdefault(group, []).append(model)
    rows = []
    for group, members in groups.items():
        for mdp in results.mdps:
            member_rows = [results._index.get((m, mdp)) for m in members]
            missing = [m for m, r in zip(members, member_rows, strict=True) if r is None]
            if missing:
                if len(missing) == len(members):
                    continue
                raise InvalidArgumentError(
                    f"group {group!r}: models {missing} were not evaluated on {mdp!r} while "
                    "other members were"
                )
            first = member_rows[0]
            assert first is not None
            rows.append(
                replace(
                    first,
                    model=group,
                    returns=tuple(r.mean for r in member_rows if r is not None),
                    members=tuple(members),
                )
            )
    return EvaluationResults(
        results.kind,
        tuple(rows),
        n_episodes=results.n_episodes,
        seed=results.seed,
        over="seeds",
        name=f"{results.name}_over_seeds",
    )


def save_results(
    results: EvaluationResults | Iterable[EvaluationResults],
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
) -> list[Path]:
    """Write ``{name}.csv`` and ``{name}.md`` for each result, and ``{name}.png`` for a grid.

    With the default names this gives ``suite.csv``, ``suite.md``, ``grid.csv``, ``grid.md``
    and ``grid.png``. Every file is written atomically; all destinations are checked before
    the first is written, so an existing file stops the call before anything changes.

    :param results: one result or several (with distinct names).
    :param out_dir: destination folder, created if needed.
    :param force: overwrite existing files.
    :return: the written paths.
    :raises FileExistsError: if a destination exists and ``force`` is false.
    :raises ValueError: on no results, repeated names, or a name unfit for a file.
    """
    items = [results] if isinstance(results, EvaluationResults) else list(results)
    if not items:
        raise InvalidArgumentError("results: nothing to save (empty sequence)")
    names = [r.name for r in items]
    for n in names:
        if not _NAME_RE.match(n):
            raise InvalidArgumentError(
                f"results name {n!r} is not a valid file stem (letters, digits, _.-)"
            )
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"results have repeated names {names}; give each a distinct name"
        )
    out = Path(out_dir)
    planned: list[tuple[Path, Callable[[], str | bytes]]] = []
    for r in items:
        planned.append((out / f"{r.name}.csv", r.to_csv))
        planned.append((out / f"{r.name}.md", r.to_markdown))
        if r.kind == "grid":
            planned.append((out / f"{r.name}.png", r.plot_png))
    for path, _ in planned:
        check_writable(path, force)
    written = []
    for path, render in planned:
        data = render()
        if isinstance(data, bytes):
            written.append(atomic_write_bytes(path, data, force=force))
        else:
            written.append(atomic_write_text(path, data, force=force))
    return written
