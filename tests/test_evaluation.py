"""Tests of :mod:`robust_rl.evaluation` with tiny deterministic controllers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import robust_rl.evaluation as evaluation
from robust_rl.envs import CARTPOLE_SUITE, PerturbedCartPoleEnv
from robust_rl.evaluation import (
    DEFAULT_GRID,
    EvaluationResults,
    EvaluationRow,
    Predictor,
    aggregate_over_seeds,
    evaluate_grid,
    evaluate_returns,
    evaluate_suite,
    save_results,
    strip_seed_suffix,
)


class AlwaysRight:
    """Pushes right whatever it sees; records the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple:
        self.batches.append(np.array(observation))
        return np.ones(len(observation), dtype=np.int64), None


class Balancer:
    """``action = [theta + 0.5 * theta_dot > 0]``: balances the nominal CartPole for 500 steps."""

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple:
        obs = np.asarray(observation)
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64), None


def _always_right_returns(env_id: str, seeds: range) -> list[float]:
    """Reference: a plain gymnasium loop, one env, one episode per seed."""
    out = []
    for seed in seeds:
        env = gym.make(env_id)
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(1)
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    return out


def _hand_results(**kwargs) -> EvaluationResults:
    rows = (
        EvaluationRow("dqn_seed0", "original", "robust_rl/CartPole-v1", (500.0, 400.0)),
        EvaluationRow("dqn_seed0", "heavy pole", "robust_rl/CartPoleHeavyPole-v1", (10.0, 20.0)),
        EvaluationRow("dqn_seed1", "original", "robust_rl/CartPole-v1", (300.0, 300.0)),
        EvaluationRow("dqn_seed1", "heavy pole", "robust_rl/CartPoleHeavyPole-v1", (30.0, 50.0)),
        EvaluationRow("robust_seed0", "original", "robust_rl/CartPole-v1", (500.0, 500.0)),
        EvaluationRow(
            "robust_seed0", "heavy pole", "robust_rl/CartPoleHeavyPole-v1", (250.0, 350.0)
        ),
    )
    return EvaluationResults("suite", rows, n_episodes=2, seed=7, **kwargs)


@pytest.fixture(scope="module")
def small_grid() -> EvaluationResults:
    return evaluate_grid(
        {"right": AlwaysRight(), "balancer": Balancer()},
        {"masspole": [1, 20], "length": [0.5, 1]},
        n_episodes=2,
        seed=0,
        max_episode_steps=100,
    )


def test_every_public_name_imports() -> None:
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None
    assert isinstance(Balancer(), Predictor)


# ------------------------------------------------------------------------------------------
# evaluation


def test_always_right_matches_a_plain_gymnasium_loop() -> None:
    returns = evaluate_returns(AlwaysRight(), "robust_rl/CartPole-v1", n_episodes=5, seed=0)
    assert returns.dtype == np.float64 and returns.shape == (5,)
    np.testing.assert_array_equal(returns, [8.0, 9.0, 10.0, 10.0, 10.0])
    assert returns.tolist() == _always_right_returns("CartPole-v1", range(5))
    heavy = evaluate_returns(AlwaysRight(), CARTPOLE_SUITE["heavy pole"], n_episodes=5, seed=3)
    assert heavy.tolist() == _always_right_returns(CARTPOLE_SUITE["heavy pole"], range(3, 8))


def test_balancer_reaches_the_time_limit_and_the_cap() -> None:
    returns = evaluate_returns(Balancer(), "robust_rl/CartPole-v1", n_episodes=3, seed=0)
    assert returns.tolist() == [500.0, 500.0, 500.0]  # registered limit
    capped = evaluate_returns(
        Balancer(), "robust_rl/CartPole-v1", n_episodes=3, seed=0, max_episode_steps=40
    )
    assert capped.tolist() == [40.0, 40.0, 40.0]


def test_result_does_not_depend_on_batch_size() -> None:
    kw = {"n_episodes": 5, "seed": 10, "max_episode_steps": 200}
    env_id = CARTPOLE_SUITE["strong gravity"]
    one = evaluate_returns(Balancer(), env_id, batch_size=1, **kw)
    two = evaluate_returns(Balancer(), env_id, batch_size=2, **kw)
    five = evaluate_returns(Balancer(), env_id, batch_size=5, **kw)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, five)


def test_episode_i_uses_seed_plus_i() -> None:
    model = AlwaysRight()
    evaluate_returns(model, "robust_rl/CartPole-v1", n_episodes=4, seed=20, batch_size=4)
    first = model.batches[0]
    assert first.shape == (4, 4)
    expected = [gym.make("robust_rl/CartPole-v1").reset(seed=20 + i)[0] for i in range(4)]
    np.testing.assert_array_equal(first, np.stack(expected))


