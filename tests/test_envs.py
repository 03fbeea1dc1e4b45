"""Tests of the perturbed CartPole environments, their registration and domain randomisation."""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from envtools import rollout, sample_actions

import robust_rl
import robust_rl.envs
from robust_rl.envs import (
    CARTPOLE_DOMAIN_RANDOMIZED_ID,
    CARTPOLE_SUITE,
    CARTPOLE_SUITE_PARAMS,
    DEFAULT_CARTPOLE_RANGES,
    NOMINAL_CARTPOLE_PARAMS,
    DomainRandomization,
    PerturbedCartPoleEnv,
    make_domain_randomized_cartpole,
    register_envs,
)

ALL_IDS = [*CARTPOLE_SUITE.values(), CARTPOLE_DOMAIN_RANDOMIZED_ID]
PERTURBED_IDS = [i for i in CARTPOLE_SUITE.values() if i != "robust_rl/CartPole-v1"]
HAS_PYGAME = importlib.util.find_spec("pygame") is not None
TAU = 0.02


def _expected_step(state: np.ndarray, action: int, p: dict[str, float]) -> np.ndarray:
    """One Euler step of the CartPole equations (Florian, 2007), written out independently."""
    x, x_dot, th, th_dot = (float(v) for v in state)
    force = p["force_mag"] if action == 1 else -p["force_mag"]
    total = p["masscart"] + p["masspole"]
    pml = p["masspole"] * p["length"]
    temp = (force + pml * th_dot**2 * math.sin(th)) / total
    th_acc = (p["gravity"] * math.sin(th) - math.cos(th) * temp) / (
        p["length"] * (4.0 / 3.0 - p["masspole"] * math.cos(th) ** 2 / total)
    )
    x_acc = temp - pml * th_acc * math.cos(th) / total
    return np.array(
        [x + TAU * x_dot, x_dot + TAU * x_acc, th + TAU * th_dot, th_dot + TAU * th_acc]
    )


# ------------------------------------------------------------------------------------------
# exports and registration


def test_envs_install_under_the_library_namespace() -> None:
    # (every public module's __all__ is checked once for the library in test_io_cli.py)
    assert robust_rl.envs.__name__ == "robust_rl.envs"  # envs/ installs under robust_rl
    assert "envs" in robust_rl.__all__


