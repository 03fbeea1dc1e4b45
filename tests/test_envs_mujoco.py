"""Tests of the perturbable MuJoCo v5 tasks: every perturbation reaches the simulator."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from envtools import perturbed_value, registered_class, rollout, sample_actions

mujoco = pytest.importorskip(
    "mujoco", reason='the MuJoCo tasks need the optional extra: pip install "robust-rl[mujoco]"'
)


import robust_rl.envs  # noqa: E402, F401  (registers the ids)
from robust_rl.envs import (  # noqa: E402
    NOMINAL_PARAMS,
    TASKS,
    UNCERTAINTY_SETS,
    DomainRandomization,
    get_task,
)
from robust_rl.envs.mujoco import MUJOCO_ROBOTS  # noqa: E402
from robust_rl.envs.mujoco.robots import (  # noqa: E402
    PerturbedHalfCheetahEnv,
    PerturbedHopperEnv,
    PerturbedInvertedPendulumEnv,
    PerturbedWalker2dEnv,
)

#: the nominal ids of the MuJoCo tasks, from the registry (what every task must pass, stepping
#: like gymnasium's id of the same name included, is tested in test_task_conformance.py)
MUJOCO = [task.id for task in TASKS if task.needs_mujoco]
TASK_PARAMS = [(task, name) for task in MUJOCO for name in NOMINAL_PARAMS[task]]
WALKERS = [task for task in MUJOCO if "friction" in NOMINAL_PARAMS[task]]


def _body(env: gym.Env, name: str) -> int:
    robot = type(env.unwrapped).ROBOT
    return mujoco.mj_name2id(env.unwrapped.model, mujoco.mjtObj.mjOBJ_BODY, robot.mass_bodies[name])


def _geom(env: gym.Env, name: str) -> int:
    return mujoco.mj_name2id(env.unwrapped.model, mujoco.mjtObj.mjOBJ_GEOM, name)


# ------------------------------------------------------------------------------------------
# the tasks and their parameters in the simulator


def test_the_mujoco_tasks_and_their_classes() -> None:
    assert [registered_class(task) for task in MUJOCO] == [
        PerturbedInvertedPendulumEnv,
        PerturbedHopperEnv,
        PerturbedHalfCheetahEnv,
        PerturbedWalker2dEnv,
    ]


@pytest.mark.parametrize("task", MUJOCO)
def test_nominal_params_are_the_simulators(task: str) -> None:
    env = gym.make(task)
    model = env.unwrapped.model
    robot = MUJOCO_ROBOTS[type(env.unwrapped).TASK_NAME]
    assert env.unwrapped.get_params() == NOMINAL_PARAMS[task]
    for name in robot.mass_bodies:
        assert model.body_mass[_body(env, name)] == NOMINAL_PARAMS[task][name]
    if robot.floor_geom is not None:
        floor = model.geom_friction[_geom(env, robot.floor_geom), 0]
        for foot in robot.feet_geoms:  # MuJoCo takes the larger of the two
            assert (
                max(floor, model.geom_friction[_geom(env, foot), 0])
                == (NOMINAL_PARAMS[task]["friction"])
            )


# ------------------------------------------------------------------------------------------
# every parameter reaches the simulator


@pytest.mark.parametrize(("task", "name"), TASK_PARAMS)
def test_every_parameter_changes_the_rollout_and_the_model(task: str, name: str) -> None:
    cls = registered_class(task)
    value = perturbed_value(task, name, factor=2.0)
    nominal_env, env = cls(), cls()
    actions = sample_actions(nominal_env, 40, seed=3)
    if task == "robust_rl/InvertedPendulum-v5":  # no push: the pole falls slowest (15+ steps)
        actions = [np.zeros_like(a) for a in actions]
    nominal = rollout(nominal_env, seed=5, actions=actions)
    model = env.model
    before = {
        "mass": model.body_mass.copy(),
        "inertia": model.body_inertia.copy(),
        "subtree": model.body_subtreemass.copy(),
        "friction": model.geom_friction.copy(),
        "M0": model.dof_M0.copy(),
    }
    env.set_params(**{name: value})
    # read back from the simulator
    assert env.get_params() == {**NOMINAL_PARAMS[task], name: value}
    if name == "friction":
        ratio = value / NOMINAL_PARAMS[task]["friction"]
        np.testing.assert_allclose(model.geom_friction[:, 0], before["friction"][:, 0] * ratio)
        np.testing.assert_array_equal(model.geom_friction[:, 1:], before["friction"][:, 1:])
        np.testing.assert_array_equal(model.body_mass, before["mass"])
    else:
        b = _body(env, name)
        ratio = value / before["mass"][b]
        assert model.body_mass[b] == value
        np.testing.assert_allclose(model.body_inertia[b], before["inertia"][b] * ratio)
        others = np.arange(model.nbody) != b
        np.testing.assert_array_equal(model.body_mass[others], before["mass"][others])
        np.testing.assert_array_equal(model.body_inertia[others], before["inertia"][others])
        # derived constants recomputed: the subtree masses of the body and its ancestors
        delta = value - before["mass"][b]
        ancestor = b
        while True:
            assert model.body_subtreemass[ancestor] == pytest.approx(
                before["subtree"][ancestor] + delta, rel=1e-12
            )
            if ancestor == 0:
                break
            ancestor = model.body_parentid[ancestor]
        assert not np.allclose(model.dof_M0, before["M0"])
    perturbed = rollout(env, seed=5, actions=actions)
    np.testing.assert_array_equal(nominal[0], perturbed[0])  # same initial state
    n = min(len(nominal), len(perturbed))
    assert n > 10
    assert np.abs(nominal[:n] - perturbed[:n]).max() > 1e-3


@pytest.mark.parametrize("task", WALKERS)
def test_friction_governs_the_actual_contacts(task: str) -> None:
    """MuJoCo's own contact records carry the coefficient, for every contact of the episode."""
    env = gym.make(task)
    robot = MUJOCO_ROBOTS[type(env.unwrapped).TASK_NAME]
    floor = _geom(env, robot.floor_geom)
    feet = {_geom(env, foot) for foot in robot.feet_geoms}
    env.reset(seed=0, options={"params": {"friction": 0.3}})
    data = env.unwrapped.data
    foot_contacts = 0
    for action in sample_actions(env, 60, seed=4):
        _, _, terminated, _, _ = env.step(action)
        for c in data.contact[: data.ncon]:
            pair = {int(c.geom1), int(c.geom2)}
            if pair & feet and floor in pair:
                foot_contacts += 1
                assert c.friction[0] == pytest.approx(0.3, rel=1e-12)
            else:  # every other contact is scaled by the same factor, never above it
                assert c.friction[0] <= 0.3 + 1e-12
        if terminated:
            break
    assert foot_contacts > 0


