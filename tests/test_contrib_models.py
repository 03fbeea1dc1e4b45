"""sb3-contrib's models in robustness reports: recognised from the file, loaded without running
code from it, evaluated; a recurrent policy carries its state through each episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

sb3_contrib = pytest.importorskip("sb3_contrib")

from robust_rl.cli import main  # noqa: E402
from robust_rl.evaluation import evaluate_suite, get_suite, load_model  # noqa: E402
from robust_rl.evaluation.attacks import attacks_for  # noqa: E402
from robust_rl.evaluation.lockstep import lockstep_returns  # noqa: E402
from robust_rl.evaluation.rollouts import (  # noqa: E402
    RecurrentPredictor,
    evaluate_returns,
    resolve_model,
)
from robust_rl.training import ALGOS  # noqa: E402

CARTPOLE, PENDULUM = "robust_rl/CartPole-v1", "robust_rl/Pendulum-v1"
SMALL = {"net_arch": [8]}
#: registry name -> (class, env, constructor arguments)
CONTRIB = {
    "tqc": ("TQC", PENDULUM, {"learning_starts": 10, "policy_kwargs": {"net_arch": [8]}}),
    "crossq": ("CrossQ", PENDULUM, {"learning_starts": 10, "policy_kwargs": {"net_arch": [8]}}),
    "qrdqn": ("QRDQN", CARTPOLE, {"learning_starts": 10, "policy_kwargs": {"net_arch": [8]}}),
    "trpo": ("TRPO", CARTPOLE, {"n_steps": 64, "batch_size": 32, "policy_kwargs": SMALL}),
    "ars": ("ARS", CARTPOLE, {"n_delta": 2, "policy_kwargs": {"net_arch": [8]}}),
    "ppo_lstm": ("RecurrentPPO", CARTPOLE, {"n_steps": 64, "batch_size": 32}),
    "ppo_mask": (
        "MaskablePPO",
        CARTPOLE,
        {"n_steps": 64, "batch_size": 32, "policy_kwargs": SMALL},
    ),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contrib")
    out = {}
    for name, (cls, env, kwargs) in CONTRIB.items():
        policy = "MlpLstmPolicy" if name == "ppo_lstm" else "MlpPolicy"
        model = getattr(sb3_contrib, cls)(policy, env, seed=0, device="cpu", **kwargs)
        extra = {"use_masking": False} if name == "ppo_mask" else {}  # CartPole has no masks
        model.learn(64 if name != "ars" else 2, **extra)
        out[name] = folder / f"{name}.zip"
        model.save(out[name])
    return out


@pytest.mark.parametrize("name", list(CONTRIB))
def test_recognised_and_loaded_safely(saved: dict[str, Path], name: str) -> None:
    model = load_model(saved[name], device="cpu")  # safe loading: nothing from the file is run
    assert type(model).__name__ == CONTRIB[name][0]
    # ARS pickles its flat parameter vector as a tensor: left unset (the policy's weights act)
    assert model.unrestored_attributes == (("weights",) if name == "ars" else ())
    suite = get_suite("cartpole" if CONTRIB[name][1] == CARTPOLE else "pendulum")
    res = evaluate_suite({name: saved[name]}, suite, n_episodes=2)
    assert [r.mdp for r in res.rows] == [m.name for m in suite.test]
    assert all(r.n == 2 for r in res.rows)


def test_contrib_agents_are_evaluated_not_trained() -> None:
    assert not set(CONTRIB) & set(ALGOS)


def _reference_lstm_returns(model, n_episodes: int, seed: int) -> list[float]:
    """SB3's documented loop: one env, the state carried, episode_start at each reset."""
    import gymnasium as gym

    env = gym.make(CARTPOLE)
    out = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        state, start, total, done = None, np.ones(1, dtype=bool), 0.0, False
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=start,
                                          deterministic=True)  # fmt: skip
            start = np.zeros(1, dtype=bool)
            obs, reward, terminated, truncated, _ = env.step(int(action[0]))
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    return out


def test_recurrent_policy_keeps_each_episodes_state(saved: dict[str, Path]) -> None:
    model = load_model(saved["ppo_lstm"], device="cpu")
    predictor = resolve_model(model)
    assert isinstance(predictor, RecurrentPredictor)
    assert predictor.observation_space == model.observation_space
    reference = _reference_lstm_returns(model, 6, seed=3)
    assert len(set(reference)) > 1  # episodes of different lengths: rows drop out mid-batch
    for batch_size in (1, 4, 6):
        got = evaluate_returns(predictor, CARTPOLE, 6, seed=3, batch_size=batch_size)
        assert got.tolist() == reference
    stepped = lockstep_returns(predictor, CARTPOLE, [{}], 6, seed=3)
    assert stepped[0].tolist() == reference
    # a recurrent policy is attacked with random noise only (its gradients need the state)
    assert attacks_for(predictor) == ("random",)


def test_cli_reports_a_contrib_model(saved: dict[str, Path], capsys) -> None:
    assert main(["evaluate", str(saved["tqc"]), "--episodes", "1", "--quiet"]) == 0
    assert "| tqc |" in capsys.readouterr().out


class _MaskedCartPole:
    """CartPole whose env forbids pushing right (``action_masks``, as ActionMasker provides)."""

    def __new__(cls):
        import gymnasium as gym

        env = gym.make(CARTPOLE)
        env.action_masks = lambda: np.array([True, False])  # type: ignore[attr-defined]
        return env


def test_maskable_policy_gets_the_envs_masks(saved: dict[str, Path]) -> None:
    model = load_model(saved["ppo_mask"], device="cpu")
    masked = evaluate_returns(model, _MaskedCartPole, 4, seed=0, batch_size=2)
    always_left = evaluate_returns(_AlwaysLeft(), CARTPOLE, 4, seed=0)
    assert masked.tolist() == always_left.tolist()  # every action the one the mask allows
    unmasked = evaluate_returns(model, CARTPOLE, 4, seed=0)  # CartPole itself has no masks
    assert unmasked.tolist() != masked.tolist()


class _AlwaysLeft:
    def predict(self, observation, *, deterministic=True):
        return np.zeros(len(observation), dtype=np.int64), None