def test_suite_ids_and_params() -> None:
    assert list(CARTPOLE_SUITE) == ["original", "heavy pole", "short pole", "strong gravity"]
    expected = {
        "robust_rl/CartPole-v1": {},
        "robust_rl/CartPoleHeavyPole-v1": {"masspole": 2.0},
        "robust_rl/CartPoleShortPole-v1": {"length": 0.25},
        "robust_rl/CartPoleStrongGravity-v1": {"gravity": 24.5},
    }
    assert {k: dict(v) for k, v in CARTPOLE_SUITE_PARAMS.items()} == expected
    for env_id, overrides in expected.items():
        env = gym.make(env_id)
        assert env.unwrapped.get_params() == {**NOMINAL_CARTPOLE_PARAMS, **overrides}
        env.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_registered_with_time_limit_and_threshold(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.max_episode_steps == 500
    assert spec.reward_threshold == 475.0


def test_registration_is_idempotent() -> None:
    before = {i: gym.spec(i) for i in ALL_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is overridden
        register_envs()
        importlib.reload(robust_rl.envs)
    assert {i: gym.spec(i) for i in ALL_IDS} == before


# ------------------------------------------------------------------------------------------
# API conformity and determinism


def test_nominal_reproduces_gymnasium_cartpole_exactly() -> None:
    ours, ref = gym.make("robust_rl/CartPole-v1"), gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    obs_a, _ = ours.reset(seed=42)
    obs_b, _ = ref.reset(seed=42)
    np.testing.assert_array_equal(obs_a, obs_b)
    episodes = 0
    for _ in range(1500):
        action = int(rng.integers(2))
        out_a, out_b = ours.step(action), ref.step(action)
        np.testing.assert_array_equal(out_a[0], out_b[0])
        assert out_a[1:4] == out_b[1:4]  # reward, terminated, truncated
        if out_a[2] or out_a[3]:
            episodes += 1
            obs_a, _ = ours.reset()  # unseeded: continues the same np_random stream
            obs_b, _ = ref.reset()
            np.testing.assert_array_equal(obs_a, obs_b)
    assert episodes > 10


@pytest.mark.parametrize("env_id", PERTURBED_IDS)
def test_each_perturbation_changes_the_dynamics(env_id: str) -> None:
    actions = sample_actions(gym.make("robust_rl/CartPole-v1"), 30, seed=2)
    nominal = rollout(gym.make("robust_rl/CartPole-v1"), seed=5, actions=actions)
    perturbed = rollout(gym.make(env_id), seed=5, actions=actions)
    np.testing.assert_array_equal(nominal[0], perturbed[0])  # same initial state
    n = min(len(nominal), len(perturbed))
    # The pole's angular velocity differs from the first step on.
    assert nominal[1, 3] != perturbed[1, 3]
    assert np.abs(nominal[:n] - perturbed[:n]).max() > 1e-2


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_perturbed_step_matches_the_equations(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=3)
    base = env.unwrapped
    for action in sample_actions(gym.make("robust_rl/CartPole-v1"), 20, seed=3):
        expected = _expected_step(base.state, action, base.get_params())
        obs, _, terminated, _, _ = env.step(action)
        np.testing.assert_allclose(obs, expected.astype(np.float32), rtol=1e-6, atol=1e-7)
        if terminated:
            break


# ------------------------------------------------------------------------------------------
# set_params / get_params


def test_set_params_updates_derived_quantities_and_next_step() -> None:
    a, b = PerturbedCartPoleEnv(), PerturbedCartPoleEnv()
    a.reset(seed=0)
    b.reset(seed=0)
    assert a.total_mass == pytest.approx(1.1) and a.polemass_length == pytest.approx(0.05)
    b.set_params(masspole=1.0, length=0.75)
    assert b.total_mass == 2.0
    assert b.polemass_length == 0.75
    assert b.get_params() == {**NOMINAL_CARTPOLE_PARAMS, "masspole": 1.0, "length": 0.75}
    state = b.state.copy()
    obs_a, *_ = a.step(1)
    obs_b, *_ = b.step(1)
    assert not np.array_equal(obs_a, obs_b)
    np.testing.assert_allclose(
        obs_b, _expected_step(state, 1, b.get_params()).astype(np.float32), rtol=1e-6
    )


def test_parameters_can_also_be_assigned_directly() -> None:
    env = PerturbedCartPoleEnv()
    env.masscart = 3.0
    assert env.total_mass == pytest.approx(3.1)
    with pytest.raises(ValueError, match="masscart must be a positive"):
        env.masscart = -1.0
    with pytest.raises(AttributeError, match="total_mass is derived"):
        env.total_mass = 5.0
    with pytest.raises(AttributeError, match="polemass_length is derived"):
        env.polemass_length = 5.0


def test_constructor_arguments_and_get_params_copy() -> None:
    env = PerturbedCartPoleEnv(gravity=3.0, masscart=2.0, masspole=0.5, length=1.0, force_mag=7)
    params = env.get_params()
    assert params == {
        "gravity": 3.0,
        "masscart": 2.0,
        "masspole": 0.5,
        "length": 1.0,
        "force_mag": 7.0,
    }
    assert env.total_mass == 2.5 and env.polemass_length == 0.5
    params["gravity"] = 100.0
    assert env.gravity == 3.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"masspole": 0.0}, "masspole must be a positive finite number"),
        ({"masscart": -1.0}, "masscart must be a positive finite number"),
        ({"length": -0.5}, "length must be a positive finite number"),
        ({"gravity": 0}, "gravity must be a positive finite number"),
        ({"force_mag": float("nan")}, "force_mag must be a positive finite number"),
        ({"length": float("inf")}, "length must be a positive finite number"),
        ({"gravity": "heavy"}, "gravity must be a positive finite number"),
    ],
)
def test_invalid_physics_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PerturbedCartPoleEnv(**kwargs)
    env = PerturbedCartPoleEnv()
    with pytest.raises(ValueError, match=match):
        env.set_params(**kwargs)


