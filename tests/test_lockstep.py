"""The lockstep grid path equals the scalar reference path (same seeds, same returns)."""

from __future__ import annotations

import numpy as np
import pytest

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation import evaluate_grid
from robust_rl.evaluation.lockstep import lockstep_returns, lockstep_supported
from robust_rl.evaluation.rollouts import evaluate_returns
from robust_rl.evaluation.suites import get_suite, grid_points


class Controller:
    """A deterministic hand-written policy per task (long episodes, terminations inside the
    time limit at some grid points), acting on each observation alone."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def predict(self, obs, deterministic=True):
        obs = np.asarray(obs, dtype=np.float64)
        if self.kind == "cartpole":  # balance on angle and angular velocity
            return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None
        if self.kind == "pendulum":  # swing up by energy, then a PD hold
            cos, sin, w = obs.T
            torque = np.where(cos > 0.9, -8.0 * np.arctan2(sin, cos) - 1.5 * w, 2.0 * np.sign(w))
            return np.clip(torque, -2.0, 2.0).astype(np.float32)[:, None], None
        if self.kind == "mountain-car":  # push along the velocity
            return np.where(obs[:, 1] >= 0, 2, 0).astype(np.int64), None
        if self.kind == "mountain-car-continuous":
            return np.where(obs[:, 1] >= 0, 1.0, -1.0).astype(np.float32)[:, None], None
        if self.kind == "acrobot":  # torque with the first joint's velocity
            return np.where(obs[:, 4] >= 0, 2, 0).astype(np.int64), None
        raise AssertionError(self.kind)


CASES = [
    ("robust_rl/CartPole-v1", "cartpole", "cartpole"),
    ("robust_rl/Pendulum-v1", "pendulum", "pendulum"),
    ("robust_rl/MountainCar-v0", "mountaincar", "mountain-car"),
    ("robust_rl/MountainCarContinuous-v0", "mountaincar-continuous", "mountain-car-continuous"),
    ("robust_rl/Acrobot-v1", "acrobot", "acrobot"),
]


@pytest.mark.parametrize(("env_id", "suite", "kind"), CASES)
def test_lockstep_equals_the_scalar_path(env_id, suite, kind):
    assert lockstep_supported(env_id)
    model = Controller(kind)
    points = grid_points(get_suite(suite), 2, None)[:6]
    fast = lockstep_returns(model, env_id, points, 3, 7, chunk_size=5)
    for point, got in zip(points, fast, strict=True):
        ref = evaluate_returns(model, env_id, 3, 7, params=point)
        if kind == "pendulum":
            # Pendulum's cost squares a float32 scalar in the env, an array here (see module doc)
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-8)
        else:
            np.testing.assert_array_equal(got, ref)


def test_cartpole_controller_runs_long_episodes_and_terminates_at_some_points():
    model = Controller("cartpole")
    points = grid_points(get_suite("cartpole"), 3, None)
    returns = np.concatenate(lockstep_returns(model, "robust_rl/CartPole-v1", points, 2, 0))
    assert returns.max() == 500.0 and returns.min() < 500.0


def test_the_cap_and_the_chunking_do_not_change_returns():
    model = Controller("cartpole")
    points = grid_points(get_suite("cartpole"), 2, None)
    whole = lockstep_returns(model, "robust_rl/CartPole-v1", points, 4, 0)
    chunked = lockstep_returns(model, "robust_rl/CartPole-v1", points, 4, 0, chunk_size=3)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
    capped = lockstep_returns(model, "robust_rl/CartPole-v1", points, 4, 0, max_episode_steps=50)
    assert max(float(r.max()) for r in capped) <= 50.0
    ref = evaluate_returns(
        model, "robust_rl/CartPole-v1", 4, 0, params=points[0], max_episode_steps=50
    )
    np.testing.assert_array_equal(capped[0], ref)


def test_evaluate_grid_uses_lockstep_with_the_same_rows():
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", "robust_rl/CartPole-v1", seed=0, learning_starts=0)
    models = {"dqn": model, "controller": Controller("cartpole")}
    a = evaluate_grid(models, "cartpole", n_episodes=3, points=2)  # lockstep (default)
    b = evaluate_grid(models, "cartpole", n_episodes=3, points=2, lockstep=False)
    assert [(r.model, r.mdp, r.params, r.returns) for r in a.rows] == [
        (r.model, r.mdp, r.params, r.returns) for r in b.rows
    ]


def test_unsupported_ids_are_refused_by_name():
    assert not lockstep_supported("CartPole-v1")  # gymnasium's own: no parameters here
    assert not lockstep_supported("robust_rl/CartPoleDomainRandomized-v1")  # wrapped
    with pytest.raises(InvalidArgumentError, match="has no batched simulator"):
        lockstep_returns(Controller("cartpole"), "CartPole-v1", [{}], 1, 0)


def test_evaluate_suite_uses_lockstep_with_the_same_rows():
    from robust_rl.evaluation import evaluate_suite

    models = {"controller": Controller("pendulum")}
    a = evaluate_suite(models, "pendulum", n_episodes=2)
    b = evaluate_suite(models, "pendulum", n_episodes=2, lockstep=False)
    assert [(r.model, r.mdp) for r in a.rows] == [(r.model, r.mdp) for r in b.rows]
    for ra, rb in zip(a.rows, b.rows, strict=True):
        np.testing.assert_allclose(ra.returns, rb.returns, rtol=1e-9, atol=1e-8)


def test_the_rl_zoos_time_limit_subclass_keeps_lockstep() -> None:
    """Importing rl_zoo3 replaces gymnasium's TimeLimit by a subclass that only adds an info
    key: still neutral; any other wrapper is not."""
    import gymnasium as gym
    from gymnasium.wrappers import TimeLimit, TransformReward

    from robust_rl.evaluation.lockstep import _neutral

    class PatchedTimeLimit(TimeLimit):  # what rl_zoo3.gym_patches installs
        pass

    base = gym.make("robust_rl/CartPole-v1").env
    assert _neutral(PatchedTimeLimit(base, 10))
    assert not _neutral(TransformReward(base, lambda r: 2 * r))


class RobotController:
    """A fixed deterministic feedback of each observation, for the MuJoCo robots (the pole is
    balanced at some points and falls at others; the hoppers fall after a while)."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim

    def predict(self, obs, deterministic=True):
        obs = np.asarray(obs, dtype=np.float64)
        if self.action_dim == 1:  # InvertedPendulum: PD on the pole angle and the cart
            u = 10 * obs[:, 1] + obs[:, 3] + 0.3 * obs[:, 0] + 0.3 * obs[:, 2]
            return np.clip(u, -3, 3).astype(np.float32)[:, None], None
        w = np.sin(np.arange(obs.shape[1] * self.action_dim)).reshape(obs.shape[1], -1)
        return np.tanh(0.3 * obs @ w).astype(np.float32), None


