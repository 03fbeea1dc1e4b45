"""Conformance of every registered id, derived from the task registry (``robust_rl.envs.TASKS``):
a new task or variant is tested without being added to any list here."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from envtools import (
    check_every_api,
    check_seeding,
    perturbed_value,
    registered_class,
    rollout,
    sample_actions,
)

from robust_rl.envs import (
    NOMINAL_PARAMS,
    TASK_IDS,
    TASKS,
    UNCERTAINTY_SETS,
    get_task,
    registered_ids,
)

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


# ------------------------------------------------------------------------------------------
# each nominal id against gymnasium's id of the same name


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_nominal_reproduces_gymnasium_step_for_step(task_id: str) -> None:
    """The same limits and spaces; under the same seeds and actions the same observations,
    rewards and episode ends, and after an end the same unseeded reset."""
    _skip_without_mujoco(task_id)
    ours, ref = gym.make(task_id), gym.make(task_id.removeprefix("robust_rl/"))
    assert ours.spec.max_episode_steps == ref.spec.max_episode_steps
    assert ours.spec.reward_threshold == ref.spec.reward_threshold
    assert ours.action_space == ref.action_space
    assert ours.observation_space == ref.observation_space
    # Acrobot's equations are written anew (sin θ for gymnasium's cos(θ - π/2)): equal to
    # rounding, which the chaotic dynamics amplify over long horizons; the others are exact.
    exact = task_id != "robust_rl/Acrobot-v1"
    if get_task(task_id).needs_mujoco:
        actions, reset_seed = sample_actions(ours, 60, seed=2), 9
    else:
        actions, reset_seed = sample_actions(ours, 400 if exact else 100, seed=7), 42
    obs_a, _ = ours.reset(seed=reset_seed)
    obs_b, _ = ref.reset(seed=reset_seed)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in actions:
        out_a, out_b = ours.step(action), ref.step(action)
        if exact:
            np.testing.assert_array_equal(out_a[0], out_b[0])
        else:
            np.testing.assert_allclose(out_a[0], out_b[0], rtol=0, atol=1e-5)
        assert out_a[1:4] == out_b[1:4]  # reward, terminated, truncated
        if out_a[2] or out_a[3]:
            obs_a, _ = ours.reset()  # unseeded: continues the same np_random stream
            obs_b, _ = ref.reset()
            np.testing.assert_array_equal(obs_a, obs_b)


# ------------------------------------------------------------------------------------------
# the parameters: nominal values, variants, reset options, each one reaching the simulator


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_nominal_params_and_variants(task_id: str) -> None:
    _skip_without_mujoco(task_id)
    nominal = NOMINAL_PARAMS[task_id]
    cls = registered_class(task_id)
    assert cls().get_params() == nominal
    assert gym.make(task_id).unwrapped.get_params() == nominal
    assert list(nominal) == list(cls.param_names())
    for env_id, overrides in get_task(task_id).variants.items():
        assert gym.make(env_id).unwrapped.get_params() == {**nominal, **overrides}


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reset_options_params_and_info(task_id: str) -> None:
    """Every parameter of the uncertainty set, set through ``reset(options=...)``, is reported
    in ``info`` with the others' nominal values, leaves the initial state alone and persists
    across resets until changed."""
    _skip_without_mujoco(task_id)
    nominal = NOMINAL_PARAMS[task_id]
    params = {name: perturbed_value(task_id, name) for name in UNCERTAINTY_SETS[task_id]}
    env = gym.make(task_id)
    obs, info = env.reset(seed=3, options={"params": params})
    assert info["params"] == {**nominal, **params} == env.unwrapped.get_params()
    obs_nominal, info_nominal = gym.make(task_id).reset(seed=3)
    np.testing.assert_array_equal(obs, obs_nominal)
    assert info_nominal["params"] == nominal
    assert env.reset()[1]["params"] == info["params"]


def _param_cases() -> list[tuple[str, str]]:
    return [(task.id, name) for task in TASKS for name in task.nominal]


def _bang_bang(space, n: int) -> list:
    """Actions alternating between the space's extremes every 10 steps (every torque beyond any
    smaller limit, every push as hard as allowed)."""
    if hasattr(space, "n"):  # Discrete
        return [0 if i % 20 < 10 else int(space.n) - 1 for i in range(n)]
    return [
        np.asarray(space.high if i % 20 < 10 else space.low, dtype=space.dtype) for i in range(n)
    ]


@pytest.mark.parametrize(("env_id", "name"), _param_cases())
def test_every_parameter_reaches_the_simulator(env_id: str, name: str) -> None:
    """Setting one parameter (to the edge of the set farther from nominal, or 1.5 x nominal)
    is read back and changes the episode under the same seed and actions."""
    task = TASK_OF[env_id]
    _skip_without_mujoco(env_id)
    value = perturbed_value(env_id, name)
    assert value != task.nominal[name]
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
