"""RobustDQN: SB3 behaviour, the robust target, save/load, determinism and errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import robust_rl  # noqa: F401  (registers the perturbed envs)
from robust_rl.dqn import RobustDQN

SMALL = dict(
    learning_starts=100,
    batch_size=32,
    train_freq=16,
    gradient_steps=4,
    target_update_interval=50,
    buffer_size=2_000,
    policy_kwargs=dict(net_arch=[32]),
)
RADIUS = [0.02, 0.05, 0.005, 0.05]


def make(**kwargs) -> RobustDQN:
    params = {**SMALL, "radius": RADIUS, "eta": 0.1, "seed": 0}
    params.update(kwargs)
    return RobustDQN("MlpPolicy", "CartPole-v1", **params)


def params_of(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def test_learn_returns_self_and_logs_robust_diagnostics():
    # a radius large enough for the pessimism to exceed the estimator's noise over 20 steps
    model = make(radius=[10 * r for r in RADIUS])
    assert model.learn(300) is model
    assert model._n_updates > 0
    model.train(gradient_steps=20, batch_size=32)
    logged = model.logger.name_to_value
    assert logged["train/robust_gap"] < 0  # the soft-min is pessimistic
    assert 0 <= logged["train/mean_level"] <= 4
    assert logged["train/evaluations_per_update"] >= 2 * 32  # draws + centres
    assert np.isfinite(logged["train/loss"])


def test_zero_radius_saa_reproduces_sb3_dqn_exactly():
    """With radius 0 the robust target is the nominal one: same seed, same network."""
    kwargs = {**SMALL, "seed": 3}
    dqn = DQN("MlpPolicy", "CartPole-v1", **kwargs).learn(600)
    robust = RobustDQN(
        "MlpPolicy", "CartPole-v1", radius=0.0, estimator="saa", max_level=3, **kwargs
    )
    robust.learn(600)
    for a, b in zip(params_of(dqn), params_of(robust), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("target_batches", [1, 3])
def test_targets_of_several_batches_at_once_change_nothing_but_speed(target_batches):
    """Replay batches drawn first and their targets computed together (the target network is
    fixed during train): with a deterministic target (radius 0, SAA) the training is SB3's;
    3 batches per pass with 4 gradient steps also covers a last, shorter pass."""
    kwargs = {**SMALL, "seed": 5}
    dqn = DQN("MlpPolicy", "CartPole-v1", **kwargs).learn(600)
    robust = RobustDQN(
        "MlpPolicy",
        "CartPole-v1",
        radius=0.0,
        estimator="saa",
        max_level=2,
        target_batches=target_batches,
        **kwargs,
    ).learn(600)
    assert robust._target_chunk(32) == target_batches
    for a, b in zip(params_of(dqn), params_of(robust), strict=True):
        torch.testing.assert_close(a, b)


def test_automatic_target_batches_share_about_512_next_states():
    model = make()
    assert model.target_batches is None
    assert model._target_chunk(64) == 8 and model._target_chunk(32) == 16
    assert model._target_chunk(1024) == 1  # at least one batch
    image = RobustDQN("CnnPolicy", ImageEnv(), radius=0.1, buffer_size=100, learning_starts=10)
    assert image._target_chunk(32) == 1  # 84 x 84 x 3 entries: 12 states per 2^20 entries


class ImageEnv(gym.Env):
    """An image observation (Atari-sized) for the automatic target_batches rule."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@torch.no_grad()
