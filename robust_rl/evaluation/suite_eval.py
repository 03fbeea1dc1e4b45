"""Evaluate models on the named MDPs of a suite (its test or validation split)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from robust_rl.evaluation._checks import check_models, check_positive_int, check_seed
from robust_rl.evaluation._parallel import Backend, RolloutTask, run_tasks
from robust_rl.evaluation.results import EvaluationResults, EvaluationRow
from robust_rl.evaluation.rollouts import ModelLike
from robust_rl.evaluation.suites import Split, Suite, get_suite

__all__ = ["evaluate_suite"]


def evaluate_suite(
    models: Mapping[str, ModelLike],
    suite: str | os.PathLike[str] | Suite,
    n_episodes: int = 100,
    seed: int = 0,
    *,
    split: Split = "test",
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    batch_size: int = 32,
    n_workers: int = 1,
    backend: Backend = "local",
    address: str | None = None,
    lockstep: bool | None = None,
    progress: bool = False,
) -> EvaluationResults:
    """Evaluate every model on every MDP of one split of a suite.

    :param models: ``{name: model}``: objects with an SB3-style ``predict``, or paths of saved
        SB3 models (any algorithm, see :func:`robust_rl.evaluation.load_model`).
    :param suite: a registered suite name, a suite YAML path, or a :class:`Suite`.
    :param n_episodes: episodes per (model, MDP); episode ``i`` uses reset seed ``seed + i``.
    :param seed: seed of the first episode.
    :param split: ``"test"`` (the MDPs a table reports) or ``"validation"`` (for tuning).
    :param deterministic: passed on to ``predict``.
    :param max_episode_steps: extra cap on episode length (default: the registered limit).
    :param batch_size: episodes run in lockstep per ``predict`` call.
    :param n_workers: processes (``"local"``: this one and ``n_workers - 1`` spawned workers)
        or concurrent Ray tasks; ``1``: everything in this process.
    :param backend: ``"local"`` (processes) or ``"ray"``.
    :param address: Ray address (``backend="ray"`` only), see
        :func:`robust_rl.evaluation.evaluate_grid`.
    :param lockstep: step every (MDP, episode) of a model together on the task's batched
        simulator (see :func:`robust_rl.evaluation._parallel.run_tasks`); ``None``: whenever
        the task has one and the backend is ``"local"``; ``False``: the scalar path.
    :param progress: draw a progress bar on stderr (episodes done, rate, ETA).
    :return: results (``name="suite"``) with one ``kind="suite"`` row per (model, MDP), in
        the order models × MDPs, each row carrying ``split``, ``params`` and ``seed``.
    :raises ValueError: empty ``models``, unknown split, bad counts, unknown env id.
    :raises KeyError: unknown suite name.
    """
    check_models(models)
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_seed(seed)
    s = get_suite(suite)
    mdps = s.mdps(split)
    tasks = [
        RolloutTask(
            name,
            s.nominal_id,
            m.params,
            n_episodes,
            seed,
            deterministic,
            max_episode_steps,
            batch_size,
        )
        for name in models
        for m in mdps
    ]
    returns = run_tasks(
        models,
        tasks,
        n_workers=n_workers,
        backend=backend,
        address=address,
        lockstep=lockstep,
        progress=progress,
        desc="suite",
    )
    rows = [
        EvaluationRow(
            model=t.model,
            mdp=m.name,
            env=s.nominal_id,
            returns=tuple(ret),
            kind="suite",
            split=split,
            params=m.params,
            seed=seed,
        )
        for t, m, ret in zip(tasks, [m for _ in models for m in mdps], returns, strict=True)
    ]
    return EvaluationResults(tuple(rows), name="suite", suite=s.name)
