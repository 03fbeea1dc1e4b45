"""Helpers shared by the environment tests (test_envs*.py, test_task_conformance.py): the class
and perturbed values of a registered task, seeded actions, rollouts and the checks every
registered id must pass."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from robust_rl.envs import get_task


def registered_class(env_id: str) -> type[gym.Env]:
    """The environment class registered for ``env_id`` (its entry point, imported)."""
    return load_env_creator(gym.spec(env_id).entry_point)


def perturbed_value(task_id: str, name: str, factor: float = 1.5) -> float:
    """A value of parameter ``name`` of the task ``task_id`` away from nominal: the edge of the
    uncertainty set farther from nominal, or ``factor`` x nominal outside the set."""
    task = get_task(task_id)
    nominal = task.nominal[name]
    if name in task.uncertainty_set:
        low, high = task.uncertainty_set[name]
        return low if abs(low - nominal) > abs(high - nominal) else high
    return factor * nominal


def sample_actions(env: gym.Env, n: int, seed: int = 0) -> list[Any]:
    """``n`` actions drawn from ``env``'s action space, seeded."""
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def rollout(env: gym.Env, seed: int, actions: list[Any]) -> np.ndarray:
    """Observations of one episode (reset included), stopping at its end."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            break
    return np.stack(out)


def check_every_api(env_id: str, *, render: bool = False) -> None:
    """Gymnasium's checker on the bare env and with its wrappers, then SB3's checker."""
    check_env(gym.make(env_id).unwrapped, skip_render_check=not render)
    check_env(gym.make(env_id), skip_render_check=not render)
    sb3_check_env(gym.make(env_id))


def check_seeding(env_id: str, n_actions: int) -> None:
    """The same reset seed and actions give the same episode; another seed another start."""
    actions = sample_actions(gym.make(env_id), n_actions, seed=1)
    a = rollout(gym.make(env_id), seed=123, actions=actions)
    b = rollout(gym.make(env_id), seed=123, actions=actions)
    assert len(a) > 5
    np.testing.assert_array_equal(a, b)
    c = rollout(gym.make(env_id), seed=124, actions=actions)
    assert not np.array_equal(a[0], c[0])


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path | str, command: str) -> Iterator[None]:
    """Another process holds ``folder``'s :class:`robust_rl._files.FolderLock` meanwhile."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from robust_rl._files import FolderLock\n"
            f"with FolderLock({str(folder)!r}, {command!r}):\n"
            "    print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
