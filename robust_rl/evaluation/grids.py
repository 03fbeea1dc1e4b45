"""Evaluate models on an inclusive grid over a suite's uncertainty set, in parallel if asked.

The grid has ``points`` values per axis, ``numpy.linspace(low, high, points)`` (both bounds
evaluated), over every parameter of the suite's uncertainty set (or the chosen ``axes``; the
others stay nominal), and every combination is an MDP. Each grid point is an independent task,
spread over spawned worker processes (``n_workers``) or Ray tasks (``backend="ray"``); the
returns do not depend on either. Every point's episodes use the same reset seeds
``seed .. seed + n_episodes - 1`` (common random numbers across points and models).

Headline numbers (:meth:`EvaluationResults.summary`): the **average** (mean over grid points of
the mean return) and the **worst case** (min over grid points of the mean return).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import gymnasium as gym

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation._checks import check_models, check_positive_int, check_seed
from robust_rl.evaluation._parallel import Backend, RolloutTask, run_tasks
from robust_rl.evaluation.results import EvaluationResults, EvaluationRow, grid_label
from robust_rl.evaluation.rollouts import ModelLike
from robust_rl.evaluation.suites import Suite, get_suite, grid_points

__all__ = ["evaluate_grid", "grid_label"]


def evaluate_grid(
    models: Mapping[str, ModelLike],
    suite: str | os.PathLike[str] | Suite,
    n_episodes: int = 10,
    seed: int = 0,
    *,
    points: int = 5,
    axes: Sequence[str] | None = None,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
    n_workers: int = 1,
    backend: Backend = "local",
    address: str | None = None,
    lockstep: bool | None = None,
    progress: bool = False,
) -> EvaluationResults:
    """Evaluate every model at every point of the grid over ``suite``'s uncertainty set.

    :param models: ``{name: model}``: objects with ``predict`` or saved SB3 model paths. With
        ``n_workers > 1`` or Ray they are sent to workers as files (a live SB3 model is saved
        to a temporary zip) or cloudpickled (other objects).
    :param suite: a registered name, a YAML path or a :class:`Suite`.
    :param n_episodes: episodes per (model, grid point).
    :param seed: reset seed of the first episode of every point.
    :param points: grid points per axis, ``2..suite.max_grid_points``; ``points ** len(axes)``
        MDPs per model.
    :param axes: parameters to vary (default: the whole uncertainty set).
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on episode length.
    :param batch_size: episodes run in lockstep per ``predict`` call.
    :param n_workers: processes (``"local"``: this one and ``n_workers - 1`` spawned workers)
        or concurrent Ray tasks.
    :param backend: ``"local"`` or ``"ray"``.
    :param address: Ray address (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``); ``None``
        starts a private Ray with ``n_workers`` CPUs (shut down afterwards). A Ray already
        initialised in this process is used as it is.
    :param lockstep: step every (point, episode) of a model together on the task's batched
        simulator (see :func:`robust_rl.evaluation._parallel.run_tasks`); ``None``: whenever
        the task has one and the backend is ``"local"``; ``False``: the scalar path.
    :param progress: draw a progress bar on stderr (episodes done, rate, ETA).
    :return: results (``name="grid"``, ``axes`` set) with one ``kind="grid"`` row per (model,
        point); ``row.params`` holds the point.
    :raises ValueError: bad counts, ``points`` or ``axes``; unknown env id.
    :raises KeyError: unknown suite name.
    """
    check_models(models)
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_seed(seed)
    s = get_suite(suite)
    env_id = s.nominal_id
    if env_id not in gym.registry:
        raise InvalidArgumentError(
            f"suite {s.name!r}: its environment {env_id!r} is not registered (a MuJoCo task "
            "needs the mujoco extra: pip install 'robust-rl[mujoco]')"
        )
    pts = grid_points(s, points, axes)
    labels = [grid_label(p) for p in pts]
    tasks = [
        RolloutTask(name, env_id, p, n_episodes, seed, deterministic, max_episode_steps, batch_size)
        for name in models
        for p in pts
    ]
    returns = run_tasks(
        models,
        tasks,
        n_workers=n_workers,
        backend=backend,
        address=address,
        lockstep=lockstep,
        progress=progress,
        desc="grid",
    )
    rows = [
        EvaluationRow(
            model=t.model,
            mdp=label,
            env=env_id,
            returns=tuple(ret),
            kind="grid",
            params=t.params,
            seed=seed,
        )
        for t, label, ret in zip(tasks, labels * len(models), returns, strict=True)
    ]
    return EvaluationResults(tuple(rows), name="grid", suite=s.name, axes=tuple(pts[0]))