def test_set_params_unknown_name_and_atomicity() -> None:
    env = PerturbedCartPoleEnv()
    with pytest.raises(ValueError, match=r"unknown CartPole parameter 'tau'.*masspole"):
        env.set_params(tau=0.01)
    with pytest.raises(ValueError, match="length must be"):
        env.set_params(masspole=0.5, length=-1.0)
    assert env.get_params() == dict(NOMINAL_CARTPOLE_PARAMS)  # nothing applied
    with pytest.raises(TypeError):
        PerturbedCartPoleEnv(tau=0.01)  # type: ignore[call-arg]


# ------------------------------------------------------------------------------------------
# DomainRandomization


RANGES = {"masspole": (0.05, 1.0), "length": (0.25, 1.0), "gravity": (7.0, 20.0)}


@pytest.mark.parametrize("distribution", ["uniform", "log-uniform"])
def test_domain_randomization_draws_within_ranges_and_is_seeded(distribution: str) -> None:
    def draws(seed: int) -> list[dict[str, float]]:
        env = DomainRandomization(PerturbedCartPoleEnv(), RANGES, distribution=distribution)
        out = [env.reset(seed=seed)[1]["physics"]]
        out += [env.reset()[1]["physics"] for _ in range(30)]
        return out

    first = draws(11)
    assert first == draws(11)
    assert first != draws(12)
    for physics in first:
        for name, (low, high) in RANGES.items():
            assert low <= physics[name] <= high
        assert physics["masscart"] == NOMINAL_CARTPOLE_PARAMS["masscart"]
        assert physics["force_mag"] == NOMINAL_CARTPOLE_PARAMS["force_mag"]
    assert len({p["masspole"] for p in first}) == len(first)  # really redrawn


def test_domain_randomization_applies_params_and_keeps_initial_state() -> None:
    env = DomainRandomization(PerturbedCartPoleEnv(), RANGES)
    obs, info = env.reset(seed=4)
    assert info["physics"] == env.unwrapped.get_params()
    nominal_obs, _ = PerturbedCartPoleEnv().reset(seed=4)
    np.testing.assert_array_equal(obs, nominal_obs)
    state = env.unwrapped.state.copy()
    obs, *_ = env.step(0)
    np.testing.assert_allclose(
        obs, _expected_step(state, 0, info["physics"]).astype(np.float32), rtol=1e-6
    )


def test_domain_randomization_distributions_differ() -> None:
    ranges = {"masspole": (0.01, 1.0)}
    fractions = {}
    for distribution in ("uniform", "log-uniform"):
        env = DomainRandomization(PerturbedCartPoleEnv(), ranges, distribution=distribution)
        env.reset(seed=0)
        draws = np.array([env.sample_params()["masspole"] for _ in range(2000)])
        fractions[distribution] = float(np.mean(draws < 0.1))
    # P(m < 0.1) is 0.09/0.99 = 0.091 (uniform) and 1/2 (log-uniform); sd of a fraction of
    # 2000 draws is below 0.012, the tolerance is 4 sd.
    assert fractions["uniform"] == pytest.approx(0.0909, abs=0.05)
    assert fractions["log-uniform"] == pytest.approx(0.5, abs=0.05)


def test_domain_randomization_pinned_range() -> None:
    env = DomainRandomization(PerturbedCartPoleEnv(), {"length": (0.3, 0.3)}, "log-uniform")
    assert env.reset(seed=0)[1]["physics"]["length"] == 0.3