MUJOCO_CASES = [
    ("robust_rl/InvertedPendulum-v5", "inverted-pendulum", 1),
    ("robust_rl/Hopper-v5", "hopper", 3),
    ("robust_rl/Walker2d-v5", "walker2d", 6),
]


@pytest.mark.parametrize(("env_id", "suite", "action_dim"), MUJOCO_CASES)
def test_mujoco_lockstep_equals_the_scalar_path_exactly(env_id, suite, action_dim):
    """One MjData per episode carries the solver's warm start as the env does: the same
    returns to the last bit, contacts included (a cold start per step would drift)."""
    pytest.importorskip("mujoco")
    assert lockstep_supported(env_id)
    model = RobotController(action_dim)
    points = grid_points(get_suite(suite), 2, None)[:3]
    fast = lockstep_returns(model, env_id, points, 2, 11, chunk_size=4, max_episode_steps=300)
    lengths = []
    for point, got in zip(points, fast, strict=True):
        ref = evaluate_returns(model, env_id, 2, 11, params=point, max_episode_steps=300)
        np.testing.assert_array_equal(got, ref)
        lengths.append(got)
    assert len({float(r) for r in np.concatenate(lengths)}) > 1  # not one trivial episode


def test_mujoco_grids_step_their_rows_on_the_workers_as_threads(monkeypatch):
    """With n_workers > 1 a MuJoCo grid stays in lockstep, its rows on n_workers threads."""
    pytest.importorskip("mujoco")
    from robust_rl.evaluation import _parallel

    calls = []
    original = _parallel._run_lockstep
    monkeypatch.setattr(
        _parallel,
        "_run_lockstep",
        lambda *a, threads=1: calls.append(threads) or original(*a, threads=threads),
    )
    model = {"controller": RobotController(1)}
    one = evaluate_grid(model, "inverted-pendulum", n_episodes=2, points=2, max_episode_steps=50)
    two = evaluate_grid(
        model, "inverted-pendulum", n_episodes=2, points=2, max_episode_steps=50, n_workers=2
    )
    assert calls == [1, 2]
    assert [r.returns for r in one.rows] == [r.returns for r in two.rows]


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [
        ("dqn", "robust_rl/CartPole-v1"),
        ("ppo", "robust_rl/Pendulum-v1"),
        ("sac", "robust_rl/Pendulum-v1"),
        ("td3", "robust_rl/Pendulum-v1"),
        ("robust-sac", "robust_rl/Pendulum-v1"),
    ],
)
def test_predict_rows_gives_a_row_the_same_action_in_any_batch(algo, env_id):
    """A network's forward rounds the tail rows of a batch differently (PPO, SAC: one ulp);
    predict_rows pads every batch to whole kernel blocks, so no row depends on its batch."""
    from robust_rl.evaluation.rollouts import predict_rows
    from robust_rl.training import ALGOS

    model = ALGOS[algo]("MlpPolicy", env_id, seed=0, device="cpu")
    obs = np.random.default_rng(1).normal(size=(70, *model.observation_space.shape))
    obs = obs.astype(np.float32)
    whole = predict_rows(model, obs, True)
    for n in (1, 2, 3, 5, 8, 13, 31, 33, 69):
        parts = [predict_rows(model, obs[i : i + n], True) for i in range(0, len(obs), n)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_mujoco_lockstep_of_an_sb3_network_equals_the_scalar_path():
    """With a network policy too: the same returns to the last bit (the batches differ in size
    between the two paths; predict_rows keeps each row's action the same)."""
    pytest.importorskip("mujoco")
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", "robust_rl/Hopper-v5", seed=3, device="cpu")
    points = grid_points(get_suite("hopper"), 2, None)[:2]
    fast = lockstep_returns(model, "robust_rl/Hopper-v5", points, 3, 5)
    for point, got in zip(points, fast, strict=True):
        np.testing.assert_array_equal(
            got, evaluate_returns(model, "robust_rl/Hopper-v5", 3, 5, params=point)
        )


def test_mujoco_threads_give_the_same_returns():
    pytest.importorskip("mujoco")
    model = RobotController(3)
    points = grid_points(get_suite("hopper"), 2, None)[:2]
    one = lockstep_returns(model, "robust_rl/Hopper-v5", points, 5, 3, max_episode_steps=200)
    two = lockstep_returns(
        model, "robust_rl/Hopper-v5", points, 5, 3, max_episode_steps=200, threads=2
    )
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidArgumentError, match="threads must be a positive integer"):
        lockstep_returns(model, "robust_rl/Hopper-v5", points, 1, 3, threads=0)


@pytest.mark.parametrize("lockstep", [True, False])
def test_progress_counts_every_episode(lockstep, capsys):
    """The bar counts episodes as they end, on the lockstep and the per-MDP path alike."""
    from robust_rl.evaluation import evaluate_attacks

    model = Controller("cartpole")
    evaluate_grid(
        {"c": model}, "cartpole", n_episodes=3, points=2, lockstep=lockstep, progress=True
    )
    assert "24/24" in capsys.readouterr().err.replace(" ", "")  # 2 ** 3 points x 3
    model.observation_space = __import__("gymnasium").spaces.Box(-np.inf, np.inf, (4,), np.float32)
    evaluate_attacks(
        {"c": model}, "cartpole", n_episodes=2, epsilons=(0.0, 0.1), lockstep=lockstep,
        progress=True,
    )  # fmt: skip
    assert "4/4" in capsys.readouterr().err.replace(" ", "")