def test_factory_env_needs_a_time_limit() -> None:
    with pytest.raises(ValueError, match=r"no registered time limit.*max_episode_steps"):
        evaluate_returns(Balancer(), PerturbedCartPoleEnv, n_episodes=1)
    returns = evaluate_returns(Balancer(), PerturbedCartPoleEnv, n_episodes=2, max_episode_steps=30)
    assert returns.tolist() == [30.0, 30.0]


def test_evaluate_suite_rows_and_determinism() -> None:
    models = {"right": AlwaysRight(), "balancer": Balancer()}
    res = evaluate_suite(models, n_episodes=3, seed=0, max_episode_steps=100)
    assert res.kind == "suite" and res.name == "suite" and res.over == "episodes"
    assert res.models == ["right", "balancer"]
    assert res.mdps == list(CARTPOLE_SUITE)
    assert len(res.rows) == 8
    row = res.row("right", "original")
    assert row.returns == (8.0, 9.0, 10.0)
    assert row.mean == 9.0
    assert row.std == pytest.approx(np.sqrt(2 / 3), rel=1e-12)
    assert row.n == 3 and row.env == "robust_rl/CartPole-v1"
    assert res.row("balancer", "original").returns == (100.0, 100.0, 100.0)
    again = evaluate_suite(models, n_episodes=3, seed=0, max_episode_steps=100)
    assert again.rows == res.rows
    with pytest.raises(KeyError, match="no row for model 'dqn'"):
        res.row("dqn", "original")


def test_suite_accepts_factories() -> None:
    def heavy() -> gym.Env:
        return gym.make("robust_rl/CartPole-v1", masspole=2.0)

    res = evaluate_suite(
        {"right": AlwaysRight()},
        {"heavy (factory)": heavy, "heavy (id)": CARTPOLE_SUITE["heavy pole"]},
        n_episodes=4,
    )
    a, b = (res.row("right", m) for m in res.mdps)
    assert a.returns == b.returns
    assert a.env == "heavy"


def test_evaluate_grid_labels_values_and_consistency_with_suite(
    small_grid: EvaluationResults,
) -> None:
    assert small_grid.kind == "grid"
    assert small_grid.parameters == ["masspole", "length"]
    assert small_grid.mdps == ["masspole x1", "masspole x20", "length x0.5", "length x1"]
    row = small_grid.row("right", "masspole x20")
    assert (row.parameter, row.factor, row.value) == ("masspole", 20.0, 2.0)
    suite = evaluate_suite(
        {"right": AlwaysRight()},
        {"heavy pole": CARTPOLE_SUITE["heavy pole"], "short pole": CARTPOLE_SUITE["short pole"]},
        n_episodes=2,
        seed=0,
    )
    assert row.returns == suite.row("right", "heavy pole").returns
    assert (
        small_grid.row("right", "length x0.5").returns == suite.row("right", "short pole").returns
    )
    assert small_grid.row("balancer", "masspole x1").returns == (100.0, 100.0)


def test_default_grid_contains_the_suite_perturbations() -> None:
    assert 20.0 in DEFAULT_GRID["masspole"]  # 0.1 -> 2.0
    assert 0.5 in DEFAULT_GRID["length"]  # 0.5 -> 0.25
    assert 2.5 in DEFAULT_GRID["gravity"]  # 9.8 -> 24.5
    assert all(1.0 in f for f in DEFAULT_GRID.values())


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_models() -> None:
    with pytest.raises(ValueError, match="models must be a non-empty mapping"):
        evaluate_suite({}, n_episodes=1)
    with pytest.raises(TypeError, match=r"models\['x'\] has no predict\(\) method"):
        evaluate_suite({"x": object()}, n_episodes=1)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="models must be a non-empty mapping"):
        evaluate_grid({}, n_episodes=1)