def test_default_ranges_cover_nominal_and_suite() -> None:
    for name, (low, high) in DEFAULT_CARTPOLE_RANGES.items():
        assert low <= NOMINAL_CARTPOLE_PARAMS[name] <= high
    for overrides in CARTPOLE_SUITE_PARAMS.values():
        for name, value in overrides.items():
            low, high = DEFAULT_CARTPOLE_RANGES[name]
            assert low <= value <= high
    env = make_domain_randomized_cartpole()
    assert env.distribution == "log-uniform"
    assert env.ranges == dict(DEFAULT_CARTPOLE_RANGES)
    physics = gym.make(CARTPOLE_DOMAIN_RANDOMIZED_ID).reset(seed=0)[1]["physics"]
    for name, (low, high) in DEFAULT_CARTPOLE_RANGES.items():
        assert low <= physics[name] <= high


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        ({"tau": (0.01, 0.02)}, r"unknown parameter 'tau'; accepted names: gravity"),
        ({"masspole": (1.0, 0.5)}, r"ranges\['masspole'\]: low must be <= high"),
        ({"masspole": (0.0, 0.5)}, r"ranges\['masspole'\] bounds must be positive"),
        ({"gravity": (-9.8, 9.8)}, r"ranges\['gravity'\] bounds must be positive"),
        ({"length": (0.1, float("inf"))}, r"ranges\['length'\] bounds must be positive"),
        ({"length": (0.1, 0.2, 0.3)}, r"ranges\['length'\] must be a pair"),
        ({"length": 0.5}, r"ranges\['length'\] must be a pair"),
        ({}, "ranges must be a non-empty mapping"),
    ],
)
def test_domain_randomization_bad_ranges(ranges: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DomainRandomization(PerturbedCartPoleEnv(), ranges)


def test_domain_randomization_bad_env_and_distribution() -> None:
    with pytest.raises(ValueError, match="env: CartPoleEnv has no set_params/get_params"):
        DomainRandomization(gym.make("CartPole-v1"), {"masspole": (0.1, 1.0)})
    with pytest.raises(ValueError, match="distribution must be one of 'uniform', 'log-uniform'"):
        DomainRandomization(PerturbedCartPoleEnv(), RANGES, distribution="normal")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# every task: exports, registration, the shared interface


ENVS_MODULES = [
    "robust_rl.envs",
    "robust_rl.envs.params",
    "robust_rl.envs.tasks",
    "robust_rl.envs.wrappers",
    "robust_rl.envs.cartpole",
    "robust_rl.envs.classic",
    "robust_rl.envs.classic.pendulum",
    "robust_rl.envs.classic.acrobot",
    "robust_rl.envs.classic.mountain_car",
    "robust_rl.envs.mujoco",
    "robust_rl.envs.mujoco.specs",
    "robust_rl.envs.mujoco.base",
    "robust_rl.envs.mujoco.robots",
]
CLASSIC_TASKS = [t for t in robust_rl.envs.TASK_IDS if not robust_rl.envs.get_task(t).needs_mujoco]


@pytest.mark.parametrize("module", ENVS_MODULES)
def test_envs_modules_export_documented_names(module: str) -> None:
    if module in ("robust_rl.envs.mujoco.base", "robust_rl.envs.mujoco.robots"):
        pytest.importorskip("mujoco")
    mod = importlib.import_module(module)
    assert mod.__doc__
    assert isinstance(mod.__all__, list) and len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        obj = getattr(mod, name)
        if callable(obj):
            assert obj.__doc__, f"{module}.{name} has no docstring"


def test_task_tables() -> None:
    from robust_rl.envs import NOMINAL_PARAMS, TASK_IDS, UNCERTAINTY_SETS

    assert TASK_IDS == (
        "robust_rl/CartPole-v1",
        "robust_rl/Pendulum-v1",
        "robust_rl/Acrobot-v1",
        "robust_rl/MountainCar-v0",
        "robust_rl/MountainCarContinuous-v0",
        "robust_rl/InvertedPendulum-v5",
        "robust_rl/Hopper-v5",
        "robust_rl/HalfCheetah-v5",
        "robust_rl/Walker2d-v5",
    )
    assert set(NOMINAL_PARAMS) == set(UNCERTAINTY_SETS) == set(TASK_IDS)
    assert isinstance(UNCERTAINTY_SETS, dict) and isinstance(NOMINAL_PARAMS, dict)
    assert list(NOMINAL_PARAMS["robust_rl/Walker2d-v5"]) == [
        "torso_mass",
        "thigh_mass",
        "leg_mass",
        "foot_mass",
        "thigh_left_mass",
        "leg_left_mass",
        "foot_left_mass",
        "friction",
    ]
    # the published M2TD3 / RRLS sets
    assert UNCERTAINTY_SETS["robust_rl/InvertedPendulum-v5"] == {
        "pole_mass": (1.0, 31.0),
        "cart_mass": (1.0, 11.0),
    }
    assert UNCERTAINTY_SETS["robust_rl/Hopper-v5"] == {
        "friction": (0.1, 3.0),
        "torso_mass": (0.1, 3.0),
        "thigh_mass": (0.1, 4.0),
    }
    assert UNCERTAINTY_SETS["robust_rl/HalfCheetah-v5"] == {
        "friction": (0.1, 4.0),
        "torso_mass": (0.1, 7.0),
        "bthigh_mass": (0.1, 3.0),
    }
    assert UNCERTAINTY_SETS["robust_rl/Walker2d-v5"] == {
        "friction": (0.1, 4.0),
        "torso_mass": (0.1, 5.0),
        "thigh_mass": (0.1, 6.0),
    }
    assert UNCERTAINTY_SETS["robust_rl/CartPole-v1"] == dict(DEFAULT_CARTPOLE_RANGES)
    for task in TASK_IDS:
        for name, (low, high) in UNCERTAINTY_SETS[task].items():
            assert name in NOMINAL_PARAMS[task]
            assert 0 < low < high
        for overrides in robust_rl.envs.get_task(task).variants.values():
            assert set(overrides) <= set(NOMINAL_PARAMS[task])
    for task in CLASSIC_TASKS:  # this project's sets contain the nominal value
        for name, (low, high) in UNCERTAINTY_SETS[task].items():
            assert low <= NOMINAL_PARAMS[task][name] <= high


def test_get_task_unknown_name() -> None:
    with pytest.raises(
        KeyError, match=r"unknown task 'Hopper-v5'; known tasks: robust_rl/CartPole"
    ):
        robust_rl.envs.get_task("Hopper-v5")


def test_every_id_registered_with_gymnasiums_limits() -> None:
    ids = robust_rl.envs.registered_ids()
    assert len(ids) == len(set(ids)) == 33
    for task_id in robust_rl.envs.TASK_IDS:
        task = robust_rl.envs.get_task(task_id)
        reference = gym.spec(task_id.removeprefix("robust_rl/"))  # gymnasium's id
        for env_id in (task_id, *task.variants, task.domain_randomized_id):
            spec = gym.spec(env_id)
            assert isinstance(spec.entry_point, str)  # nothing imported at registration
            assert spec.max_episode_steps == reference.max_episode_steps
            assert spec.reward_threshold == reference.reward_threshold


def _python(code: str) -> str:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_mujoco_ids_register_without_mujoco_and_say_how_to_install_it() -> None:
    out = _python(
        "import sys\n"
        "import gymnasium as gym, robust_rl\n"
        "gym.make('robust_rl/Pendulum-v1'); gym.make('robust_rl/CartPoleDomainRandomized-v1')\n"
        "print('mujoco' in sys.modules, 'robust_rl/Hopper-v5' in gym.registry)\n"
        "sys.modules['mujoco'] = None  # as if it were not installed\n"
        "import robust_rl.envs as envs\n"
        "for env_id in ('robust_rl/Walker2d-v5', 'robust_rl/HopperDomainRandomized-v5'):\n"
        "    try:\n"
        "        gym.make(env_id)\n"
        "    except envs.MujocoNotInstalledError as exc:\n"
        "        print(isinstance(exc, ModuleNotFoundError), exc.name, exc)\n"
    )
    lines = out.splitlines()
    assert lines[0] == "False True"
    assert len(lines) == 3
    for line in lines[1:]:
        assert line.startswith("True mujoco ")
        assert 'pip install "robust-rl[mujoco]"' in line


def test_cartpole_reset_options_params_and_info() -> None:
    env = gym.make("robust_rl/CartPole-v1")
    obs, info = env.reset(seed=1, options={"params": {"masspole": 0.3}, "low": 0.0, "high": 0.0})
    assert info["params"] == {**NOMINAL_CARTPOLE_PARAMS, "masspole": 0.3}
    np.testing.assert_array_equal(obs, np.zeros(4, np.float32))  # other options still apply
    assert env.unwrapped.total_mass == pytest.approx(1.3)
    with pytest.raises(ValueError, match=r"unknown CartPole parameter 'mass'; accepted names"):
        env.reset(options={"params": {"mass": 1.0}})
    assert env.unwrapped.get_params()["masspole"] == 0.3


@pytest.mark.parametrize("task", CLASSIC_TASKS)
def test_domain_randomized_ids_same_seed_same_physics(task: str) -> None:
    dr_id = robust_rl.envs.get_task(task).domain_randomized_id
    ranges = robust_rl.envs.UNCERTAINTY_SETS[task]

    def physics(seed: int, global_seed: int) -> list[dict[str, float]]:
        np.random.seed(global_seed)  # noqa: NPY002  (must play no part)
        env = gym.make(dr_id)
        out = [env.reset(seed=seed)[1]["params"]]
        out += [env.reset()[1]["params"] for _ in range(5)]
        assert env.unwrapped.get_params() == out[-1]
        return out

    first = physics(seed=3, global_seed=0)
    assert physics(seed=3, global_seed=99) == first
    assert physics(seed=4, global_seed=0) != first
    for params in first:
        for name, (low, high) in ranges.items():
            assert low <= params[name] <= high
    assert len({p[next(iter(ranges))] for p in first}) == len(first)


def test_domain_randomization_physics_reach_the_dynamics() -> None:
    """Same seed, same actions: same trajectory; another seed draws other physics and, from the
    same initial state, another trajectory."""
    from robust_rl.envs.classic import PerturbedPendulumEnv

    def rollout(seed: int) -> np.ndarray:
        env = DomainRandomization(PerturbedPendulumEnv(), {"m": (0.5, 1.5), "g": (5.0, 15.0)})
        env.reset(seed=seed)
        env.unwrapped.state = np.array([1.0, 0.0])
        return np.stack([env.step(np.array([0.5], np.float32))[0] for _ in range(20)])

    np.testing.assert_array_equal(rollout(0), rollout(0))
    assert np.abs(rollout(0) - rollout(1)).max() > 1e-3


def test_domain_randomization_ranges_checked_against_the_env() -> None:
    from robust_rl.envs.classic import PerturbedPendulumEnv

    with pytest.raises(
        ValueError,
        match=r"ranges\['max_torque'\]: max_torque must be a finite number in \(0, 2.0\]",
    ):
        DomainRandomization(PerturbedPendulumEnv(), {"max_torque": (1.0, 3.0)})
    with pytest.raises(
        ValueError, match=r"unknown parameter 'mass'; accepted names: g, m, l, max_torque"
    ):
        DomainRandomization(PerturbedPendulumEnv(), {"mass": (1.0, 3.0)})
    with pytest.raises(KeyError, match="unknown task 'robust_rl/Nope-v0'"):
        robust_rl.envs.make_domain_randomized("robust_rl/Nope-v0")


def test_domain_randomization_keeps_options_params_outside_its_ranges() -> None:
    env = gym.make("robust_rl/PendulumDomainRandomized-v1")
    _, info = env.reset(seed=0, options={"params": {"max_torque": 0.5}})
    assert 1.0 <= info["params"]["max_torque"] <= 2.0  # in the ranges: redrawn
    env = robust_rl.envs.make_domain_randomized("robust_rl/Pendulum-v1", ranges={"m": (1, 2)})
    _, info = env.reset(seed=0, options={"params": {"l": 0.7}})
    assert info["params"]["l"] == 0.7 and 1 <= info["params"]["m"] <= 2
    assert info["physics"] == info["params"]
