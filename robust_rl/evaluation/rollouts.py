"""Seeded episodes of a policy on one MDP: the loop every evaluation shares.

Episode ``i`` is reset with seed ``seed + i``, so every model meets the same initial states, and
episodes end at the registered time limit (``env.spec.max_episode_steps``) unless a smaller cap
is given. An MDP is a registered gymnasium id plus a dict of physics parameters applied with
``env.unwrapped.set_params(**params)`` before the first reset.

A recurrent policy (sb3-contrib's ``RecurrentPPO``) acts on its memory of the episode as well:
:func:`resolve_model` wraps it in a :class:`RecurrentPredictor`, which the loops here and in
:mod:`~robust_rl.evaluation.lockstep` tell when episodes start (:func:`start_episodes`) and which
rows go on (:func:`keep_rows`), so each episode carries its own LSTM state from its first step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

import gymnasium as gym
import numpy as np

import robust_rl.envs  # noqa: F401  (registers the ids)
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation._checks import check_positive_int, check_seed

__all__ = [
    "EnvSource",
    "ModelLike",
    "Predictor",
    "RecurrentPredictor",
    "WrappedPredictor",
    "action_masks",
    "evaluate_returns",
    "keep_rows",
    "make_env",
    "resolve_model",
    "start_episodes",
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

#: A model to evaluate: an object with ``predict`` (an SB3 model, a hand-written controller) or
#: the path of a saved SB3 model (its class is read from the file, see
#: :func:`robust_rl.evaluation.models.load_model`).
ModelLike: TypeAlias = Predictor | str | os.PathLike[str]


class RecurrentPredictor:
    """A recurrent SB3 model (``RecurrentPPO``) as a :class:`Predictor` of a batch of episodes.

    ``predict`` passes the LSTM state of every row and whether the row's episode starts now;
    :func:`start_episodes` begins ``n`` episodes (fresh state) and :func:`keep_rows` drops the
    rows whose episode ended, so that row ``i`` keeps its own state however the batch shrinks.
    Other attributes are the model's (``policy``, ``observation_space``, ...).

    :param model: an SB3 model whose ``predict`` takes ``state`` and ``episode_start``.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._state: tuple[np.ndarray, ...] | None = None
        self._starts = np.ones(0, dtype=bool)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def start_episodes(self, n: int) -> None:
        """``n`` new episodes, one per row: every row's state starts afresh."""
        self._state = None
        self._starts = np.ones(n, dtype=bool)

    def keep_rows(self, rows: np.ndarray) -> None:
        """Only ``rows`` (indices into the current batch, in order) go on."""
        if self._state is not None:
            self._state = tuple(s[:, rows] for s in self._state)
        self._starts = self._starts[rows]

    def predict(self, observation: Any, *, deterministic: bool = True) -> tuple[Any, Any]:
        """Actions for the current rows, advancing their states."""
        n = len(observation)
        if len(self._starts) != n:
            raise InvalidArgumentError(
                f"recurrent model: a batch of {n} observations for {len(self._starts)} running "
                "episodes (call start_episodes / keep_rows as episodes start and end)"
            )
        actions, self._state = self.model.predict(
            observation, state=self._state, episode_start=self._starts, deterministic=deterministic
        )
        self._starts = np.zeros(n, dtype=bool)
        return actions, None


def is_recurrent(model: Any) -> bool:
    """Whether ``model`` is a recurrent SB3 model (its policy has an LSTM actor)."""
    return getattr(getattr(model, "policy", None), "lstm_actor", None) is not None


def takes_action_masks(model: Any) -> bool:
    """Whether ``model.predict`` takes ``action_masks`` (sb3-contrib's MaskablePPO)."""
    import inspect

    predict = getattr(model, "predict", None)
    if predict is None:
        return False
    try:
        return "action_masks" in inspect.signature(predict).parameters
    except (TypeError, ValueError):
        return False


def uses_action_masks(model: Any) -> bool:
    """Whether ``model``, or the model inside its wrappers (normalisation, attacks; each holds
    ``.model``), takes ``action_masks``."""
    inner = model
    while not takes_action_masks(inner) and getattr(inner, "model", None) is not None:
        inner = inner.model
    return takes_action_masks(inner)


