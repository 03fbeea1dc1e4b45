"""Tests of the perturbable classic-control tasks: Pendulum, Acrobot, Mountain Car (both)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from envtools import registered_class

import robust_rl.envs  # noqa: F401  (registers the ids)
from robust_rl.envs import NOMINAL_PARAMS, TASKS, registered_ids
from robust_rl.envs.classic import (
    ACROBOT_TARGET_HEIGHT,
    PerturbedAcrobotEnv,
    PerturbedMountainCarContinuousEnv,
    PerturbedMountainCarEnv,
    PerturbedPendulumEnv,
)

#: the classic-control tasks, from the registry (what every task must pass, stepping like
#: gymnasium's id of the same name included, is tested in test_task_conformance.py)
CLASSIC = [task for task in TASKS if task.entry_point.startswith("robust_rl.envs.classic.")]
CLASSIC_IDS = [
    env_id for task in CLASSIC for env_id in (task.id, *task.variants, task.domain_randomized_id)
]


# ------------------------------------------------------------------------------------------
# registration


def test_every_classic_id_is_registered() -> None:
    assert [registered_class(task.id) for task in CLASSIC] == [
        PerturbedPendulumEnv,
        PerturbedAcrobotEnv,
        PerturbedMountainCarEnv,
        PerturbedMountainCarContinuousEnv,
    ]
    assert set(CLASSIC_IDS) <= set(registered_ids())
    assert "robust_rl/PendulumDomainRandomized-v1" in CLASSIC_IDS
    assert "robust_rl/MountainCarContinuousDomainRandomized-v0" in CLASSIC_IDS


# ------------------------------------------------------------------------------------------
# the dynamics follow the equations (that every parameter reaches the simulator is tested for
# every task in test_task_conformance.py)


def test_pendulum_step_follows_the_equations_with_perturbed_params() -> None:
    env = PerturbedPendulumEnv(g=7.0, m=1.3, l=0.8, max_torque=1.2)
    env.reset(seed=0)
    for u in (1.9, -0.5, -3.0):
        th, thdot = env.state
        torque = float(np.clip(np.float32(u), -1.2, 1.2))  # the action is float32
        expected_thdot = np.clip(
            thdot + (3 * 7.0 / (2 * 0.8) * math.sin(th) + 3.0 / (1.3 * 0.8**2) * torque) * 0.05,
            -8,
            8,
        )
        env.step(np.array([u], np.float32))
        # rel 1e-6: gymnasium multiplies by the float32 action in float32
        assert env.state[1] == pytest.approx(expected_thdot, rel=1e-6)
        assert env.state[0] == pytest.approx(th + expected_thdot * 0.05, rel=1e-6)
        assert env.get_params()["max_torque"] == env.max_torque == 1.2
    assert env.action_space.high[0] == 2.0  # the action space is Pendulum-v1's


def test_mountain_car_steps_follow_the_equations_with_perturbed_params() -> None:
    car = PerturbedMountainCarEnv(force=0.0015, gravity=0.003)
    car.reset(seed=1)
    x, v = car.state
    car.step(2)
    assert car.state[1] == pytest.approx(v + 0.0015 - 0.003 * math.cos(3 * x), rel=1e-12)
    cont = PerturbedMountainCarContinuousEnv(power=0.001, gravity=0.002)
    cont.reset(seed=1)
    x, v = cont.state
    cont.step(np.array([0.5], np.float32))
    assert cont.state[1] == pytest.approx(v + 0.5 * 0.001 - 0.002 * math.cos(3 * x), rel=1e-6)


def _acrobot_energy(env: PerturbedAcrobotEnv, s: np.ndarray) -> float:
    """Kinetic plus potential energy of the acrobot in state ``s`` (pivot at height 0)."""
    th1, th2, w1, w2 = s
    m1, m2, l1 = env.LINK_MASS_1, env.LINK_MASS_2, env.LINK_LENGTH_1
    c1, c2, i1, i2 = env.LINK_COM_POS_1, env.LINK_COM_POS_2, env.LINK_MOI_1, env.LINK_MOI_2
    # velocities of the centres of mass, written in Cartesian coordinates
    v1 = c1 * w1
    x2d = l1 * math.cos(th1) * w1 + c2 * math.cos(th1 + th2) * (w1 + w2)
    y2d = l1 * math.sin(th1) * w1 + c2 * math.sin(th1 + th2) * (w1 + w2)
    kinetic = 0.5 * (m1 * v1**2 + i1 * w1**2 + m2 * (x2d**2 + y2d**2) + i2 * (w1 + w2) ** 2)
    height1 = -c1 * math.cos(th1)
    height2 = -l1 * math.cos(th1) - c2 * math.cos(th1 + th2)
    return kinetic + 9.8 * (m1 * height1 + m2 * height2)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"link_mass_1": 1.4, "link_mass_2": 0.6, "link_length_1": 0.8, "link_length_2": 1.2},
        {"link_mass_2": 2.0, "link_length_2": 0.5},
    ],
)
@pytest.mark.parametrize("torque", [0.0, 1.0])
def test_acrobot_dynamics_balance_energy(params: dict, torque: float) -> None:
    """dE/dt equals the power of the elbow torque, so the derived masses, centres of mass and
    inertias enter the equations of motion consistently (a Cartesian energy computation)."""
    env = PerturbedAcrobotEnv(**params)
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.uniform([-np.pi, -np.pi, -3, -3], [np.pi, np.pi, 3, 3])
        deriv = np.array(env._dsdt(np.append(s, torque))[:4])
        h = 1e-6
        de_dt = (_acrobot_energy(env, s + h * deriv) - _acrobot_energy(env, s - h * deriv)) / (
            2 * h
        )
        assert de_dt == pytest.approx(torque * s[3], abs=1e-5)


def test_acrobot_derived_quantities_follow_the_parameters() -> None:
    env = PerturbedAcrobotEnv()
    assert (env.LINK_COM_POS_1, env.LINK_COM_POS_2, env.LINK_MOI) == (0.5, 0.5, 1.0)
    env.set_params(link_mass_1=2.0, link_length_1=0.5, link_mass_2=3.0, link_length_2=1.5)
    assert env.LINK_COM_POS_1 == 0.25 and env.LINK_COM_POS_2 == 0.75
    assert env.LINK_MOI_1 == pytest.approx(2.0 * 0.25)
    assert env.LINK_MOI_2 == pytest.approx(3.0 * 2.25)
    with pytest.raises(AttributeError, match="LINK_MOI_1 and LINK_MOI_2"):
        _ = env.LINK_MOI


def test_acrobot_tip_height_uses_both_lengths() -> None:
    env = PerturbedAcrobotEnv()
    env.reset(seed=0)
    env.state = np.array([np.pi, 0.0, 0.0, 0.0])  # both links pointing up
    assert env.tip_height() == pytest.approx(2.0)
    assert env._terminal()
    env.set_params(link_length_1=0.4, link_length_2=0.5)
    assert env.tip_height() == pytest.approx(0.9)
    assert not env._terminal()  # the line stays at ACROBOT_TARGET_HEIGHT
    assert ACROBOT_TARGET_HEIGHT == 1.0


# ------------------------------------------------------------------------------------------
# interface: reset options, info, errors


def test_reset_passes_other_options_on() -> None:
    env = gym.make("robust_rl/Pendulum-v1")
    obs, info = env.reset(seed=0, options={"params": {"m": 1.2}, "x_init": 0.0, "y_init": 0.0})
    assert info["params"]["m"] == 1.2
    np.testing.assert_allclose(obs, [1.0, 0.0, 0.0])  # theta = thetadot = 0


@pytest.mark.parametrize(
    ("task", "params", "match"),
    [
        ("robust_rl/Pendulum-v1", {"mass": 1.0}, r"unknown Pendulum parameter 'mass'; accepted names: g, m, l, max_torque"),
        ("robust_rl/Pendulum-v1", {"max_torque": 2.5}, r"max_torque must be a finite number in \(0, 2.0\], got 2.5 \(the action space"),
        ("robust_rl/Pendulum-v1", {"l": 0.0}, "l must be a positive finite number, got 0.0"),
        ("robust_rl/Acrobot-v1", {"link_mass": 1.0}, "accepted names: link_mass_1, link_mass_2, link_length_1, link_length_2"),
        ("robust_rl/Acrobot-v1", {"link_length_2": -1}, "link_length_2 must be a positive finite number"),
        ("robust_rl/MountainCar-v0", {"power": 0.001}, "unknown MountainCar parameter 'power'; accepted names: force, gravity"),
        ("robust_rl/MountainCar-v0", {"gravity": float("nan")}, "gravity must be a positive finite number"),
        ("robust_rl/MountainCarContinuous-v0", {"force": 0.001}, "accepted names: power, gravity"),
        ("robust_rl/MountainCarContinuous-v0", {"power": "strong"}, "power must be a positive finite number, got 'strong'"),
    ],
)  # fmt: skip
def test_bad_params_are_refused_and_nothing_changes(task: str, params: dict, match: str) -> None:
    env = gym.make(task)
    with pytest.raises(ValueError, match=match):
        env.unwrapped.set_params(**params)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"params": params})
    if set(params) <= set(NOMINAL_PARAMS[task]):  # (an unknown keyword is a TypeError there)
        with pytest.raises(ValueError, match=match):
            registered_class(task)(**params)
    # atomic: a valid value next to a bad one is not applied either
    other = next(name for name in NOMINAL_PARAMS[task] if name not in params)
    with pytest.raises(ValueError, match=match):
        env.unwrapped.set_params(**{other: 0.5 * NOMINAL_PARAMS[task][other]}, **params)
    assert env.unwrapped.get_params() == NOMINAL_PARAMS[task]


def test_options_params_must_be_a_mapping() -> None:
    env = gym.make("robust_rl/Acrobot-v1")
    with pytest.raises(ValueError, match=r"options\['params'\] must be a mapping .* link_mass_1"):
        env.reset(options={"params": [("link_mass_1", 2.0)]})