@pytest.mark.parametrize("n_episodes", [0, -3, 1.5, True])
def test_bad_n_episodes(n_episodes: object) -> None:
    with pytest.raises(ValueError, match="n_episodes must be an integer >= 1"):
        evaluate_suite({"b": Balancer()}, n_episodes=n_episodes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_episodes must be an integer >= 1"):
        evaluate_returns(Balancer(), "robust_rl/CartPole-v1", n_episodes=n_episodes)  # type: ignore[arg-type]


def test_bad_seed_and_batch_size() -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        evaluate_suite({"b": Balancer()}, n_episodes=1, seed=-1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        evaluate_returns(Balancer(), "robust_rl/CartPole-v1", n_episodes=1, batch_size=0)


def test_unknown_env_id_is_named_before_anything_runs() -> None:
    model = AlwaysRight()
    suite = {"original": "robust_rl/CartPole-v1", "typo": "robust_rl/CartPoleHevyPole-v1"}
    with pytest.raises(
        ValueError, match=r"suite\['typo'\]: unknown environment id 'robust_rl/CartPoleHevyPole-v1'"
    ):
        evaluate_suite({"right": model}, suite, n_episodes=1)
    assert model.batches == []
    with pytest.raises(ValueError, match="env_id: unknown environment id 'Nope-v0'"):
        evaluate_grid({"right": model}, env_id="Nope-v0", n_episodes=1)
    with pytest.raises(ValueError, match="suite must be a non-empty mapping"):
        evaluate_suite({"right": model}, {}, n_episodes=1)


@pytest.mark.parametrize(
    ("factors", "match"),
    [
        ({"tau": [1.0]}, r"factors: unknown parameter 'tau'; accepted names: gravity"),
        ({"masspole": [1.0, 0.0]}, r"factors\['masspole'\] must be positive finite"),
        ({"masspole": [-2.0]}, r"factors\['masspole'\] must be positive finite"),
        ({"masspole": []}, r"factors\['masspole'\] is empty"),
        ({"masspole": [1.0, 1.0]}, r"factors\['masspole'\] has repeated factors"),
        ({"masspole": ["big"]}, r"factors\['masspole'\] must be a sequence of numbers"),
        ({}, "factors must be a non-empty mapping"),
    ],
)
def test_bad_grid_factors(factors: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_grid({"b": Balancer()}, factors, n_episodes=1)


def test_grid_needs_adjustable_physics() -> None:
    with pytest.raises(ValueError, match="env_id: 'CartPole-v1' has no get_params"):
        evaluate_grid({"b": Balancer()}, env_id="CartPole-v1", n_episodes=1)


def test_wrong_action_batch_shape() -> None:
    class Scalar:
        def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple:
            return np.int64(1), None

    with pytest.raises(ValueError, match=r"actions of shape \(\) for a batch of 2"):
        evaluate_returns(Scalar(), "robust_rl/CartPole-v1", n_episodes=2)


# ------------------------------------------------------------------------------------------
# tables, aggregation, files


def test_markdown_table() -> None:
    text = _hand_results().to_markdown()
    assert text == (
        "Return: mean ± std over 2 episodes (reset seeds 7..8).\n"
        "\n"
        "| MDP | dqn_seed0 | dqn_seed1 | robust_seed0 |\n"
        "|---|---:|---:|---:|\n"
        "| original | 450.0 ± 50.0 | 300.0 ± 0.0 | 500.0 ± 0.0 |\n"
        "| heavy pole | 15.0 ± 5.0 | 40.0 ± 10.0 | 300.0 ± 50.0 |\n"
    )
    table = _hand_results().to_markdown(precision=0, caption=False)
    assert table.splitlines()[2] == "| original | 450 ± 50 | 300 ± 0 | 500 ± 0 |"


def test_markdown_marks_missing_cells() -> None:
    rows = (
        EvaluationRow("a", "original", "x", (1.0,)),
        EvaluationRow("b", "heavy pole", "y", (2.0,)),
    )
    text = EvaluationResults("suite", rows, n_episodes=1, seed=0).to_markdown(caption=False)
    assert text.splitlines()[2:] == [
        "| original | 1.0 ± 0.0 | – |",
        "| heavy pole | – | 2.0 ± 0.0 |",
    ]


def test_csv_contents(small_grid: EvaluationResults) -> None:
    rows = list(csv.DictReader(io.StringIO(_hand_results().to_csv())))
    assert list(rows[0]) == [
        "model",
        "mdp",
        "env",
        "parameter",
        "factor",
        "value",
        "over",
        "n",
        "mean",
        "std",
        "seed",
        "returns",
        "members",
    ]
    assert len(rows) == 6
    assert rows[0] == {
        "model": "dqn_seed0",
        "mdp": "original",
        "env": "robust_rl/CartPole-v1",
        "parameter": "",
        "factor": "",
        "value": "",
        "over": "episodes",
        "n": "2",
        "mean": "450.0",
        "std": "50.0",
        "seed": "7",
        "returns": "500.0;400.0",
        "members": "",
    }
    grid_rows = list(csv.DictReader(io.StringIO(small_grid.to_csv())))
    heavy = next(r for r in grid_rows if r["model"] == "right" and r["mdp"] == "masspole x20")
    assert (heavy["parameter"], heavy["factor"], heavy["value"]) == ("masspole", "20.0", "2.0")
    expected = small_grid.row("right", "masspole x20").returns
    assert tuple(float(x) for x in heavy["returns"].split(";")) == expected


def test_strip_seed_suffix() -> None:
    assert strip_seed_suffix("dqn_seed0") == "dqn"
    assert strip_seed_suffix("robust_dqn-seed12") == "robust_dqn"
    assert strip_seed_suffix("dqnseed3") == "dqn"
    assert strip_seed_suffix("dqn") == "dqn"
    assert strip_seed_suffix("seed3") == "seed3"


def test_aggregate_over_seeds() -> None:
    agg = aggregate_over_seeds(_hand_results())
    assert agg.over == "seeds" and agg.name == "suite_over_seeds" and agg.kind == "suite"
    assert agg.models == ["dqn", "robust"]
    dqn = agg.row("dqn", "original")
    assert dqn.returns == (450.0, 300.0)  # per-seed means
    assert (dqn.mean, dqn.std, dqn.n) == (375.0, 75.0, 2)
    assert dqn.members == ("dqn_seed0", "dqn_seed1")
    assert agg.row("dqn", "heavy pole").returns == (15.0, 40.0)
    assert agg.row("robust", "heavy pole").returns == (300.0,)
    assert agg.to_markdown().startswith("Return: mean ± std over training seeds")
    assert "| original | 375.0 ± 75.0 | 500.0 ± 0.0 |" in agg.to_markdown()
    row = next(csv.DictReader(io.StringIO(agg.to_csv())))
    assert (row["over"], row["members"]) == ("seeds", "dqn_seed0;dqn_seed1")
    custom = aggregate_over_seeds(_hand_results(), group_of=lambda m: "all")
    assert custom.row("all", "original").returns == (450.0, 300.0, 500.0)


def test_aggregate_bad_input() -> None:
    agg = aggregate_over_seeds(_hand_results())
    with pytest.raises(ValueError, match="expected per-episode results"):
        aggregate_over_seeds(agg)
    partial = EvaluationResults(
        "suite",
        (
            EvaluationRow("dqn_seed0", "original", "x", (1.0,)),
            EvaluationRow("dqn_seed0", "heavy pole", "y", (1.0,)),
            EvaluationRow("dqn_seed1", "original", "x", (2.0,)),
        ),
        n_episodes=1,
        seed=0,
    )
    with pytest.raises(ValueError, match=r"group 'dqn': models \['dqn_seed1'\] were not"):
        aggregate_over_seeds(partial)
    with pytest.raises(ValueError, match="group_of"):
        aggregate_over_seeds(_hand_results(), group_of=lambda m: "")


def test_duplicate_rows_are_refused() -> None:
    row = EvaluationRow("a", "original", "x", (1.0,))
    with pytest.raises(ValueError, match="duplicate row for model 'a' on 'original'"):
        EvaluationResults("suite", (row, row), n_episodes=1, seed=0)


def test_plot_png(small_grid: EvaluationResults) -> None:
    png = small_grid.plot_png(dpi=40)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="plot_png needs grid results"):
        _hand_results().plot_png()


def test_save_results_writes_and_never_clobbers(
    tmp_path: Path, small_grid: EvaluationResults
) -> None:
    suite = _hand_results()
    written = save_results([suite, small_grid], tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["grid.csv", "grid.md", "grid.png", "suite.csv", "suite.md"]
    assert (tmp_path / "out" / "suite.csv").read_text() == suite.to_csv()
    assert (tmp_path / "out" / "suite.md").read_text() == suite.to_markdown()
    assert (tmp_path / "out" / "grid.png").read_bytes().startswith(b"\x89PNG")

    other = EvaluationResults(
        "suite", (EvaluationRow("z", "original", "x", (1.0,)),), n_episodes=1, seed=0
    )
    with pytest.raises(FileExistsError, match=r"suite\.csv already exists"):
        save_results(other, tmp_path / "out")
    assert (tmp_path / "out" / "suite.csv").read_text() == suite.to_csv()

    # An existing file anywhere stops the call before anything is written.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "grid.md").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"grid\.md already exists"):
        save_results([suite, small_grid], tmp_path / "new")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["grid.md"]

    save_results(other, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "suite.csv").read_text() == other.to_csv()
    agg = aggregate_over_seeds(suite)
    assert [p.name for p in save_results(agg, tmp_path / "out")] == [
        "suite_over_seeds.csv",
        "suite_over_seeds.md",
    ]


def test_save_results_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to save"):
        save_results([], tmp_path)
    with pytest.raises(ValueError, match="repeated names"):
        save_results([_hand_results(), _hand_results()], tmp_path)
    with pytest.raises(ValueError, match="not a valid file stem"):
        save_results(_hand_results(name="../escape"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_works_with_a_stable_baselines3_model() -> None:
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env_id = CARTPOLE_SUITE["short pole"]
    model = DQN(
        "MlpPolicy",
        gym.make(env_id),
        buffer_size=100,
        policy_kwargs={"net_arch": [8]},
        seed=0,
        device="cpu",
    )
    returns = evaluate_returns(model, env_id, n_episodes=3, seed=5, batch_size=3)
    reference = []
    for i in range(3):  # one observation at a time, as in SB3's own examples
        env = gym.make(env_id)
        obs, _ = env.reset(seed=5 + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        reference.append(total)
    assert returns.tolist() == reference
