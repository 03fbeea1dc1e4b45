"""RobustSAC and RobustTD3: SB3 behaviour, the bit-for-bit reduction to SAC/TD3, the robust target,
diagnostics, save/load of robust settings, radius_scale="std", and clear errors."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from robust_rl import RobustSAC, RobustTD3
from robust_rl.common import UnsupportedSpaceError
from robust_rl.configs import CONFIG_DIR
from robust_rl.errors import InvalidArgumentError, UserError

PAIRS = [(SAC, RobustSAC), (TD3, RobustTD3)]
ROBUST = [RobustSAC, RobustTD3]
LEARNING_STARTS = 40


def tiny() -> dict:
    """Small, fast settings (a fresh dict: SB3 writes into policy_kwargs)."""
    return dict(
        learning_starts=LEARNING_STARTS,
        batch_size=16,
        buffer_size=1000,
        policy_kwargs=dict(net_arch=[16, 16]),
        device="cpu",
    )


def _params(model) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in model.policy.state_dict().values()])


@pytest.mark.parametrize(("parent", "robust"), PAIRS, ids=["sac", "td3"])
def test_radius_zero_one_draw_is_sb3_bit_for_bit(parent, robust):
    """radius=0, saa, n_samples=1: every parameter and prediction equals SB3's on the same seed."""
    kw = dict(tiny(), seed=5, train_freq=2, gradient_steps=2)
    ref = parent("MlpPolicy", "Pendulum-v1", **kw).learn(140)
    model = robust(
        "MlpPolicy", "Pendulum-v1", radius=0.0, estimator="saa", n_samples=1, max_level=0, **kw
    ).learn(140)
    assert ref._n_updates == model._n_updates > 0
    assert th.equal(_params(ref), _params(model))
    obs = np.random.default_rng(0).uniform(-1, 1, size=(8, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        ref.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )


@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
def test_same_seed_same_run_and_a_robust_run_differs(robust):
    kw = dict(tiny(), seed=1, radius=0.1, eta=0.5)
    a = robust("MlpPolicy", "Pendulum-v1", **kw).learn(80)
    b = robust("MlpPolicy", "Pendulum-v1", **kw).learn(80)
    assert th.equal(_params(a), _params(b))
    c = robust("MlpPolicy", "Pendulum-v1", **{**kw, "radius": 0.0}).learn(80)
    assert not th.equal(_params(a), _params(c))


class _Count(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _on_step(self) -> bool:
        self.calls += 1
        return True


@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
def test_learn_with_callbacks_progress_bar_vecenv_and_diagnostics(robust, tmp_path):
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = robust(
        "MlpPolicy", env, radius=[0.05, 0.05, 0.2], tensorboard_log=str(tmp_path), seed=0, **tiny()
    )
    count = _Count()
    evaluation = EvalCallback(gym.make("Pendulum-v1"), eval_freq=30, n_eval_episodes=1)
    assert model.learn(80, callback=CallbackList([count, evaluation]), progress_bar=True) is model
    assert count.calls == 40  # 80 steps of 2 envs
    assert (tmp_path / f"{robust.__name__}_1").is_dir()
    model.train(gradient_steps=3, batch_size=16)
    logged = model.logger.name_to_value
    assert math.isfinite(logged["train/robust_gap"])
    assert 0.0 <= logged["train/mean_level"] <= 4.0
    # RT-MLMC: 2^level draws per transition plus one centre, averaged over 3 updates
    assert logged["train/evaluations_per_update"] >= 2 * 16
    mean, _ = evaluate_policy(model, gym.make("Pendulum-v1"), n_eval_episodes=1)
    assert math.isfinite(mean)


@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
def test_save_load_keeps_predictions_settings_and_draws(robust, tmp_path):
    model = robust(
        "MlpPolicy",
        "Pendulum-v1",
        radius=[0.1, 0.2, 0.3],
        eta=0.7,
        norm="l2",
        estimator="saa",
        max_level=2,
        n_samples=3,
        control_variate=False,
        radius_scale="std",
        seed=3,
        **tiny(),
    ).learn(60)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = robust.load(path, device="cpu")
    assert loaded.robust_settings == model.robust_settings
    assert loaded.robust_settings["observation_scale"] is not None
    np.testing.assert_array_equal(loaded.effective_radius, model.effective_radius)
    obs = np.random.default_rng(1).uniform(-1, 1, size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    # the draws' generator continues where the saved model's was
    next_obs = th.as_tensor(obs)
    estimates = []
    for m in (model, loaded):
        th.manual_seed(0)
        with th.no_grad():
            est = (
                m.robust_next_values(next_obs, th.ones(1))
                if robust is RobustSAC
                else m.robust_next_values(next_obs)
            )
        estimates.append(est.per_point)
    th.testing.assert_close(estimates[0], estimates[1], rtol=0, atol=0)


def test_radius_scale_std_is_the_replay_buffer_std_when_learning_starts():
    model = RobustSAC("MlpPolicy", "Pendulum-v1", radius=0.5, radius_scale="std", seed=0, **tiny())
    assert model.observation_scale is None and model.effective_radius is None
    model.learn(LEARNING_STARTS + 1)  # one gradient step, with 41 stored observations
    stored = model.replay_buffer.observations[: model.replay_buffer.pos].reshape(-1, 3)
    np.testing.assert_allclose(model.observation_scale, stored.astype(np.float64).std(axis=0))
    np.testing.assert_allclose(model.effective_radius, 0.5 * stored.astype(np.float64).std(axis=0))
    frozen = list(model.observation_scale)
    model.learn(20, reset_num_timesteps=False)
    assert model.observation_scale == frozen


def _td3_values(model, obs, eta):
    model.eta = eta
    model._build_target_estimator()
    model._robust_generator.manual_seed(0)
    with th.no_grad():
        return model.robust_next_values(obs)


def test_td3_target_is_a_soft_min_between_worst_draw_and_average():
    """Same draws (same generator state): the soft-min lies between the minimum over the draws
    (η → 0) and their mean (η = ∞), and falls as η falls; radius 0 gives the nominal value."""
    model = RobustTD3(
        "MlpPolicy",
        "Pendulum-v1",
        radius=0.5,
        estimator="saa",
        max_level=5,
        target_policy_noise=0.0,
        seed=0,
        **tiny(),
    )
    obs = th.as_tensor(np.random.default_rng(2).uniform(-1, 1, size=(6, 3)), dtype=th.float32)
    mean = _td3_values(model, obs, math.inf).per_point
    soft = _td3_values(model, obs, 0.05).per_point
    softer = _td3_values(model, obs, 0.01).per_point
    worst = _td3_values(model, obs, 1e-6).per_point
    assert th.all(worst <= softer + 1e-5) and th.all(softer <= soft + 1e-5)
    assert th.all(soft <= mean + 1e-5)
    assert th.all(mean - worst > 1e-4)  # the ball matters at radius 0.5
    model.radius = 0.0
    model._robust_perturbation.radius[:] = 0.0
    nominal = _td3_values(model, obs, 0.05)
    th.testing.assert_close(nominal.per_point, nominal.center)


@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
@pytest.mark.parametrize("estimator", ["rt-mlmc", "saa"])
def test_policy_noise_is_shared_by_a_next_states_draws(robust, estimator):
    """The action noise (SAC's policy sample, TD3's target smoothing) is drawn once per next
    state and shared by its perturbed copies and its centre: at radius 0 every draw has the same
    value, so even a sharp soft-min (η = 0.01) equals the centre's value, and the estimate is
    the non-robust target. Independent noise per draw would put it below (a minimum over noise)."""
    model = robust(
        "MlpPolicy", "Pendulum-v1", radius=0.0, eta=0.01, estimator=estimator, max_level=4,
        control_variate=True if estimator == "rt-mlmc" else None, seed=0, **tiny(),
    )  # fmt: skip
    obs = th.as_tensor(np.random.default_rng(3).uniform(-1, 1, size=(32, 3)), dtype=th.float32)
    args = (th.tensor([0.5]),) if robust is RobustSAC else ()
    with th.no_grad():
        est = model.robust_next_values(obs, *args)
        assert est.center is not None and est.n_evaluations > 2 * 32  # several draws per point
        th.testing.assert_close(est.per_point, est.center, rtol=0, atol=1e-5)
        # and the noise is random: another call draws another noise, so other values
        other = model.robust_next_values(obs, *args)
    assert not th.allclose(est.center, other.center)


@pytest.mark.skipif(not th.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
def test_cuda(robust):
    kw = dict(tiny(), device="cuda", seed=0)
    model = robust("MlpPolicy", "Pendulum-v1", radius=0.1, **kw).learn(60)
    assert model._n_updates > 0
    assert model._robust_generator.device.type == "cuda"
    model.train(gradient_steps=2, batch_size=16)
    assert math.isfinite(model.logger.name_to_value["train/robust_gap"])
    assert all(p.device.type == "cuda" for p in model.policy.parameters())


@pytest.mark.parametrize("robust", ROBUST, ids=["sac", "td3"])
def test_bad_inputs_give_clear_errors(robust):
    with pytest.raises(UnsupportedSpaceError, match="action spaces of type Box, got Discrete"):
        robust("MlpPolicy", "CartPole-v1")
    with pytest.raises(InvalidArgumentError, match=r"radius has 2 values .* shape \(3,\)"):
        robust("MlpPolicy", "Pendulum-v1", radius=[0.1, 0.2])
    with pytest.raises(InvalidArgumentError, match="eta must be a positive number"):
        robust("MlpPolicy", "Pendulum-v1", eta=0.0)
    with pytest.raises(InvalidArgumentError, match="radius must be a non-negative float"):
        robust("MlpPolicy", "Pendulum-v1", radius=-1.0)
    with pytest.raises(InvalidArgumentError, match="radius_scale must be one of"):
        robust("MlpPolicy", "Pendulum-v1", radius_scale="relative")
    with pytest.raises(InvalidArgumentError, match="n_samples applies to estimator='saa' only"):
        robust("MlpPolicy", "Pendulum-v1", n_samples=4)
    with pytest.raises(InvalidArgumentError, match="unperturbed_keys applies to Dict"):
        robust("MlpPolicy", "Pendulum-v1", unperturbed_keys=["x"])
    # user errors for the CLI, and still the AssertionError SB3 raises for unsupported spaces
    assert issubclass(UnsupportedSpaceError, UserError)
    assert issubclass(UnsupportedSpaceError, AssertionError)


def test_cli_trains_robust_sac_and_td3_from_shipped_configs(tmp_path):
    from robust_rl.training import ALGOS, load_config, train

    assert ALGOS["robust-sac"] is RobustSAC and ALGOS["robust-td3"] is RobustTD3
    for algo in ("sac", "td3"):
        plain = load_config(CONFIG_DIR / f"{algo}_pendulum.yaml")
        robust = load_config(CONFIG_DIR / f"robust_{algo}_pendulum.yaml")
        # the robust config is the plain one plus the robust keys
        assert {k: v for k, v in robust.items() if k in plain} == plain
        assert set(robust) - set(plain) <= {"radius", "radius_scale", "eta", "norm",
                                            "estimator", "max_level"}  # fmt: skip
        cfg = {**robust, "n_timesteps": 120, "learning_starts": 100, "batch_size": 8,
               "policy_kwargs": {"net_arch": [8]}}  # fmt: skip
        result = train(f"robust-{algo}", "Pendulum-v1", cfg, 0, tmp_path / algo, device="cpu")
        assert result.num_timesteps == 120
        assert result.model.observation_scale is not None


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    """The draws' generator travels in the checkpoint: resuming continues the same run."""
    from robust_rl.training import train

    def cfg() -> dict:
        return dict(n_timesteps=100, learning_starts=30, batch_size=8, buffer_size=500, radius=0.1,
                    eta=0.5,
                    radius_scale="std", policy_kwargs=dict(net_arch=[8]))  # fmt: skip

    whole = train("robust-sac", "Pendulum-v1", cfg(), 0, tmp_path / "a", checkpoint_freq=50)
    train("robust-sac", "Pendulum-v1", cfg(), 0, tmp_path / "b", checkpoint_freq=50)
    resumed = train(
        "robust-sac", "Pendulum-v1", cfg(), 0, tmp_path / "b", checkpoint_freq=50, resume=True,
        force=True,
    )  # fmt: skip
    assert resumed.resumed_from == 50
    assert th.equal(_params(whole.model), _params(resumed.model))


def test_radius_scale_std_measures_what_the_networks_see_under_vecnormalize():
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=False)
    model = RobustTD3("MlpPolicy", env, radius=0.2, radius_scale="std", seed=0, **tiny())
    model.learn(LEARNING_STARTS + 1)
    stored = model.replay_buffer.observations[: model.replay_buffer.pos].reshape(-1, 3)
    seen = env.normalize_obs(stored)  # the buffer keeps raw observations
    np.testing.assert_allclose(model.observation_scale, seen.astype(np.float64).std(axis=0))
    assert not np.allclose(model.observation_scale, stored.astype(np.float64).std(axis=0))
