r"""Episodes of many MDPs in lockstep on a task's batched simulator.

A grid over an uncertainty set runs ``points × episodes`` episodes of one model. The scalar path
(:func:`robust_rl.evaluation.rollouts.evaluate_returns`) steps one gymnasium env per episode and
calls ``predict`` on the episodes of one grid point. Here every (point, episode) row advances
together: one ``predict`` per step on all unfinished rows, one call of the task's
:class:`~robust_rl.envs.simulators.BatchedSimulator` (each row under its own physics), finished
rows dropped. The start of episode ``i`` at a point is what the scalar env gives:
``set_params(point)`` then ``reset(seed=seed + i)`` on one env, whose physics state is read back;
from there the simulator's arithmetic equals the env's step (tested row for row): the states,
actions and episode lengths are the scalar path's exactly, and so are the returns, but for
Pendulum's, whose cost term ``0.001·u²`` NumPy squares differently for a float32 scalar than for
an array (a float32 rounding of that term per step: returns agree to within 1e-8, about 1e-12
relative under NumPy 2 and 1e-9 under NumPy 1). Asserted in the tests.

The MuJoCo robots step the same way (:class:`~robust_rl.envs.mujoco.simulator.MujocoEpisodes`:
one ``MjData`` per episode, so that the solver's warm start is carried as in the env): their
returns are the scalar path's exactly (asserted in the tests).

Used by :func:`robust_rl.evaluation.evaluate_grid` and
:func:`~robust_rl.evaluation.evaluate_suite` for every task with a batched simulator.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from robust_rl.envs.simulators import EpisodeBatch
from robust_rl.envs.tasks import TaskSpec, get_task
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.evaluation.rollouts import Predictor, keep_rows, predict_rows, start_episodes

__all__ = ["lockstep_returns", "lockstep_supported"]

#: wrappers ``gym.make`` adds that change neither observations, actions nor rewards
_NEUTRAL_WRAPPERS = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker")


def _neutral(wrapper: gym.Wrapper) -> bool:
    """Whether ``wrapper`` is one of :data:`_NEUTRAL_WRAPPERS` or a subclass of one (the RL Zoo
    replaces gymnasium's ``TimeLimit`` by a subclass that only adds an ``info`` key)."""
    return any(
        c.__name__ in _NEUTRAL_WRAPPERS and c.__module__.startswith("gymnasium.")
        for c in type(wrapper).__mro__
    )


def _task_of(env_id: str) -> TaskSpec | None:
    """The task whose nominal id is ``env_id`` (None for any other id)."""
    try:
        return get_task(env_id)
    except UnknownNameError:
        return None


def lockstep_supported(env_id: str) -> bool:
    """Whether ``env_id`` is a nominal task id with a batched simulator (for a MuJoCo robot:
    ``mujoco`` installed) and no wrapper beyond those of ``gym.make`` (so that the simulator
    reproduces its episodes)."""
    task = _task_of(env_id)
    if task is None or not task.simulator:
        return False
    if task.needs_mujoco and importlib.util.find_spec("mujoco") is None:
        return False
    env = gym.make(env_id)
    try:
        layer: gym.Env = env
        while isinstance(layer, gym.Wrapper):
            if not _neutral(layer):
                return False
            layer = layer.env
        return True
    finally:
        env.close()


def lockstep_returns(
    model: Predictor,
    env_id: str,
    points: Sequence[Mapping[str, float]],
    n_episodes: int,
    seed: int,
    *,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    chunk_size: int = 1024,
    threads: int = 1,
    observe: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Returns of ``n_episodes`` episodes (reset seeds ``seed .. seed + n_episodes - 1``) at
    every point, all stepped together.

    :param model: an object with ``predict`` (its actions must depend on each observation alone,
        as an SB3 policy's do).
    :param env_id: a task's nominal id (see :func:`lockstep_supported`).
    :param points: physics parameters of each MDP (``set_params`` keywords).
    :param n_episodes: episodes per point.
    :param seed: reset seed of each point's first episode.
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on the episode length (the id's time limit applies).
    :param chunk_size: rows stepped together (bounds the memory of one ``predict``).
    :param threads: native threads stepping a MuJoCo robot's rows (the returns do not depend
        on it); the classic-control simulators are vectorised and ignore it.
    :param observe: ``observe(obs, rows) -> obs`` maps the observations of the unfinished
        rows (row ``p * n_episodes + i`` is episode ``i`` of point ``p``; ascending) to those
        the model is shown, e.g. an observation attack per row
        (:class:`~robust_rl.evaluation.attacks.AttackBatch`).
    :param on_done: called with the number of episodes that ended at each step (a progress
        bar's ``update``).
    :return: one float64 array of ``n_episodes`` returns per point, in order.
    :raises InvalidArgumentError: an id without a batched simulator; actions of the
        wrong shape.
    """
    if not lockstep_supported(env_id):
        raise InvalidArgumentError(
            f"{env_id} has no batched simulator (or is wrapped): evaluate it "
            "with robust_rl.evaluation.evaluate_returns"
        )
    simulator = get_task(env_id).make_simulator(threads=threads)
    env = gym.make(env_id)
    try:
        cap = int(env.spec.max_episode_steps) if env.spec and env.spec.max_episode_steps else None
        if max_episode_steps is not None:
            cap = max_episode_steps if cap is None else min(cap, max_episode_steps)
        if cap is None:
            raise InvalidArgumentError(f"{env_id} has no time limit; pass max_episode_steps")
        starts = _starts(env, simulator.param_names, points, n_episodes, seed)
    finally:
        env.close()
    states, params, obs = starts
    returns = np.zeros(len(states), dtype=np.float64)
    for lo in range(0, len(states), chunk_size):
        hi = min(lo + chunk_size, len(states))
        batch = simulator.episodes(states[lo:hi], params[lo:hi])
        seen = None if observe is None else (lambda o, rows, lo=lo: observe(o, rows + lo))
        returns[lo:hi] = _run_chunk(model, batch, obs[lo:hi], cap, deterministic, seen, on_done)
    return [returns[i * n_episodes : (i + 1) * n_episodes] for i in range(len(points))]


def _starts(
    env: gym.Env,
    names: Sequence[str],
    points: Sequence[Mapping[str, float]],
    n_episodes: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial physics states, parameter rows and observations of every (point, episode)."""
    base = env.unwrapped
    nominal = base.get_params()  # type: ignore[attr-defined]
    states, params, obs = [], [], []
    for point in points:
        base.set_params(**{**nominal, **{k: float(v) for k, v in point.items()}})  # type: ignore[attr-defined]
        resolved = base.get_params()  # type: ignore[attr-defined]
        row = [resolved[n] for n in names]
        for i in range(n_episodes):
            o, _ = env.reset(seed=seed + i)
            states.append(base.get_physics_state())  # type: ignore[attr-defined]
            params.append(row)
            obs.append(o)
    return (
        np.asarray(states, dtype=np.float64),
        np.asarray(params, dtype=np.float64),
        np.asarray(obs),
    )


def _run_chunk(
    model: Predictor,
    batch: EpisodeBatch,
    obs: np.ndarray,
    cap: int,
    deterministic: bool,
    observe: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    on_done: Callable[[int], None] | None = None,
) -> np.ndarray:
    n = len(batch.states)
    obs = obs.copy()
    returns = np.zeros(n, dtype=np.float64)
    steps = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    start_episodes(model, len(active))
    while len(active):
        shown = obs[active] if observe is None else observe(obs[active], active)
        actions = predict_rows(model, shown, deterministic)
        if actions.ndim == 0 or actions.shape[0] != len(active):
            raise InvalidArgumentError(
                f"model.predict returned actions of shape {actions.shape} for a batch of "
                f"{len(active)} observations; expected a leading dimension of {len(active)}"
            )
        out = batch.step(active, actions)
        returns[active] += out.rewards
        steps[active] += 1
        obs[active] = out.observations
        going = ~(out.terminated | (steps[active] >= cap))
        if not going.all():
            keep_rows(model, np.flatnonzero(going))
            if on_done is not None:
                on_done(int(len(going) - going.sum()))
        active = active[going]
    return returns