def test_zero_radius_rt_mlmc_target_equals_nominal():
    model = make(radius=0.0, max_level=4)
    obs = torch.randn(256, 4)
    est = model.robust_next_values(obs)
    nominal = model.q_net_target(obs).amax(dim=1)
    torch.testing.assert_close(est.per_point, nominal, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(est.center, nominal)


@torch.no_grad()
def test_robust_target_is_pessimistic_and_limits_in_eta():
    obs = torch.randn(128, 4)
    sharp = make(radius=0.3, eta=1e-4, estimator="saa", max_level=6)
    # q networks of all models built with seed 0 are identical
    nominal = sharp.q_net_target(obs).amax(dim=1)
    robust = sharp.robust_next_values(obs).per_point
    assert bool((robust <= nominal + 1e-5).all())
    assert float((nominal - robust).mean()) > 0
    flat = make(radius=0.3, eta=1e6, estimator="saa", max_level=6)
    flat._robust_generator.manual_seed(0)  # the draws come from the agent's own generator
    avg = flat.robust_next_values(obs).per_point
    draws = torch.Generator().manual_seed(0)
    z = obs.unsqueeze(1) + torch.empty(128, 64, 4).uniform_(-1, 1, generator=draws) * 0.3
    expected = flat.q_net_target(z.reshape(-1, 4)).reshape(128, 64, 2).mean(dim=1).amax(dim=1)
    torch.testing.assert_close(avg, expected, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_state_value_form_is_above_per_action_form():
    """softmin_z max_a Q >= max_a softmin_z Q (minimax inequality)."""
    obs = torch.randn(64, 4)
    a = make(estimator="saa", radius=0.2, eta=0.05, target_form="per-action")
    b = make(estimator="saa", radius=0.2, eta=0.05, target_form="state-value")
    torch.manual_seed(1)
    va = a.robust_next_values(obs).per_point
    torch.manual_seed(1)
    vb = b.robust_next_values(obs).per_point
    assert bool((vb >= va - 1e-6).all())
    assert float((vb - va).max()) > 0


@torch.no_grad()
@pytest.mark.parametrize("level_sampling", ["systematic", "independent"])
def test_rt_mlmc_target_is_unbiased_for_saa_target(level_sampling):
    obs = torch.randn(1, 4).expand(40_000, 4).contiguous()
    torch.manual_seed(2)
    rt_model = make(radius=0.3, eta=0.05, max_level=3, level_sampling=level_sampling)
    rt = rt_model.robust_next_values(obs).per_point
    saa = make(radius=0.3, eta=0.05, max_level=3, estimator="saa").robust_next_values(obs).per_point
    se = float((rt.var() / rt.numel() + saa.var() / saa.numel()).sqrt())
    assert abs(float(rt.mean() - saa.mean())) < 4.5 * se


def test_control_variate_default_is_on_for_rt_mlmc_only():
    assert make()._target_estimator.control_variate is True
    assert make(control_variate=False)._target_estimator.control_variate is False
    assert make(estimator="saa")._target_estimator.control_variate is False
    with pytest.raises(ValueError, match="control_variate applies to estimator='rt-mlmc' only"):
        make(estimator="saa", control_variate=True)


def test_save_load_round_trip_keeps_hyperparameters_and_predictions(tmp_path):
    model = make(eta=0.25, norm="l2", max_level=3, target_form="state-value", td_loss="mse")
    model.learn(300)
    systematic = make(level_sampling="systematic")
    systematic.save(tmp_path / "systematic.zip")
    assert RobustDQN.load(tmp_path / "systematic.zip")._target_estimator.level_sampling == (
        "systematic"
    )
    path = tmp_path / "robust.zip"
    model.save(path)
    loaded = RobustDQN.load(path)
    for name in ("radius", "eta", "norm", "estimator", "max_level", "target_form", "td_loss"):
        assert getattr(loaded, name) == getattr(model, name), name
    assert loaded.control_variate is None and loaded._target_estimator.control_variate is True
    assert loaded.level_sampling == "independent"
    assert loaded._target_estimator.level_sampling == "independent"
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    torch.testing.assert_close(
        loaded.q_net(torch.as_tensor(obs)), model.q_net(torch.as_tensor(obs)), rtol=0, atol=0
    )
    # the reloaded agent keeps training with its robust target
    loaded.set_env(make_vec_env("CartPole-v1", n_envs=1))
    loaded.learn(200)


def test_same_seed_same_result():
    a = make(seed=7).learn(400)
    b = make(seed=7).learn(400)
    c = make(seed=8).learn(400)
    for x, y in zip(params_of(a), params_of(b), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert any(not torch.equal(x, y) for x, y in zip(params_of(a), params_of(c), strict=True))


def test_vec_env_callbacks_progress_bar_and_evaluate_policy(tmp_path):
    env = make_vec_env("robust_rl/CartPole-v1", n_envs=3, seed=0)
    model = RobustDQN("MlpPolicy", env, radius=RADIUS, eta=0.1, seed=0, **SMALL)
    eval_env = gym.make("robust_rl/CartPoleHeavyPole-v1")
    callbacks = [
        EvalCallback(eval_env, eval_freq=100, n_eval_episodes=2, log_path=str(tmp_path / "eval")),
        CheckpointCallback(save_freq=100, save_path=str(tmp_path / "ckpt"), name_prefix="robust"),
    ]
    model.learn(600, callback=callbacks, progress_bar=True)
    assert (tmp_path / "eval" / "evaluations.npz").exists()
    checkpoints = sorted((tmp_path / "ckpt").glob("robust_*_steps.zip"))
    assert checkpoints
    assert RobustDQN.load(checkpoints[-1]).eta == 0.1
    returns, lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=3, return_episode_rewards=True
    )
    # CartPole pays 1 per step: each return is its episode's length, within the 500-step limit
    assert returns == [float(n) for n in lengths] and all(1 <= n <= 500 for n in lengths)
    assert model.num_timesteps >= 600 and len(model.ep_info_buffer) > 0


def test_tensorboard_run_name_and_robust_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = make(tensorboard_log=str(tmp_path), verbose=0)
    model.learn(1_000)
    run = tmp_path / "RobustDQN_1"
    assert run.is_dir()
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/robust_gap", "train/mean_level", "train/evaluations_per_update"} <= tags
    evals = [e.value for e in acc.Scalars("train/evaluations_per_update")]
    # RT-MLMC at L=4 with the centre: about (5/1.9375 + 1) * 32 rows per update
    assert 32 * 2.5 < np.mean(evals) < 32 * 4.7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(eta=0.0), "eta must be a positive"),
        (dict(eta=-1.0), "eta must be a positive"),
        (dict(max_level=-2), "max_level must be a non-negative integer"),
        (dict(max_level=1.5), "max_level must be a non-negative integer"),
        (dict(norm="l1"), "norm must be one of"),
        (dict(estimator="mc"), "estimator must be one of"),
        (dict(radius=-0.1), "radius must be a non-negative float"),
        (dict(radius=[0.1, 0.1]), r"radius has 2 values but the observation has shape \(4,\)"),
        (dict(radius=[[0.1]]), "radius must be a non-negative float"),
        (dict(target_form="max"), "target_form must be one of"),
        (dict(td_loss="l1"), "td_loss must be one of"),
        (dict(n_samples=8), "n_samples applies to estimator='saa' only"),
        (dict(level_sampling="sobol"), "level_sampling must be one of"),
        (dict(target_batches=0), "target_batches must be a positive integer or None"),
        (dict(target_batches=2.0), "target_batches must be a positive integer or None"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_non_box_observation_space_is_rejected():
    with pytest.raises(ValueError, match=r"observation_space must be a gymnasium\.spaces\.Box"):
        RobustDQN("MlpPolicy", "FrozenLake-v1", radius=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    model = make(device="cuda").learn(300)
    assert model.robust_next_values(torch.randn(8, 4, device="cuda")).per_point.is_cuda