def test_lowering_only_the_floor_friction_changes_nothing() -> None:
    """Why ``friction`` scales every geom: MuJoCo uses the larger coefficient of the two geoms,
    so a slippery floor under a grippy foot (2.0) leaves the rollout unchanged."""
    actions = sample_actions(gym.make("robust_rl/Hopper-v5"), 60, seed=6)
    nominal = rollout(PerturbedHopperEnv(), seed=1, actions=actions)
    floor_only = PerturbedHopperEnv()
    floor_only.model.geom_friction[_geom(gym.make("Hopper-v5"), "floor"), 0] = 0.1
    np.testing.assert_array_equal(rollout(floor_only, seed=1, actions=actions), nominal)
    ours = PerturbedHopperEnv(friction=0.1)
    perturbed = rollout(ours, seed=1, actions=actions)
    n = min(len(nominal), len(perturbed))
    assert np.abs(nominal[:n] - perturbed[:n]).max() > 1e-2


@pytest.mark.parametrize("task", MUJOCO)
def test_back_to_nominal_is_exactly_nominal(task: str) -> None:
    cls = registered_class(task)
    env = cls(**{name: perturbed_value(task, name, factor=2.0) for name in NOMINAL_PARAMS[task]})
    assert env.get_params() != NOMINAL_PARAMS[task]
    env.set_params(**NOMINAL_PARAMS[task])
    fresh = cls()
    for field in ("body_mass", "body_inertia", "body_subtreemass", "geom_friction", "dof_M0"):
        np.testing.assert_array_equal(getattr(env.model, field), getattr(fresh.model, field))
    actions = sample_actions(env, 40, seed=8)
    np.testing.assert_array_equal(
        rollout(env, seed=2, actions=actions), rollout(fresh, seed=2, actions=actions)
    )


