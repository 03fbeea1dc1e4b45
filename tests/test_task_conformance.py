"""Conformance of every registered id, derived from the task registry (``robust_rl.envs.TASKS``):
a new task or variant is tested without being added to any list here."""

from __future__ import annotations

import importlib.util

import pytest
from envtools import check_every_api, check_seeding

from robust_rl.envs import TASKS, registered_ids

#: registered id -> the task it belongs to (nominal, variant or domain-randomised id)
TASK_OF = {
    env_id: task
    for task in TASKS
    for env_id in (task.id, *task.variants, task.domain_randomized_id)
}
IDS = list(registered_ids())
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
HAS_PYGAME = importlib.util.find_spec("pygame") is not None


def _skip_without_mujoco(env_id: str) -> None:
    if TASK_OF[env_id].needs_mujoco and not HAS_MUJOCO:
        pytest.skip("the MuJoCo tasks need the mujoco extra")


def test_every_registered_id_belongs_to_a_task() -> None:
    assert set(IDS) == set(TASK_OF)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.filterwarnings("ignore")
def test_env_checkers_pass(env_id: str) -> None:
    _skip_without_mujoco(env_id)
    render = HAS_PYGAME and TASK_OF[env_id].id == "robust_rl/CartPole-v1"
    check_every_api(env_id, render=render)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_rollout(env_id: str) -> None:
    _skip_without_mujoco(env_id)
    check_seeding(env_id, 40 if TASK_OF[env_id].needs_mujoco else 100)


def _param_cases() -> list[tuple[str, str]]:
    return [(task.id, name) for task in TASKS for name in task.nominal]


def _bang_bang(space, n: int) -> list:
    """Actions alternating between the space's extremes every 10 steps (every torque beyond any
    smaller limit, every push as hard as allowed)."""
    import numpy as np

    if hasattr(space, "n"):  # Discrete
        return [0 if i % 20 < 10 else int(space.n) - 1 for i in range(n)]
    return [
        np.asarray(space.high if i % 20 < 10 else space.low, dtype=space.dtype) for i in range(n)
    ]


@pytest.mark.parametrize(("env_id", "name"), _param_cases())
def test_every_parameter_reaches_the_simulator(env_id: str, name: str) -> None:
    """Setting one parameter (to the edge of the set farther from nominal, or 1.5 x nominal)
    is read back and changes the episode under the same seed and actions."""
    import gymnasium as gym
    import numpy as np
    from envtools import rollout

    task = TASK_OF[env_id]
    _skip_without_mujoco(env_id)
    nominal = task.nominal[name]
    low, high = task.uncertainty_set.get(name, (1.5 * nominal, 1.5 * nominal))
    value = low if abs(low - nominal) > abs(high - nominal) else high
    assert value != nominal
    base, changed = gym.make(env_id).unwrapped, gym.make(env_id).unwrapped
    changed.set_params(**{name: value})
    assert changed.get_params() == {**base.get_params(), name: pytest.approx(value)}
    actions = _bang_bang(base.action_space, 15 if task.needs_mujoco else 60)
    a, b = rollout(base, seed=5, actions=actions), rollout(changed, seed=5, actions=actions)
    if min(len(a), len(b)) <= 10:  # it falls at once (InvertedPendulum): do not push
        actions = [np.zeros_like(x) for x in actions]
        a, b = rollout(base, seed=5, actions=actions), rollout(changed, seed=5, actions=actions)
    np.testing.assert_array_equal(a[0], b[0])  # the same initial state
    n = min(len(a), len(b))
    assert n > 2, (len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() > 1e-6, f"{name} changed nothing in {n} steps"
