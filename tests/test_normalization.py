"""Runs trained with VecNormalize: their statistics put in front of the model in evaluation."""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from robust_rl.cli import main
from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.evaluation import evaluate_attacks, evaluate_suite, load_model
from robust_rl.evaluation.attacks import ObservationAttack, attacks_for
from robust_rl.evaluation.normalization import (
    NormalizedModel,
    find_vecnormalize,
    load_vecnormalize,
)
from robust_rl.evaluation.rollouts import evaluate_returns

PENDULUM, CARTPOLE = "robust_rl/Pendulum-v1", "robust_rl/CartPole-v1"


def _train(cls, env_id: str, folder: Path, **kwargs) -> tuple[Path, VecNormalize]:
    """A zoo-like run: ``folder/<env>.zip`` and ``folder/<env>/vecnormalize.pkl``."""
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(env_id)]), norm_reward=False)
    model = cls("MlpPolicy", venv, seed=0, device="cpu", **kwargs).learn(256)
    name = env_id.split("/")[-1]
    model.save(folder / f"{name}.zip")
    (folder / name).mkdir()
    venv.save(str(folder / name / "vecnormalize.pkl"))
    return folder / f"{name}.zip", venv


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VecNormalize]:
    return _train(PPO, PENDULUM, tmp_path_factory.mktemp("zoo_ppo"), n_steps=128, batch_size=64)


def test_statistics_read_safely_and_found_beside_the_model(ppo_run, tmp_path: Path) -> None:
    path, venv = ppo_run
    found = find_vecnormalize(path)
    assert found == path.parent / "Pendulum-v1" / "vecnormalize.pkl"
    norm = load_vecnormalize(found)
    assert np.array_equal(norm.mean, venv.obs_rms.mean) and norm.clip_obs == venv.clip_obs
    obs = np.random.default_rng(0).normal(size=(5, 3)) * 3
    assert np.allclose(norm(obs), venv.normalize_obs(obs), atol=1e-6)
    bad = tmp_path / "vecnormalize.pkl"
    bad.write_bytes(pickle.dumps(print))  # a pickle that names code
    with pytest.raises(InvalidArgumentError, match="not read without running code"):
        load_vecnormalize(bad)
    with pytest.raises(MissingFileError, match="does not exist"):
        load_vecnormalize(tmp_path / "nothing.pkl")
    assert find_vecnormalize(tmp_path / "model.zip") == bad


def test_returns_equal_sb3_inside_its_vecnormalize(ppo_run) -> None:
    path, _ = ppo_run
    model = NormalizedModel(
        load_model(path, device="cpu"), load_vecnormalize(find_vecnormalize(path))
    )
    got = evaluate_returns(model, PENDULUM, 3, seed=7)
    # SB3's own way: the env inside the saved statistics, frozen
    sb3 = load_model(path, device="cpu")
    expected = []
    for i in range(3):
        env = VecNormalize.load(
            str(find_vecnormalize(path)), DummyVecEnv([lambda: gym.make(PENDULUM)])
        )
        env.training = False
        env.seed(7 + i)
        obs, total, done = env.reset(), 0.0, False
        while not done:
            action, _ = sb3.predict(obs, deterministic=True)
            obs, _, dones, _infos = env.step(action)
            total += float(env.get_original_reward()[0])
            done = bool(dones[0])
        expected.append(total)
    assert np.allclose(got, expected, rtol=1e-6)
    raw = evaluate_returns(sb3, PENDULUM, 3, seed=7)
    assert not np.allclose(raw, got)  # the statistics change what the policy does


def test_attacks_act_on_raw_observations_through_the_statistics(tmp_path: Path) -> None:
    path, _ = _train(DQN, CARTPOLE, tmp_path, learning_starts=50)
    norm = load_vecnormalize(find_vecnormalize(path))
    model = NormalizedModel(load_model(path, device="cpu"), norm)
    assert attacks_for(model) == ("random", "pgd", "q")
    obs = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32) * 0.05
    eps = 0.01
    attacked = ObservationAttack(model, "q", eps, seed=0)(obs)
    assert np.abs(attacked - obs).max() <= eps + 1e-6  # the ball is in raw units
    assert np.abs(attacked - obs).max() > eps / 2  # and the gradient reached through the statistics
    res = evaluate_attacks({"dqn": model}, "cartpole", n_episodes=2, attack="pgd",
                           epsilons=[0.0, 0.5], scale="normalized")  # fmt: skip
    assert res.rows[1].epsilon_scale == pytest.approx(tuple(norm.std))
    with pytest.raises(InvalidArgumentError, match="scale 'normalized' needs models behind"):
        evaluate_attacks({"dqn": load_model(path)}, "cartpole", n_episodes=1,
                         epsilons=[0.1], scale="normalized")  # fmt: skip
    (tmp_path / "p").mkdir()
    other, _ = _train(PPO, PENDULUM, tmp_path / "p", n_steps=64, batch_size=32)
    pendulum_stats = load_vecnormalize(find_vecnormalize(other))
    with pytest.raises(InvalidArgumentError, match=r"\(3,\), the model observes \(4,\)"):
        NormalizedModel(load_model(path), pendulum_stats)


def test_cli_applies_the_statistics_beside_the_model(ppo_run, capsys) -> None:
    path, _ = ppo_run
    assert main(["evaluate", str(path), "--episodes", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "observations normalised with" in captured.err
    normalised = captured.out
    assert (
        main(["evaluate", str(path), "--episodes", "2", "--quiet", "--vecnormalize", "none"]) == 0
    )
    captured = capsys.readouterr()
    assert "normalised" not in captured.err and captured.out != normalised
    assert main(["evaluate", str(path), "--vecnormalize", "/nope.pkl"]) == 2
    assert "--vecnormalize: /nope.pkl does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--grid", "--workers", "2"]) == 2
    assert "evaluated in this process" in capsys.readouterr().err
    expected = evaluate_suite({"m": path}, "pendulum", n_episodes=1)  # raw, from Python
    assert expected.rows[0].n == 1