def test_set_params_mid_episode_keeps_the_state_and_acts_at_the_next_step() -> None:
    env, ref = PerturbedHopperEnv(), PerturbedHopperEnv()
    env.reset(seed=0)
    ref.reset(seed=0)
    actions = sample_actions(env, 10, seed=0)
    for a in actions[:5]:
        env.step(a)
        ref.step(a)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    env.set_params(torso_mass=8.0)
    np.testing.assert_array_equal(env.data.qpos, qpos)
    np.testing.assert_array_equal(env.data.qvel, qvel)
    assert env.model.body_subtreemass[0] == pytest.approx(env.model.body_mass.sum())
    assert not np.array_equal(env.step(actions[5])[0], ref.step(actions[5])[0])


# ------------------------------------------------------------------------------------------
# interface


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"torso": 1.0}, r"unknown Hopper parameter 'torso'; accepted names: torso_mass, thigh_mass, leg_mass, foot_mass, friction"),
        ({"friction": 0.0}, "friction must be a positive finite number, got 0.0"),
        ({"foot_mass": -2.0}, "foot_mass must be a positive finite number"),
        ({"thigh_mass": float("inf")}, "thigh_mass must be a positive finite number"),
    ],
)  # fmt: skip
def test_bad_params_are_refused(kwargs: dict, match: str) -> None:
    env = gym.make("robust_rl/Hopper-v5")
    with pytest.raises(ValueError, match=match):
        env.unwrapped.set_params(torso_mass=5.0, **kwargs)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"params": kwargs})
    assert env.unwrapped.get_params() == NOMINAL_PARAMS["robust_rl/Hopper-v5"]
    with pytest.raises(ValueError, match="unknown InvertedPendulum parameter 'friction'"):
        gym.make("robust_rl/InvertedPendulum-v5").unwrapped.set_params(friction=1.0)


def test_constructor_arguments_and_pickling() -> None:
    env = PerturbedWalker2dEnv(torso_mass=5.0, friction=0.8, reset_noise_scale=0.0)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.get_params() == env.get_params()
    assert clone.get_params()["torso_mass"] == 5.0 and clone.get_params()["friction"] == 0.8
    np.testing.assert_array_equal(clone.reset(seed=0)[0], env.reset(seed=0)[0])
    env.set_params(leg_mass=1.5)  # a later change is carried by the pickle too
    assert pickle.loads(pickle.dumps(env)).get_params() == env.get_params()
    with pytest.raises(ValueError, match="cart_mass must be a positive finite number"):
        PerturbedInvertedPendulumEnv(cart_mass=0)
    with pytest.raises(
        ValueError, match="xml_file: the model has no body or geom named thigh, leg"
    ):
        PerturbedHopperEnv(xml_file="half_cheetah.xml")


# ------------------------------------------------------------------------------------------
# domain randomisation


@pytest.mark.parametrize("task", MUJOCO)
def test_domain_randomized_id_draws_from_the_uncertainty_set(task: str) -> None:
    def physics(seed: int) -> list[dict[str, float]]:
        env = gym.make(get_task(task).domain_randomized_id)
        out = [env.reset(seed=seed)[1]["params"]]
        out += [env.reset()[1]["params"] for _ in range(4)]
        # the model carries the drawn values
        assert env.unwrapped.get_params() == out[-1]
        return out

    first = physics(0)
    np.random.seed(123)  # noqa: NPY002  (the global generator plays no part)
    assert physics(0) == first
    assert physics(1) != first
    for params in first:
        for name, value in params.items():
            if name in UNCERTAINTY_SETS[task]:
                low, high = UNCERTAINTY_SETS[task][name]
                assert low <= value <= high
            else:
                assert value == NOMINAL_PARAMS[task][name]


def test_domain_randomization_changes_the_subtree_masses() -> None:
    env = DomainRandomization(PerturbedHopperEnv(), {"torso_mass": (0.5, 8.0)})
    totals = set()
    for seed in range(3):
        _, info = env.reset(seed=seed)
        model = env.unwrapped.model
        assert model.body_subtreemass[0] == pytest.approx(model.body_mass.sum(), rel=1e-12)
        assert model.body_mass[1] == info["params"]["torso_mass"]
        totals.add(float(model.body_subtreemass[0]))
    assert len(totals) == 3