def action_masks(model: Any, envs: Sequence[gym.Env]) -> np.ndarray | None:
    """The envs' action masks (``env.action_masks()``, as sb3-contrib's ``ActionMasker``
    provides) stacked for a model that takes them; None when the model or an env does not."""
    if not uses_action_masks(model):
        return None
    return _masks(envs)


def _masks(envs: Sequence[gym.Env]) -> np.ndarray | None:
    getters: list[Callable[[], Any]] = []
    for e in envs:
        getter = getattr(e, "action_masks", None) or getattr(e.unwrapped, "action_masks", None)
        if not callable(getter):
            return None
        getters.append(getter)
    return np.stack([np.asarray(g(), dtype=np.bool_) for g in getters])


def start_episodes(model: Any, n: int) -> None:
    """Tell a predictor that remembers (:class:`RecurrentPredictor`) that ``n`` episodes start;
    nothing for any other."""
    hook = getattr(model, "start_episodes", None)
    if callable(hook):
        hook(n)


def keep_rows(model: Any, rows: np.ndarray) -> None:
    """Tell a predictor that remembers which rows of its batch go on; nothing for any other."""
    hook = getattr(model, "keep_rows", None)
    if callable(hook):
        hook(np.asarray(rows, dtype=np.int64))


#: :func:`predict_rows` asks an SB3 model for a multiple of this many rows.
PREDICT_ROW_BLOCK = 16


def pad_rows(a: np.ndarray) -> np.ndarray:
    """``a`` with copies of its last row appended up to a whole number of
    :data:`PREDICT_ROW_BLOCK` rows (unchanged when it has one already)."""
    pad = -len(a) % PREDICT_ROW_BLOCK
    return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a


def predict_rows(
    model: Any, obs: np.ndarray, deterministic: bool, **extra: np.ndarray
) -> np.ndarray:
    """``model.predict`` on a batch of observations, its actions returned.

    A network's forward on the CPU computes the last rows of a batch whose size is not a
    multiple of the matrix kernel's block with other kernels, which round differently (measured:
    PPO's and SAC's MLP actions differ by one float32 ulp), so that an episode's actions would
    depend on how many other episodes run beside it; in MuJoCo an ulp grows into another
    trajectory. So an SB3 model (not recurrent, array observations) is asked for a multiple of
    :data:`PREDICT_ROW_BLOCK` rows, the batch padded with copies of its last row (and so is
    each ``extra`` array, e.g. action masks), and the padding's actions are dropped: then a
    row's action is the same in any batch (tested for DQN, PPO, SAC, TD3 and RobustSAC: a
    70-row batch against its parts of 1, 2, 3, 5, 8, 13, 31, 33 and 69 rows). Other predictors
    (controllers, attacked or normalised models) get the batch as it is.
    """
    from stable_baselines3.common.base_class import BaseAlgorithm

    n = len(obs)
    if (
        n % PREDICT_ROW_BLOCK == 0
        or not isinstance(model, BaseAlgorithm)
        or not isinstance(obs, np.ndarray)
    ):
        return np.asarray(model.predict(obs, deterministic=deterministic, **extra)[0])
    more: dict[str, Any] = {k: pad_rows(np.asarray(v)) for k, v in extra.items()}
    actions = model.predict(pad_rows(obs), deterministic=deterministic, **more)[0]
    return np.asarray(actions)[:n]


class WrappedPredictor:
    """Base of the predictors that act through an inner ``self.model`` (attacked observations,
    recorded observations): the episode hooks reach a model inside that remembers, and
    :func:`action_masks` finds a masked model through ``.model``."""

    model: Any

    def start_episodes(self, n: int) -> None:
        """Forwarded to the inner model (see :func:`start_episodes`)."""
        start_episodes(self.model, n)

    def keep_rows(self, rows: np.ndarray) -> None:
        """Forwarded to the inner model (see :func:`keep_rows`)."""
        keep_rows(self.model, rows)


def resolve_model(model: ModelLike, name: str = "model") -> Predictor:
    """Return ``model`` itself, or the SB3 model loaded from a path (on the CPU); a recurrent
    model wrapped in a :class:`RecurrentPredictor`.

    :raises FileNotFoundError: a path that does not exist.
    :raises ValueError: a file that is not a known SB3 model; an object without ``predict``.
    """
    if isinstance(model, (str, os.PathLike)):
        from robust_rl.evaluation.models import load_model

        model = load_model(model, device="cpu")
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgumentError(
            f"{name}: expected an object with predict() or a model file path, got "
            f"{type(model).__name__}"
        )
    if is_recurrent(model) and not isinstance(model, RecurrentPredictor):
        return RecurrentPredictor(model)
    return model


