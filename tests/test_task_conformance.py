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
