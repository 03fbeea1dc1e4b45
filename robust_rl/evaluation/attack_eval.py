"""Return versus attack radius: :func:`evaluate_attacks` and the observation scale it may use.

For every model and radius ``ε`` the model acts on attacked observations
(:class:`~robust_rl.evaluation.attacks.AttackedPredictor`) in seeded episodes of one suite MDP
(the nominal one by default). The radius is in observation units per coordinate
(``scale="absolute"``), or relative to a per-coordinate scale: ``scale="std"`` measures each
model's observation standard deviation on clean episodes of that MDP
(:func:`observation_scale`), ``scale="random"`` the standard deviation under uniformly random
actions, the same for every model (:func:`random_observation_scale`), or pass your own ``(d,)``
array. The scale used is recorded in every row (``epsilon_scale``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from robust_rl._progress import Progress
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation._checks import (
    check_models,
    check_nonnegative_float,
    check_positive_int,
    check_seed,
)
from robust_rl.evaluation.attacks import AttackBatch, AttackedPredictor, ObservationAttack
from robust_rl.evaluation.lockstep import lockstep_returns, lockstep_supported
from robust_rl.evaluation.results import EvaluationResults, EvaluationRow
from robust_rl.evaluation.rollouts import (
    ModelLike,
    WrappedPredictor,
    evaluate_returns,
    resolve_model,
)
from robust_rl.evaluation.suites import MDP, Split, Suite, get_suite

__all__ = ["evaluate_attacks", "observation_scale", "random_observation_scale"]


class _Recorder(WrappedPredictor):
    def __init__(self, model: Any) -> None:
        self.model = model
        self.seen: list[np.ndarray] = []

    def predict(
        self, observation: Any, *, deterministic: bool = True, **kwargs: Any
    ) -> tuple[Any, Any]:
        self.seen.append(np.asarray(observation, dtype=np.float64).reshape(len(observation), -1))
        return self.model.predict(observation, deterministic=deterministic, **kwargs)


class _UniformActions:
    """Uniformly random actions (a batch per call) from a seeded generator: the policy behind
    :func:`random_observation_scale`."""

    def __init__(self, action_space: gym.Space, seed: int) -> None:
        if isinstance(action_space, gym.spaces.Box):
            if not (
                np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))
            ):
                raise InvalidArgumentError(
                    f"scale='random': the action space must be bounded, got {action_space}"
                )
        elif not isinstance(action_space, gym.spaces.Discrete):
            raise InvalidArgumentError(
                f"scale='random': expected a Box or Discrete action space, got {action_space}"
            )
        self.space = action_space
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: Any, *, deterministic: bool = True) -> tuple[Any, None]:
        n = len(observation)
        if isinstance(self.space, gym.spaces.Discrete):
            start = int(self.space.start)
            return self.rng.integers(start, start + int(self.space.n), size=n), None
        low, high = self.space.low, self.space.high
        actions = self.rng.uniform(low, high, size=(n, *self.space.shape))
        return actions.astype(self.space.dtype), None


def _pick_mdp(s: Suite, split: Split, mdp: str | None) -> MDP:
    mdps = s.mdps(split)
    if mdp is None:
        return mdps[0]
    for m in mdps:
        if m.name == mdp:
            return m
    raise UnknownNameError(
        f"mdp: suite {s.name!r} has no {split} MDP {mdp!r}; {split} MDPs: "
        f"{', '.join(m.name for m in mdps)}"
    )


def observation_scale(
    model: ModelLike,
    suite: str | os.PathLike[str] | Suite,
    n_episodes: int = 5,
    seed: int = 0,
    *,
    split: Split = "test",
    mdp: str | None = None,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
) -> np.ndarray:
    """Per-coordinate standard deviation of the observations ``model`` sees on clean episodes.

    :param model: a model or saved model path.
    :param suite: suite name, YAML path or :class:`Suite`.
    :param n_episodes: episodes (reset seeds ``seed ..``).
    :param seed: reset seed of the first episode.
    :param split: split of ``mdp``.
    :param mdp: MDP name (default: the split's first, the nominal test MDP).
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on episode length.
    :return: float64 array ``(d,)`` (population std over every step of every episode).
    """
    s = get_suite(suite)
    m = _pick_mdp(s, split, mdp)
    rec = _Recorder(resolve_model(model))
    evaluate_returns(
        rec,
        s.nominal_id,
        n_episodes,
        seed,
        params=m.params,
        deterministic=deterministic,
        max_episode_steps=max_episode_steps,
    )
    return np.concatenate(rec.seen).std(axis=0)


def check_epsilons(epsilons: Sequence[float]) -> list[float]:
    """Attack radii: a non-empty list of distinct finite numbers ``>= 0``."""
    if isinstance(epsilons, (int, float)) or len(epsilons) == 0:
        raise InvalidArgumentError(f"epsilons must be a non-empty list of radii, got {epsilons!r}")
    eps = [check_nonnegative_float("epsilons", e) for e in epsilons]
    if len(set(eps)) != len(eps):
        raise InvalidArgumentError(f"epsilons must be distinct, got {list(epsilons)}")
    return eps


def evaluate_attacks(
    models: Mapping[str, ModelLike],
    suite: str | os.PathLike[str] | Suite,
    n_episodes: int = 10,
    seed: int = 0,
    *,
    attack: str = "random",
    epsilons: Sequence[float] = (0.0, 0.05, 0.1),
    scale: Literal["absolute", "std", "random", "normalized"]
    | Sequence[float]
    | np.ndarray = "absolute",
    split: Split = "test",
    mdp: str | None = None,
    steps: int = 10,
    scale_episodes: int = 5,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
    lockstep: bool | None = None,
) -> EvaluationResults:
    """Mean return of every model under an observation attack, for every radius.

    :param models: ``{name: model}`` (SB3 models or saved model paths; ``"random"`` also takes
        any object with ``predict`` and a Box ``observation_space``).
    :param suite: suite name, YAML path or :class:`Suite`.
    :param n_episodes: episodes per (model, ε); episode ``i`` uses reset seed ``seed + i``.
    :param seed: reset seed of the first episode; the attack's own randomness (noise, random
        starts) is seeded with ``seed * 1000 + k`` for the ``k``-th radius.
    :param attack: ``"random"`` (uniform in the ball), ``"pgd"`` (the gradient attack that
        fits each model: ``"q"`` for DQN-like agents, ``"critic"`` for SAC/TD3-like agents,
        ``"mad"`` for PPO/A2C-like agents), or one of ``"q"``, ``"critic"``, ``"mad"``.
    :param epsilons: radii ``>= 0``, distinct; include ``0`` for the clean return.
    :param scale: ``"absolute"`` (ε in observation units), ``"std"`` (ε times each model's
        observation std on clean episodes, :func:`observation_scale`), ``"random"`` (ε times
        the observation std under uniformly random actions, the same for every model:
        :func:`random_observation_scale`), ``"normalized"`` (ε in the normalised units of
        models behind their ``VecNormalize`` statistics,
        :class:`~robust_rl.evaluation.normalization.NormalizedModel`) or a ``(d,)`` array.
    :param split: split of ``mdp``.
    :param mdp: the MDP attacked (default: the split's first, the nominal test MDP).
    :param steps: PGD steps (step ``ε / steps``, random start).
    :param scale_episodes: clean episodes for ``scale="std"`` (``"random"`` takes
        :data:`RANDOM_SCALE_STEPS` random-action steps).
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on episode length.
    :param batch_size: episodes per ``predict`` call on the per-radius path.
    :param progress: draw a progress bar on stderr (episodes done, rate, ETA).
    :param lockstep: run every (radius, episode) of a model together on the task's batched
        simulator (:func:`~robust_rl.evaluation.lockstep.lockstep_returns`), one attack call
        (:class:`~robust_rl.evaluation.attacks.AttackBatch`: one PGD over all radii) and one
        ``predict`` per step; by default where the suite's task has a batched simulator. The
        returns are those of the per-radius path (``lockstep=False``: one radius at a time,
        ``batch_size`` episodes per call) whenever ``n_episodes <= batch_size`` (asserted in the
        tests): each radius keeps its own random stream.
    :return: results (``name="attack"``) with one ``kind="attack"`` row per (model, ε):
        ``attack`` is the concrete attack, ``epsilon`` the radius, ``epsilon_scale`` the
        per-coordinate scale (empty for absolute radii).
    :raises ValueError: bad radii, scale, steps; an attack that does not apply to a model; a
        non-Box observation space.
    :raises KeyError: unknown attack, suite or MDP.
    """
    check_models(models)
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_seed(seed)
    steps = check_positive_int("steps", steps)
    eps = check_epsilons(epsilons)
    s = get_suite(suite)
    m = _pick_mdp(s, split, mdp)
    if isinstance(scale, str) and scale == "random":  # model-independent: measured once
        scale = random_observation_scale(
            s, RANDOM_SCALE_STEPS, seed, split=split, mdp=m.name,
            max_episode_steps=max_episode_steps,
        )  # fmt: skip
    use_lockstep = lockstep_supported(s.nominal_id) if lockstep is None else bool(lockstep)
    rows = []
    total = len(models) * len(eps) * n_episodes
    with Progress(total, f"attack {attack}", progress, unit="episode") as bar:
        for name, model in models.items():
            predictor = resolve_model(model, f"models[{name!r}]")
            coord_scale = _scale(
                predictor,
                scale,
                s,
                m,
                split,
                scale_episodes,
                seed,
                deterministic,
                max_episode_steps,
            )
            bounds = [
                ObservationAttack(
                    predictor,
                    attack,
                    e if coord_scale is None else e * coord_scale,
                    seed=seed * 1000 + k,
                    steps=steps,
                )
                for k, e in enumerate(eps)
            ]
            returns_per_radius = _attacked_returns(
                predictor, bounds, s.nominal_id, m.params, n_episodes, seed,
                deterministic=deterministic, max_episode_steps=max_episode_steps,
                batch_size=batch_size, lockstep=use_lockstep, on_done=bar.update,
            )  # fmt: skip
            for e, bound, returns in zip(eps, bounds, returns_per_radius, strict=True):
                rows.append(
                    EvaluationRow(
                        model=name,
                        mdp=m.name,
                        env=s.nominal_id,
                        returns=tuple(returns),
                        kind="attack",
                        split=split,
                        params=m.params,
                        attack=bound.name,
                        epsilon=e,
                        epsilon_scale=() if coord_scale is None else tuple(coord_scale),
                        seed=seed,
                    )
                )
    return EvaluationResults(tuple(rows), name="attack", suite=s.name)


def _attacked_returns(
    predictor: Any,
    bounds: Sequence[ObservationAttack],
    env_id: str,
    params: Mapping[str, float],
    n_episodes: int,
    seed: int,
    *,
    deterministic: bool,
    max_episode_steps: int | None,
    batch_size: int,
    lockstep: bool,
    on_done: Callable[[int], None],
) -> list[np.ndarray]:
    """Returns of ``n_episodes`` episodes under each bound attack: all radii in one lockstep
    batch, or one radius after another (``on_done`` is told how many episodes ended)."""
    if lockstep:
        return lockstep_returns(
            predictor,
            env_id,
            [params] * len(bounds),
            n_episodes,
            seed,
            deterministic=deterministic,
            max_episode_steps=max_episode_steps,
            observe=AttackBatch(bounds, n_episodes),
            on_done=on_done,
        )
    out = []
    for bound in bounds:
        out.append(
            evaluate_returns(
                AttackedPredictor(predictor, bound),
                env_id,
                n_episodes,
                seed,
                params=params,
                deterministic=deterministic,
                max_episode_steps=max_episode_steps,
                batch_size=batch_size,
            )
        )
        on_done(n_episodes)
    return out


#: random-action steps behind ``scale="random"`` (SB3's ``learning_starts`` of the MuJoCo configs)
RANDOM_SCALE_STEPS = 10_000


def random_observation_scale(
    suite: str | os.PathLike[str] | Suite,
    n_steps: int = RANDOM_SCALE_STEPS,
    seed: int = 0,
    *,
    split: Split = "test",
    mdp: str | None = None,
    max_episode_steps: int | None = None,
) -> np.ndarray:
    """Per-coordinate standard deviation of the observations under uniformly random actions.

    Unlike :func:`observation_scale` it does not depend on the model: every model is attacked
    with the same radii, and they are in the units of the robust agents' ``radius_scale="std"``
    (the replay buffer at their first update holds ``learning_starts`` random-action steps).
    Random episodes can be short (an InvertedPendulum falls in a few steps), so the budget is
    in steps: whole episodes, 32 at a time, until at least ``n_steps`` actions were taken.

    :param suite: suite name, YAML path or :class:`Suite`.
    :param n_steps: at least this many observations (each one an action was chosen on).
    :param seed: reset seed of the first episode (episode ``i``: ``seed + i``) and the seed of
        the actions' generator.
    :param split: split of ``mdp``.
    :param mdp: MDP name (default: the split's first, the nominal test MDP).
    :param max_episode_steps: extra cap on episode length.
    :return: float64 array ``(d,)`` (population std over every step of every episode).
    :raises InvalidArgumentError: an unbounded Box or a non-Box, non-Discrete action space.
    """
    s = get_suite(suite)
    m = _pick_mdp(s, split, mdp)
    check_positive_int("n_steps", n_steps)
    env = gym.make(s.nominal_id)
    try:
        policy = _UniformActions(env.action_space, seed)
    finally:
        env.close()
    rec = _Recorder(policy)
    batch, done = 32, 0
    while sum(len(o) for o in rec.seen) < n_steps:
        evaluate_returns(
            rec,
            s.nominal_id,
            batch,
            seed + done,
            params=m.params,
            max_episode_steps=max_episode_steps,
            batch_size=batch,
        )
        done += batch
    return np.concatenate(rec.seen).std(axis=0)


def _scale(
    model: Any,
    scale: Any,
    s: Suite,
    m: MDP,
    split: Split,
    n_episodes: int,
    seed: int,
    deterministic: bool,
    max_episode_steps: int | None,
) -> np.ndarray | None:
    if isinstance(scale, str):
        if scale == "absolute":
            return None
        if scale == "normalized":
            norm = getattr(model, "normalization", None)
            if norm is None:
                raise InvalidArgumentError(
                    "scale 'normalized' needs models behind their observation normalisation "
                    "(NormalizedModel; CLI: --vecnormalize or vecnormalize.pkl beside the model)"
                )
            return np.asarray(norm.std, dtype=np.float64).copy()
        if scale == "std":
            return observation_scale(
                model,
                s,
                check_positive_int("scale_episodes", n_episodes),
                seed,
                split=split,
                mdp=m.name,
                deterministic=deterministic,
                max_episode_steps=max_episode_steps,
            )
        raise InvalidArgumentError(
            "scale must be 'absolute', 'std', 'random', 'normalized' or a per-coordinate array, "
            f"got {scale!r}"
        )
    arr = np.asarray(scale, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidArgumentError(
            f"scale must be a 1-D array of finite values >= 0, got {scale!r}"
        )
    return arr