def _check_env_id(env_id: str, name: str) -> None:
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("robust_rl/"))
        raise UnknownNameError(
            f"{name}: unknown environment id {env_id!r}; robust_rl ids: {', '.join(known)}"
        )


def make_env(source: EnvSource, params: Mapping[str, float] | None = None) -> gym.Env:
    """Create the environment of an MDP: ``gym.make(id)`` then ``set_params(**params)``.

    :param source: registered id or factory.
    :param params: physics parameters; empty or ``None`` keeps the environment's own values.
    :raises KeyError: unknown id.
    :raises ValueError: ``params`` given for an environment without ``set_params``, or a
        parameter the environment refuses.
    """
    if isinstance(source, str):
        _check_env_id(source, "env")
        env = gym.make(source)
    elif callable(source):
        env = source()
    else:
        raise InvalidArgumentError(
            f"env must be a registered id or a factory returning an environment, got {source!r}"
        )
    if params:
        set_params = getattr(env.unwrapped, "set_params", None)
        if not callable(set_params):
            env.close()
            raise InvalidArgumentError(
                f"env {source!r} has no set_params(); physics parameters {sorted(params)} "
                "cannot be applied"
            )
        try:
            set_params(**{k: float(v) for k, v in params.items()})
        except (TypeError, ValueError, KeyError) as exc:
            env.close()
            raise InvalidArgumentError(
                f"env {source!r}: bad parameters {dict(params)}: {exc}"
            ) from None
    return env


def evaluate_returns(
    model: ModelLike,
    env_source: EnvSource,
    n_episodes: int = 10,
    seed: int = 0,
    *,
    params: Mapping[str, float] | None = None,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes of ``model`` on one MDP.

    Episode ``i`` is reset with seed ``seed + i``. Up to ``batch_size`` episodes run in
    lockstep, with one ``predict`` call per step on the batch of their observations; the
    result does not depend on ``batch_size`` for a model whose actions depend on each
    observation alone.

    :param model: an SB3-style model (see :class:`Predictor`) or a saved model's path.
    :param env_source: a registered id or a factory returning a fresh environment.
    :param n_episodes: number of episodes, ``>= 1``.
    :param seed: seed of the first episode, ``>= 0``.
    :param params: physics parameters applied with ``set_params`` (see :func:`make_env`).
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on the episode length; by default the environment's
        registered limit (``env.spec.max_episode_steps``). An environment with neither (e.g.
        an unwrapped instance from a factory) is refused.
    :param batch_size: episodes run in parallel, ``>= 1``.
    :return: float64 array of shape ``(n_episodes,)``.
    :raises ValueError: on an unknown id, bad parameters or bad counts.
    """
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_seed(seed)
    batch_size = check_positive_int("batch_size", batch_size)
    if max_episode_steps is not None:
        max_episode_steps = check_positive_int("max_episode_steps", max_episode_steps)
    predictor = resolve_model(model)
    envs = [make_env(env_source, params) for _ in range(min(batch_size, n_episodes))]
    try:
        cap = max_episode_steps
        spec = envs[0].spec
        if cap is None and spec is not None and spec.max_episode_steps is not None:
            cap = int(spec.max_episode_steps)
        if cap is None:
            raise InvalidArgumentError(
                f"env {env_source!r} has no registered time limit (env.spec.max_episode_steps); "
                "pass max_episode_steps or register the environment with one"
            )
        returns = np.zeros(n_episodes, dtype=np.float64)
        for start in range(0, n_episodes, len(envs)):
            episodes = list(range(start, min(start + len(envs), n_episodes)))
            _run_batch(predictor, envs, episodes, seed, cap, deterministic, returns)
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
    start_episodes(model, len(active))
    masked = uses_action_masks(model)  # asked once, not at every step
    while active:
        masks = _masks([envs[j] for j in active]) if masked else None
        extra = {} if masks is None else {"action_masks": masks}
        batch = np.stack([obs[j] for j in active])
        actions = predict_rows(model, batch, deterministic, **extra)
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
        if len(still) < len(active):
            position = {j: k for k, j in enumerate(active)}
            keep_rows(model, np.array([position[j] for j in still], dtype=np.int64))
        active = still
