"""The physics uncertainty set as the robust target's perturbation (method.md §4b).

Batched simulators against the scalar envs (every task of the registry that has one), the box
sampler and the core against closed forms, the agents against SB3 bit for bit at a one-point set,
the target against a hand computation, the replay buffer's physics states, save/load, and errors.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env

import robust_rl  # noqa: F401  (registers the envs)
from robust_rl import DynamicsSet, RobustDQN, RobustSAC, RobustTD3
from robust_rl.common.dynamics import PhysicsReplayBuffer, PhysicsReplaySamples
from robust_rl.envs import MUJOCO_AVAILABLE, TASKS, TaskSpec
from robust_rl.envs.simulators import CartPoleSimulator
from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import BoxSampler, FunctionalEstimator, entropic_min, level_probabilities

SIMULATED = [
    pytest.param(t, marks=pytest.mark.skipif(not MUJOCO_AVAILABLE, reason="needs mujoco"))
    if t.needs_mujoco
    else t
    for t in TASKS
    if t.simulator
]
CLASSIC = [t for t in TASKS if t.simulator and not t.needs_mujoco]


# ------------------------------------------------------------------------------- simulators
@pytest.mark.parametrize("task", SIMULATED, ids=lambda t: t.id)
def test_simulator_equals_scalar_env(task):
    """Every row of a batched step equals env.step from the same state, action and physics."""
    env = gym.make(task.id)
    sim = task.make_simulator()
    rng = np.random.default_rng(0)
    states, actions, params, expected = [], [], [], []
    for episode in range(100):
        if len(expected) >= 300:
            break
        drawn = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in task.uncertainty_set.items()}
        env.reset(seed=episode, options={"params": drawn})
        full = env.unwrapped.get_params()
        env.action_space.seed(episode)
        for _ in range(60):
            action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            states.append(info["physics_state"])
            actions.append(np.asarray(action))
            params.append([full[k] for k in sim.param_names])
            expected.append((obs, reward, terminated, env.unwrapped.get_physics_state()))
            if terminated or truncated:
                break
    out = sim.step(np.stack(states), np.stack(actions), np.array(params))
    assert len(expected) >= 300
    if task.needs_mujoco and "HalfCheetah" not in task.id:  # the robots fall under random actions
        assert any(e[2] for e in expected)
    np.testing.assert_allclose(out.observations, np.stack([e[0] for e in expected]), atol=1e-6)
    np.testing.assert_allclose(out.rewards, [e[1] for e in expected], atol=1e-6)
    np.testing.assert_allclose(out.states, np.stack([e[3] for e in expected]), atol=1e-6)
    np.testing.assert_array_equal(out.terminated, [e[2] for e in expected])
    np.testing.assert_allclose(sim.observe(out.states), out.observations, atol=1e-6)


def test_physics_state_is_the_state_before_the_step():
    env = gym.make("robust_rl/CartPole-v1")
    env.reset(seed=1)
    before = env.unwrapped.get_physics_state()
    _, _, _, _, info = env.step(1)
    np.testing.assert_array_equal(info["physics_state"], before)
    assert not np.array_equal(env.unwrapped.get_physics_state(), before)


def test_cartpole_simulator_is_exact_and_terminates_at_the_thresholds():
    sim = CartPoleSimulator()
    params = np.tile([9.8, 1.0, 0.1, 0.5, 10.0], (2, 1))
    out = sim.step(
        np.array([[2.399, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]), np.array([1, 0]), params
    )
    np.testing.assert_array_equal(out.terminated, [True, False])
    env = gym.make("robust_rl/CartPole-v1").unwrapped
    env.reset(seed=3)
    state = env.get_physics_state()
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(
        sim.step(state[None], np.array([0]), params[:1]).observations[0], obs
    )


def test_simulator_rejects_bad_shapes():
    sim = CartPoleSimulator()
    with pytest.raises(InvalidArgumentError, match=r"states must have shape \(N, 4\)"):
        sim.step(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 5)))
    with pytest.raises(InvalidArgumentError, match="params must have shape"):
        sim.step(np.zeros((2, 4)), np.zeros(2), np.zeros((2, 4)))
    with pytest.raises(InvalidArgumentError, match="actions must have 2 rows"):
        sim.step(np.zeros((2, 4)), np.zeros(3), np.zeros((2, 5)))


# ------------------------------------------------------------------------------ box sampler
def test_box_sampler_laws_and_one_point_coordinates():
    rows = th.zeros(40_000, 3, dtype=th.float64)
    BoxSampler([0.1, 2.0, 1.0], [0.1, 8.0, 3.0], "log-uniform").sample_(
        rows, th.Generator().manual_seed(0)
    )
    assert bool((rows[:, 0] == 0.1).all())  # exactly the point, not exp(log(0.1))
    assert float(rows[:, 1].min()) >= 2.0 and float(rows[:, 1].max()) <= 8.0
    # log-uniform on [2, 8]: log p uniform on [log 2, log 8], mean (log 2 + log 8) / 2
    assert float(rows[:, 1].log().mean()) == pytest.approx(math.log(4.0), abs=0.01)
    BoxSampler([0.0], [2.0]).sample_(rows[:, :1], th.Generator().manual_seed(1))
    assert float(rows[:, 0].mean()) == pytest.approx(1.0, abs=0.02)
    assert float(rows[:, 0].var()) == pytest.approx(4.0 / 12, abs=0.01)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0], [0.5]), "low <= high"),
        (([1.0, 2.0], [2.0]), "same length"),
        (([0.0], [1.0], "log-uniform"), "log-uniform law needs low > 0"),
        (([0.0], [1.0], "normal"), "distribution must be one of"),
        (([0.0], [math.inf]), "finite"),
    ],
)
def test_box_sampler_rejects_bad_boxes(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        BoxSampler(*args)


def test_estimator_refuses_ball_arguments_with_a_sampler():
    with pytest.raises(InvalidArgumentError, match="leave them unset"):
        FunctionalEstimator(entropic_min(1.0), radius=0.1, sampler=BoxSampler([0.0], [1.0]))
    with pytest.raises(InvalidArgumentError, match="radius is required"):
        FunctionalEstimator(entropic_min(1.0))


# ---------------------------------------------------------------------- core: closed form
W = th.tensor([1.0, -2.0, 0.5], dtype=th.float64)
LOW = th.tensor([0.5, 1.0, 2.0], dtype=th.float64)
HIGH = th.tensor([1.5, 2.0, 6.0], dtype=th.float64)
ETA = 0.7


def soft_min_linear_closed_form(eta: float) -> float:
    """−η log E exp(−wᵀp/η), p uniform on the box: the sinh closed form of method.md §2/§4b."""
    centre, half = (LOW + HIGH) / 2, (HIGH - LOW) / 2
    a = half * W / eta
    return float(W @ centre - eta * th.log(th.sinh(a) / a).sum())


def _box_estimate(estimator: str, level: int, n: int, seed: int, **kw):
    est = FunctionalEstimator(
        entropic_min(ETA),
        estimator=estimator,
        max_level=level,
        sampler=BoxSampler(LOW.tolist(), HIGH.tolist()),
        **kw,
    )
    x = ((LOW + HIGH) / 2).expand(n, -1).contiguous()
    return est(lambda p, _: p @ W, x, generator=th.Generator().manual_seed(seed))


def test_box_saa_tends_to_the_closed_form_and_rt_mlmc_is_unbiased():
    exact = soft_min_linear_closed_form(ETA)
    saa = _box_estimate("saa", 9, 4000, 0).per_point
    se = float(saa.std()) / math.sqrt(saa.numel())
    # Jensen: the plug-in soft-min over 2^L draws overestimates; the bias is O(2^-L)
    assert abs(float(saa.mean()) - exact) < 4 * se + 0.01
    saa0 = _box_estimate("saa", 0, 20_000, 1).per_point  # level 0: the mean value wᵀc
    assert float(saa0.mean()) - exact > 0.3  # the soft-min is well below the mean
    saa4 = _box_estimate("saa", 4, 20_000, 2).per_point
    for control_variate in (True, False):
        rt = _box_estimate("rt-mlmc", 4, 80_000, 3, control_variate=control_variate).per_point
        se = math.sqrt(rt.var() / rt.numel() + saa4.var() / saa4.numel())
        assert abs(float(rt.mean() - saa4.mean())) < 4.5 * se
    assert float(saa0.mean() - saa4.mean()) > 10 * se


def test_box_levels_follow_the_law():
    est = _box_estimate("rt-mlmc", 3, 40_000, 4)
    freq = np.bincount(est.levels.numpy(), minlength=4) / 40_000
    np.testing.assert_allclose(freq, level_probabilities(3).numpy(), atol=0.01)


# ------------------------------------------------------------------------------ the agents
def _same(a, b) -> bool:
    return all(
        th.equal(p, q) for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True)
    )


DQN_KW = dict(
    learning_starts=100, buffer_size=5000, train_freq=4, target_update_interval=200, seed=3
)


@pytest.mark.parametrize("estimator", ["saa", "rt-mlmc"])
def test_robust_dqn_one_point_set_is_sb3_dqn_bit_for_bit(estimator):
    extra = {"n_samples": 1} if estimator == "saa" else {"max_level": 3, "eta": 0.5}
    base = DQN("MlpPolicy", "robust_rl/CartPole-v1", **DQN_KW).learn(1500)
    robust = RobustDQN(
        "MlpPolicy",
        "robust_rl/CartPole-v1",
        perturbation=DynamicsSet({"masspole": (0.1, 0.1)}),
        estimator=estimator,
        **extra,
        **DQN_KW,
    ).learn(1500)
    assert _same(base, robust)


@pytest.mark.parametrize(("robust_cls", "base_cls"), [(RobustSAC, SAC), (RobustTD3, TD3)])
def test_robust_sac_td3_one_point_set_is_sb3_bit_for_bit(robust_cls, base_cls):
    kw = dict(learning_starts=100, buffer_size=2000, seed=5, policy_kwargs={"net_arch": [32, 32]})
    base = base_cls("MlpPolicy", "robust_rl/Pendulum-v1", **kw).learn(300)
    robust = robust_cls(
        "MlpPolicy",
        "robust_rl/Pendulum-v1",
        perturbation={"dynamics": {"m": [1.0, 1.0]}},
        estimator="saa",
        n_samples=1,
        **kw,
    ).learn(300)
    assert _same(base, robust)


def test_dynamics_target_equals_a_hand_computation():
    """y = mean over draws of r_p + γ(1 − d_p) max_a Q_target(s'_p, a) at η = ∞, with the draws
    reproduced from the agent's generator and re-simulated here."""
    model = RobustDQN(
        "MlpPolicy",
        "robust_rl/CartPole-v1",
        perturbation=DynamicsSet(),
        eta=math.inf,
        estimator="saa",
        max_level=3,
        learning_starts=0,
        seed=0,
    )
    model.learn(300)
    samples = model.replay_buffer.sample(16)
    assert isinstance(samples, PhysicsReplaySamples)
    state = model._robust_generator.get_state()
    with th.no_grad():
        y = model.robust_targets(samples, model._target_values, model.gamma).reshape(-1)
    generator = th.Generator().set_state(state)
    dyn = model.dynamics
    params = th.tensor(dyn.nominal, dtype=th.float64).expand(16 * 8, -1).contiguous()
    BoxSampler(dyn.low, dyn.high, dyn.distribution).sample_(params, generator)
    rows = np.repeat(np.arange(16), 8)
    out = CartPoleSimulator().step(
        samples.physics_states[rows], samples.buffer_actions[rows], params.numpy()
    )
    with th.no_grad():
        v = model.q_net_target(th.as_tensor(out.observations)).max(dim=1).values.numpy()
    per_draw = out.rewards + (1 - out.terminated) * model.gamma * v
    np.testing.assert_allclose(y.numpy(), per_draw.reshape(16, 8).mean(axis=1), rtol=1e-5)
    # the draws really differ from the nominal transition (heavy poles, long poles, ...)
    assert np.ptp(per_draw.reshape(16, 8), axis=1).max() > 0.01


def test_replay_buffer_keeps_the_physics_states_and_save_load_keeps_the_set(tmp_path):
    env = make_vec_env("robust_rl/CartPole-v1", n_envs=2, seed=0)
    model = RobustDQN(
        "MlpPolicy",
        env,
        perturbation={"dynamics": {"masspole": [0.05, 1.0]}, "distribution": "uniform"},
        eta=2.0,
        learning_starts=50,
        seed=0,
    )
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, PhysicsReplayBuffer)
    n = buffer.pos
    # CartPole observes its state: the stored observation is the physics state in float32
    np.testing.assert_array_equal(
        buffer.observations[:n], buffer.physics_states[:n].astype(np.float32)
    )
    assert model.logger.name_to_value["train/terminal_share"] >= 0.0
    dyn = model.dynamics
    assert dyn.low[dyn.names.index("masspole")] == 0.05
    assert dyn.distribution == "uniform"
    model.save(tmp_path / "m.zip")
    loaded = RobustDQN.load(tmp_path / "m.zip", env=env)
    assert loaded.dynamics == dyn
    assert loaded.perturbation == model.perturbation
    loaded.learn(300, reset_num_timesteps=False)  # keeps training with the set


def test_robust_dqn_dynamics_learns_through_the_cli_config_keys():
    from robust_rl.training import validate_config

    cfg = validate_config("robust-dqn", {"perturbation": {"dynamics": "task"}, "eta": 3.0})
    assert cfg["perturbation"] == {"dynamics": "task"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"perturbation": {"dynamics": {"mass": [1, 2]}}},
            "unknown robust_rl/CartPole-v1 parameter",
        ),
        ({"perturbation": {"dynamics": {"masspole": [2, 1]}}}, "low must be <= high"),
        ({"perturbation": {"dynamics": "task", "distribution": "normal"}}, "distribution must be"),
        ({"perturbation": {"dynamcs": "task"}}, "perturbation must be None"),
        ({"perturbation": {"dynamics": "task", "law": 1}}, "unknown key"),
        (
            {
                "perturbation": DynamicsSet(),
                "optimize_memory_usage": True,
                "replay_buffer_kwargs": {"handle_timeout_termination": False},
            },
            "optimize_memory_usage",
        ),
        ({"perturbation": DynamicsSet(), "n_steps": 3}, "n_steps must be 1"),
    ],
)
def test_bad_dynamics_settings_are_refused(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        RobustDQN("MlpPolicy", "robust_rl/CartPole-v1", **kwargs)


def test_dynamics_set_needs_a_task_with_a_simulator():
    with pytest.raises(InvalidArgumentError, match=r"needs an env of robust_rl\.envs"):
        RobustDQN("MlpPolicy", "CartPole-v1", perturbation=DynamicsSet())
    bare = TaskSpec("robust_rl/Bare-v0", "m:C", 10, None, {"a": 1.0}, {"a": (0.5, 2.0)})
    with pytest.raises(InvalidArgumentError, match="has no batched one-step simulator"):
        DynamicsSet().resolve(bare)


@pytest.mark.skipif(not MUJOCO_AVAILABLE, reason="needs mujoco")
def test_robust_sac_learns_with_the_hopper_set():
    model = RobustSAC(
        "MlpPolicy",
        "robust_rl/Hopper-v5",
        perturbation=DynamicsSet(),
        eta=10.0,
        estimator="saa",
        max_level=2,
        learning_starts=50,
        batch_size=16,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
    )
    model.learn(120)
    assert model.dynamics.names == ("torso_mass", "thigh_mass", "leg_mass", "foot_mass", "friction")
    assert model.logger.name_to_value["train/evaluations_per_update"] == 16 * 5


#: per simulated task, a box of physics states that reaches its terminations, goals, walls and
#: speed limits (the random rollouts above stay near the start states); a new task with a
#: simulator must add its box here
STATE_BOXES = {
    "cartpole": ([-2.5, -3.0, -0.25, -3.0], [2.5, 3.0, 0.25, 3.0]),
    "pendulum": ([-4.0, -8.0], [4.0, 8.0]),
    "acrobot": (
        [-math.pi, -math.pi, -4 * math.pi, -9 * math.pi],
        [math.pi, math.pi, 4 * math.pi, 9 * math.pi],
    ),
    "mountain-car": ([-1.2, -0.07], [0.6, 0.07]),
    "mountain-car-continuous": ([-1.2, -0.07], [0.6, 0.07]),
}


@pytest.mark.parametrize("task", CLASSIC, ids=lambda t: t.id)
def test_simulator_equals_scalar_env_from_states_across_the_state_space(task):
    env = gym.make(task.id).unwrapped
    sim = task.make_simulator()
    low, high = STATE_BOXES[task.simulator]
    rng = np.random.default_rng(1)
    rows, actions, params, expected = [], [], [], []
    for k in range(600):
        drawn = {n: float(rng.uniform(lo, hi)) for n, (lo, hi) in task.uncertainty_set.items()}
        env.reset(seed=k, options={"params": drawn})
        env.set_physics_state(rng.uniform(low, high))
        state = env.get_physics_state()
        action = env.action_space.sample()
        obs, reward, terminated, _, _ = env.step(action)
        full = env.get_params()
        rows.append(state)
        actions.append(np.asarray(action))
        params.append([full[n] for n in sim.param_names])
        expected.append((obs, reward, terminated))
    out = sim.step(np.stack(rows), np.stack(actions), np.array(params))
    flags = np.array([e[2] for e in expected])
    np.testing.assert_allclose(out.observations, np.stack([e[0] for e in expected]), atol=1e-6)
    np.testing.assert_allclose(out.rewards, [e[1] for e in expected], atol=1e-6)
    np.testing.assert_array_equal(out.terminated, flags)
    if task.simulator != "pendulum":  # the others terminate somewhere in their box
        assert 0 < flags.sum() < len(flags)


def test_dynamics_set_on_a_variant_env_keeps_its_physics():
    """On CartPoleHeavyPole (masspole 2.0) a one-point set over gravity is SB3's DQN bit for bit:
    the parameters outside the set are the env's, not the task's nominal ones."""
    env_id = "robust_rl/CartPoleHeavyPole-v1"
    base = DQN("MlpPolicy", env_id, **DQN_KW).learn(1200)
    robust = RobustDQN(
        "MlpPolicy",
        env_id,
        perturbation=DynamicsSet({"gravity": (9.8, 9.8)}),
        estimator="saa",
        n_samples=1,
        **DQN_KW,
    ).learn(1200)
    assert robust.dynamics.nominal[robust.dynamics.names.index("masspole")] == 2.0
    assert _same(base, robust)


def test_wrappers_that_change_what_the_task_sees_are_refused():
    from stable_baselines3.common.vec_env import DummyVecEnv

    rescaled = DummyVecEnv(
        [lambda: gym.wrappers.RescaleAction(gym.make("robust_rl/Pendulum-v1"), -1, 1)]
    )
    with pytest.raises(InvalidArgumentError, match="a wrapper changes its spaces"):
        RobustSAC("MlpPolicy", rescaled, perturbation=DynamicsSet())
    scaled = DummyVecEnv(
        [
            lambda: gym.wrappers.TransformObservation(
                gym.make("robust_rl/CartPole-v1"), lambda o: 2 * o, None
            )
        ]
    )
    model = RobustDQN("MlpPolicy", scaled, perturbation=DynamicsSet(), learning_starts=10)
    with pytest.raises(InvalidArgumentError, match="not the robust_rl/CartPole-v1 observations"):
        model.learn(20)


def test_dynamics_settings_checked_against_the_env_and_kept_on_load(tmp_path):
    with pytest.raises(InvalidArgumentError, match="max_torque must be"):
        RobustSAC(
            "MlpPolicy", "robust_rl/Pendulum-v1", perturbation={"dynamics": {"max_torque": [1, 3]}}
        )
    model = RobustDQN(
        "MlpPolicy",
        "robust_rl/CartPole-v1",
        perturbation=DynamicsSet(),
        gamma=1,
        learning_starts=10,
        seed=0,
    )
    model.learn(100)  # an integer gamma is a discount like any other
    samples = model.replay_buffer.sample(8)
    with th.no_grad():
        y = model.robust_targets(samples, model._target_values, model.gamma)
    assert y.dtype == th.float32 and y.shape == (8, 1)  # RT-MLMC: float64 parameters inside
    model.save(tmp_path / "m.zip")
    with pytest.raises(InvalidArgumentError, match="perturbation cannot be changed"):
        RobustDQN.load(tmp_path / "m.zip", perturbation=None)


def test_observation_ball_object_is_the_ball_arguments():
    """perturbation=ObservationBall(...) (or its config form) is the radius/norm/... arguments in
    one value: the same agent, bit for bit."""
    from robust_rl import ObservationBall

    radius = [0.03, 0.03, 0.003, 0.03]
    by_args = RobustDQN(
        "MlpPolicy", "robust_rl/CartPole-v1", radius=radius, norm="l2", **DQN_KW
    ).learn(800)
    by_object = RobustDQN(
        "MlpPolicy",
        "robust_rl/CartPole-v1",
        perturbation=ObservationBall(radius, norm="l2"),
        **DQN_KW,
    ).learn(800)
    by_config = RobustDQN(
        "MlpPolicy",
        "robust_rl/CartPole-v1",
        perturbation={"ball": {"radius": radius, "norm": "l2"}},
        **DQN_KW,
    )
    assert by_object.norm == by_config.norm == "l2" and by_object.perturbation is None
    assert _same(by_args, by_object)
    with pytest.raises(InvalidArgumentError, match=r"perturbation\['ball'\] must be a mapping"):
        RobustDQN("MlpPolicy", "robust_rl/CartPole-v1", perturbation={"ball": {"eta": 1}})


def test_target_passes_in_chunks_train_exactly_as_one_call(monkeypatch):
    """The target network is called on parts of TARGET_CHUNK_ROWS rows: the same values to the
    last bit, so the same training (SAA with 16 draws: 17 rows per transition, 1,088 per
    replay batch of 64, more than one part)."""
    import robust_rl.common.robust as robust_module

    def trained(rows: int) -> list[th.Tensor]:
        monkeypatch.setattr(robust_module, "TARGET_CHUNK_ROWS", rows)
        model = RobustDQN(
            "MlpPolicy",
            "robust_rl/CartPole-v1",
            perturbation=DynamicsSet(),
            estimator="saa",
            max_level=4,
            eta=30.0,
            learning_starts=64,
            batch_size=64,
            train_freq=32,
            gradient_steps=4,
            seed=3,
            device="cpu",
        )
        model.learn(300)
        return [p.detach().clone() for p in model.q_net.parameters()]

    split, whole = trained(208), trained(10**9)
    assert all(th.equal(a, b) for a, b in zip(split, whole, strict=True))


def test_in_chunks_joins_the_parts_of_dict_observations():
    from robust_rl.common.robust import in_chunks

    calls = []

    def values(obs, index):
        calls.append(len(index))
        return obs["a"].sum(dim=1) + index

    obs = {"a": th.arange(30.0).reshape(10, 3), "b": th.zeros(10, 1)}
    index = th.arange(10)
    out = in_chunks(values, rows=4)(obs, index)
    assert calls == [4, 4, 2]
    assert th.equal(out, obs["a"].sum(dim=1) + index)
