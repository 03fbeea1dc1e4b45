"""Tests of :mod:`robust_rl.evaluation`: rollouts, suites, grids, results and reports."""

from __future__ import annotations

import csv
import io
import json
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

from robust_rl.envs import CARTPOLE_SUITE, NOMINAL_PARAMS, UNCERTAINTY_SETS
from robust_rl.errors import InvalidArgumentError, OutputExistsError, UnknownNameError
from robust_rl.evaluation import (
    CSV_COLUMNS,
    MAX_GRID_POINTS,
    MDP,
    SUITES,
    EvaluationResults,
    EvaluationRow,
    Predictor,
    Suite,
    aggregate_over_seeds,
    evaluate_grid,
    evaluate_returns,
    evaluate_suite,
    get_suite,
    grid_points,
    load_suite,
    on_inclusive_grid,
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


def _always_right_returns(env_id: str, seeds: range, **params: float) -> list[float]:
    """Reference: a plain gymnasium loop, one env, one episode per seed."""
    out = []
    for seed in seeds:
        env = gym.make(env_id)
        if params:
            env.unwrapped.set_params(**params)
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(1)
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    return out


def _hand_results() -> EvaluationResults:
    def row(model: str, mdp: str, returns: tuple, **kw) -> EvaluationRow:
        return EvaluationRow(model, mdp, "robust_rl/CartPole-v1", returns, **kw)

    return EvaluationResults(
        (
            row("dqn_seed0", "original", (500.0, 400.0), split="test", seed=7),
            row("dqn_seed0", "heavy pole", (10.0, 20.0), split="test", params={"masspole": 2.0}),
            row("dqn_seed1", "original", (300.0, 300.0), split="test", seed=7),
            row("dqn_seed1", "heavy pole", (30.0, 50.0), split="test", params={"masspole": 2.0}),
            row("dqn_seed0", "g", (1.0, 3.0), kind="grid", params={"masspole": 0.05}),
            row("dqn_seed0", "h", (5.0, 7.0), kind="grid", params={"masspole": 2.0}),
            row("dqn_seed1", "g", (2.0, 2.0), kind="grid", params={"masspole": 0.05}),
            row("dqn_seed1", "h", (8.0, 8.0), kind="grid", params={"masspole": 2.0}),
            row("dqn_seed0", "a0", (9.0,), kind="attack", attack="random", epsilon=0.0),
            row("dqn_seed0", "a1", (4.0,), kind="attack", attack="random", epsilon=0.1),
            row("dqn_seed1", "a0", (7.0,), kind="attack", attack="random", epsilon=0.0),
            row("dqn_seed1", "a1", (6.0,), kind="attack", attack="random", epsilon=0.1),
        ),
        name="hand",
        suite="cartpole",
        axes=("masspole",),
    )


def _small_grid(**kwargs: Any) -> EvaluationResults:
    return evaluate_grid(
        {"right": AlwaysRight(), "balancer": Balancer()},
        "cartpole",
        n_episodes=2,
        points=2,
        axes=["masspole", "length"],
        max_episode_steps=100,
        **kwargs,
    )


@pytest.fixture(scope="module")
def small_grid() -> EvaluationResults:
    return _small_grid()


def test_a_model_with_predict_is_a_predictor() -> None:
    # (every public module's __all__ is checked once for the library in test_io_cli.py)
    assert isinstance(Balancer(), Predictor)
    assert not isinstance(object(), Predictor)


# ------------------------------------------------------------------------------------------
# rollouts


def test_always_right_matches_a_plain_gymnasium_loop() -> None:
    returns = evaluate_returns(AlwaysRight(), "robust_rl/CartPole-v1", n_episodes=5, seed=0)
    assert returns.dtype == np.float64 and returns.shape == (5,)
    np.testing.assert_array_equal(returns, [8.0, 9.0, 10.0, 10.0, 10.0])
    assert returns.tolist() == _always_right_returns("CartPole-v1", range(5))


def test_params_reach_the_simulator() -> None:
    heavy = evaluate_returns(AlwaysRight(), "robust_rl/CartPole-v1", 5, 3, params={"masspole": 2.0})
    assert heavy.tolist() == _always_right_returns(CARTPOLE_SUITE["heavy pole"], range(3, 8))
    assert heavy.tolist() == _always_right_returns(
        "robust_rl/CartPole-v1", range(3, 8), masspole=2.0
    )
    nominal = evaluate_returns(AlwaysRight(), "robust_rl/CartPole-v1", 5, 3)
    assert heavy.tolist() != nominal.tolist()
    with pytest.raises(InvalidArgumentError, match="bad parameters"):
        evaluate_returns(AlwaysRight(), "robust_rl/CartPole-v1", 1, params={"nope": 1.0})


def test_balancer_reaches_the_time_limit_and_the_cap() -> None:
    returns = evaluate_returns(Balancer(), "robust_rl/CartPole-v1", n_episodes=3, seed=0)
    assert returns.tolist() == [500.0, 500.0, 500.0]
    capped = evaluate_returns(
        Balancer(), "robust_rl/CartPole-v1", n_episodes=3, seed=0, max_episode_steps=40
    )
    assert capped.tolist() == [40.0, 40.0, 40.0]


def test_result_does_not_depend_on_batch_size() -> None:
    kw = {"n_episodes": 5, "seed": 10, "max_episode_steps": 200, "params": {"gravity": 24.5}}
    one = evaluate_returns(Balancer(), "robust_rl/CartPole-v1", batch_size=1, **kw)
    two = evaluate_returns(Balancer(), "robust_rl/CartPole-v1", batch_size=2, **kw)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_episodes": 0}, "n_episodes must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_rollout_arguments(kwargs: dict, match: str) -> None:
    args = {"n_episodes": 1, "seed": 0} | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        evaluate_returns(Balancer(), "robust_rl/CartPole-v1", **args)


def test_unknown_env_and_bad_model() -> None:
    with pytest.raises(UnknownNameError, match="unknown environment id 'nope-v0'"):
        evaluate_returns(Balancer(), "nope-v0", 1)
    with pytest.raises(InvalidArgumentError, match="expected an object with predict"):
        evaluate_returns(object(), "robust_rl/CartPole-v1", 1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# suites


def test_registry_has_every_task_with_the_env_uncertainty_sets() -> None:
    assert set(SUITES) >= {
        "cartpole",
        "pendulum",
        "acrobot",
        "mountaincar",
        "inverted-pendulum",
        "hopper",
        "halfcheetah",
        "walker2d",
    }
    for suite in SUITES.values():
        assert dict(suite.uncertainty) == UNCERTAINTY_SETS[suite.nominal_id]
        assert suite.test[0].params == {}
        nominal = NOMINAL_PARAMS[suite.nominal_id]
        for m in suite.test[1:]:  # every other test MDP changes the physics
            assert any(v != nominal[k] for k, v in m.params.items()), (suite.name, m)
    assert dict(SUITES["inverted-pendulum"].uncertainty) == {
        "pole_mass": (1.0, 31.0),
        "cart_mass": (1.0, 11.0),
    }
    cartpole = get_suite("cartpole")
    assert [(m.name, dict(m.params)) for m in cartpole.test] == [
        ("original", {}),
        ("heavy pole", {"masspole": 2.0}),
        ("short pole", {"length": 0.25}),
        ("strong gravity", {"gravity": 24.5}),
    ]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_validation_is_disjoint_from_test_mdps_and_every_grid(name: str) -> None:
    suite = SUITES[name]
    assert len(suite.validation) >= 2
    test_params = [dict(m.params) for m in suite.test]
    for m in suite.validation:
        assert dict(m.params) not in test_params
        for axis, (lo, hi) in suite.uncertainty.items():
            assert lo < m.params[axis] < hi  # inside the uncertainty set
    # every grid is a product of per-axis linspaces: a validation MDP is off every grid with
    # 2..MAX_GRID_POINTS points because each of its coordinates is off every linspace
    for n in range(2, MAX_GRID_POINTS + 1):
        for m in suite.validation:
            for axis in suite.axes:
                lo, hi = suite.uncertainty[axis]
                gap = np.abs(np.linspace(lo, hi, n) - m.params[axis]).min()
                assert gap >= 1e-3 * (hi - lo)


def test_suite_refuses_validation_on_a_grid_or_equal_to_a_test_mdp() -> None:
    unc = {"masspole": (0.05, 2.0)}
    test = (MDP("original"), MDP("heavy", {"masspole": 2.0}))
    with pytest.raises(InvalidArgumentError, match="may lie on a grid point"):
        Suite(
            "s", "robust_rl/CartPole-v1", test, unc, validation=(MDP("mid", {"masspole": 1.025}),)
        )
    with pytest.raises(InvalidArgumentError, match="is physically test MDP 'heavy'"):
        Suite("s", "robust_rl/CartPole-v1", test, unc, validation=(MDP("v", {"masspole": 2.0}),))
    with pytest.raises(InvalidArgumentError, match="repeated MDP names"):
        Suite("s", "robust_rl/CartPole-v1", (MDP("a"), MDP("a", {"masspole": 1.0})), unc)
    with pytest.raises(InvalidArgumentError, match="needs finite low < high"):
        Suite("s", "robust_rl/CartPole-v1", test, {"masspole": (2.0, 1.0)})
    assert on_inclusive_grid(1.025, 0.05, 2.0, 3) and not on_inclusive_grid(0.6853, 0.05, 2.0)
    assert on_inclusive_grid(1.0251, 0.05, 2.0)  # 1e-4 of the range from a grid point


def test_grid_points_are_inclusive_and_ordered() -> None:
    suite = get_suite("inverted-pendulum")
    pts = grid_points(suite, 10)
    assert len(pts) == 100
    assert pts[0] == {"pole_mass": 1.0, "cart_mass": 1.0}
    assert pts[1]["pole_mass"] == 1.0 and pts[1]["cart_mass"] == pytest.approx(1.0 + 10.0 / 9)
    assert pts[-1] == {"pole_mass": 31.0, "cart_mass": 11.0}
    assert grid_points(suite, 2, axes=["cart_mass"]) == [{"cart_mass": 1.0}, {"cart_mass": 11.0}]
    with pytest.raises(InvalidArgumentError, match=r"points must be an integer in 2\.\.25"):
        grid_points(suite, 1)
    with pytest.raises(InvalidArgumentError, match="must be distinct parameters"):
        grid_points(suite, 3, axes=["friction"])


def test_yaml_suite_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(get_suite("cartpole").to_dict(), sort_keys=False))
    loaded = get_suite(str(path))
    assert loaded == get_suite("cartpole")
    custom = tmp_path / "custom.yml"
    custom.write_text(
        "nominal_id: robust_rl/CartPole-v1\n"
        "test: {original: {}, heavier: {masspole: 0.5}}\n"
        "uncertainty: {masspole: [0.1, 1.0]}\n"
    )
    s = load_suite(custom)
    assert s.name == "custom" and [m.name for m in s.test] == ["original", "heavier"]
    assert len(s.validation) == 4 and all(0.1 < m.params["masspole"] < 1.0 for m in s.validation)
    bad = tmp_path / "bad.yaml"
    bad.write_text("nominal_id: robust_rl/CartPole-v1\ntest: {a: {}}\ncolour: red\n")
    with pytest.raises(InvalidArgumentError, match=r"unknown key\(s\) \['colour'\]"):
        get_suite(bad)
    with pytest.raises(UnknownNameError, match="unknown suite 'nope'; registered suites: acrobot"):
        get_suite("nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_suite(str(tmp_path / "missing.yaml"))


# ------------------------------------------------------------------------------------------
# suite and grid evaluation


def test_evaluate_suite_rows_splits_and_determinism() -> None:
    models = {"right": AlwaysRight()}
    res = evaluate_suite(models, "cartpole", n_episodes=3, seed=5)
    assert [r.mdp for r in res.rows] == ["original", "heavy pole", "short pole", "strong gravity"]
    for r, mdp in zip(res.rows, get_suite("cartpole").test, strict=True):
        assert r.kind == "suite" and r.split == "test" and dict(r.params) == dict(mdp.params)
        assert r.seeds == range(5, 8)
        assert list(r.returns) == _always_right_returns(
            "robust_rl/CartPole-v1", range(5, 8), **mdp.params
        )
    assert res.to_dict() == evaluate_suite(models, "cartpole", n_episodes=3, seed=5).to_dict()
    val = evaluate_suite(models, "cartpole", n_episodes=1, split="validation")
    assert [r.mdp for r in val.rows] == [m.name for m in get_suite("cartpole").validation]
    assert {r.split for r in val.rows} == {"validation"}
    with pytest.raises(InvalidArgumentError, match="split must be one of"):
        evaluate_suite(models, "cartpole", n_episodes=1, split="train")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="models must be a non-empty mapping"):
        evaluate_suite({}, "cartpole")


def test_grid_rows_summary_and_worst_case(small_grid: EvaluationResults) -> None:
    assert small_grid.axes == ("masspole", "length")
    assert len(small_grid.rows) == 2 * 4
    right = small_grid.select(model="right")
    assert [dict(r.params) for r in right] == grid_points(
        get_suite("cartpole"), 2, ["masspole", "length"]
    )
    for r in right:
        assert list(r.returns) == _always_right_returns(
            "robust_rl/CartPole-v1", range(2), **r.params
        )
    s = small_grid.summary("right")
    means = [r.mean for r in right]
    assert s.grid_points == 4
    assert s.grid_average == pytest.approx(np.mean(means))
    assert s.grid_worst == min(means)
    assert dict(s.grid_worst_params) == dict(right[int(np.argmin(means))].params)


def test_grid_with_two_workers_equals_one_worker(small_grid: EvaluationResults) -> None:
    assert _small_grid(n_workers=2).to_dict() == small_grid.to_dict()
    with pytest.raises(InvalidArgumentError, match="n_workers must be a positive integer"):
        evaluate_grid({"b": Balancer()}, "cartpole", points=2, n_workers=0)
    with pytest.raises(InvalidArgumentError, match="backend must be 'local' or 'ray'"):
        evaluate_grid({"b": Balancer()}, "cartpole", points=2, backend="dask")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# results


def test_summary_of_hand_results() -> None:
    s = _hand_results().summary("dqn_seed0")
    assert s.nominal == 450.0
    assert dict(s.test) == {"original": 450.0, "heavy pole": 15.0}
    assert s.grid_average == 4.0 and s.grid_worst == 2.0
    assert dict(s.grid_worst_params) == {"masspole": 0.05}
    assert {a: dict(v) for a, v in s.attacks.items()} == {"random": {0.0: 9.0, 0.1: 4.0}}
    json.dumps(s.to_dict())  # JSON-safe
    with pytest.raises(UnknownNameError, match="unknown model 'x'"):
        _hand_results().summary("x")


def test_dict_json_round_trip() -> None:
    res = _hand_results()
    again = EvaluationResults.from_json(res.to_json())
    assert again == res and again.to_dict() == res.to_dict()
    assert pickle.loads(pickle.dumps(res)) == res
    suite = get_suite("hopper")
    assert pickle.loads(pickle.dumps(suite)) == suite
    with pytest.raises(InvalidArgumentError, match="malformed results dict"):
        EvaluationResults.from_dict({"name": "x"})


def test_compact_dict_round_trip(small_grid: EvaluationResults) -> None:
    """The compact form (what trials record) reads back to the same rows: fields equal in every
    row stored once, params split into columns, grid labels rebuilt, returns to 9 digits."""
    for res in (_hand_results(), small_grid):
        compact = res.to_dict(compact=True)
        assert set(compact) == {"name", "suite", "axes", "same", "columns", "rows"}
        assert all(len(r) == len(compact["columns"]) for r in compact["rows"])
        assert EvaluationResults.from_json(json.dumps(compact)) == res
        assert len(res.to_json(compact=True)) < len(res.to_json()) / 2
    compact = small_grid.to_dict(compact=True)
    assert compact["same"]["kind"] == "grid" and compact["same"]["mdp"] is None
    assert "params.masspole" in compact["columns"] and "params" not in compact["columns"]
    hand = _hand_results().to_dict(compact=True)
    # a hand-named grid row keeps its name; a row without the parameter gets null
    i, j = hand["columns"].index("mdp"), hand["columns"].index("params.masspole")
    assert [r[i] for r in hand["rows"]][4] == "g" and hand["rows"][0][j] is None
    noisy = EvaluationResults(
        (EvaluationRow("m", "original", "robust_rl/CartPole-v1", (1 / 3, 123.456789012345)),)
    )
    back = EvaluationResults.from_dict(noisy.to_dict(compact=True))
    assert back.rows[0].returns == (0.333333333, 123.456789)
    over = aggregate_over_seeds(_hand_results(), group_of=lambda n: n[-1])  # two groups
    compact = over.to_dict(compact=True)  # members named once per model
    assert compact["members_of"] == {"0": ["dqn_seed0"], "1": ["dqn_seed1"]}
    assert "members" not in compact["columns"] and "members" not in compact["same"]
    assert EvaluationResults.from_dict(compact) == over
    bad = {**hand, "rows": [r[:-1] for r in hand["rows"]]}
    with pytest.raises(InvalidArgumentError, match="malformed results dict"):
        EvaluationResults.from_dict(bad)


def test_csv_contents(small_grid: EvaluationResults) -> None:
    parsed = list(csv.DictReader(io.StringIO(small_grid.to_csv())))
    assert tuple(parsed[0]) == CSV_COLUMNS
    assert len(parsed) == len(small_grid.rows)
    for line, row in zip(parsed, small_grid.rows, strict=True):
        assert line["model"] == row.model and line["kind"] == "grid"
        assert json.loads(line["params"]) == dict(row.params)
        assert [float(x) for x in line["returns"].split(";")] == list(row.returns)
        assert float(line["mean"]) == row.mean and int(line["seed"]) == row.seed


def test_markdown_tables() -> None:
    md = _hand_results().to_markdown()
    assert "| original | 450.0 ± 50.0 | 300.0 ± 0.0 |" in md
    assert "| dqn_seed0 | 2 | 4.0 | 2.0 | masspole=0.05 |" in md
    assert "| random, ε=0.1 | 4.0 ± 0.0 | 6.0 ± 0.0 |" in md
    assert "reset seeds 7..8" in md


def test_strip_seed_suffix_and_aggregate_over_seeds() -> None:
    assert strip_seed_suffix("robust_dqn-seed12") == "robust_dqn"
    assert strip_seed_suffix("dqn") == "dqn"
    agg = aggregate_over_seeds(_hand_results())
    assert agg.models == ["dqn"] and agg.name == "hand_over_seeds"
    orig = agg.row("dqn", "original")
    assert orig.returns == (450.0, 300.0) and orig.over == "seeds"
    assert orig.members == ("dqn_seed0", "dqn_seed1")
    s = agg.summary("dqn")
    assert (
        s.grid_worst == 2.0
        and s.grid_average == 4.5
        and s.attacks["random"] == {0.0: 8.0, 0.1: 5.0}
    )
    assert "training seeds" in agg.to_markdown()
    with pytest.raises(InvalidArgumentError, match="expected per-episode results"):
        aggregate_over_seeds(agg)


def test_duplicate_rows_are_refused() -> None:
    r = EvaluationRow("m", "original", "robust_rl/CartPole-v1", (1.0,))
    with pytest.raises(InvalidArgumentError, match="duplicate row for model 'm'"):
        EvaluationResults((r, r))
    with pytest.raises(InvalidArgumentError, match="row kind must be one of"):
        EvaluationRow("m", "x", "e", (1.0,), kind="other")  # type: ignore[arg-type]


def test_save_results_writes_figures_and_never_clobbers(
    tmp_path: Path, small_grid: EvaluationResults
) -> None:
    res = _hand_results()
    written = save_results([res, small_grid], tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "grid.csv",
        "grid.json",
        "grid.md",
        "grid.png",
        "hand.csv",
        "hand.json",
        "hand.md",
        "hand_attack.png",
        "hand_grid.png",
    ]
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert EvaluationResults.from_json((tmp_path / "hand.json").read_text()) == res
    before = (tmp_path / "hand.md").read_text()
    with pytest.raises(OutputExistsError, match="already exists"):
        save_results(res, tmp_path)
    assert (tmp_path / "hand.md").read_text() == before
    save_results(res, tmp_path, force=True)
    with pytest.raises(InvalidArgumentError, match="repeated names"):
        save_results([res, res], tmp_path / "x")


def test_save_results_publishes_the_whole_set_or_nothing(
    tmp_path: Path, small_grid: EvaluationResults, monkeypatch
) -> None:
    import os

    import robust_rl.io as io_module

    save_results(small_grid, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    hand = _hand_results()
    renamed = EvaluationResults(tuple(hand.rows), name="grid")  # grid and attack rows: 2 figures
    calls = {"n": 0}
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the third file of the set does not fit
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_module.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_results(renamed, tmp_path, force=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old set, no temps
    monkeypatch.setattr(io_module.os, "fsync", real_fsync)
    save_results(renamed, tmp_path, force=True)
    # the new set, and not the earlier run's grid.png beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "grid.csv",
        "grid.json",
        "grid.md",
        "grid_attack.png",
        "grid_grid.png",
    ]


@pytest.mark.slow
def test_grid_on_ray_equals_local(tmp_path: Path) -> None:
    """Ray backend (a private local Ray with two CPUs) gives the local result."""
    pytest.importorskip("ray")
    from stable_baselines3 import PPO

    path = tmp_path / "ppo.zip"
    PPO("MlpPolicy", "robust_rl/CartPole-v1", device="cpu", seed=0).save(path)
    kw = {"points": 2, "axes": ["masspole", "length"], "n_episodes": 2, "max_episode_steps": 50}
    local = evaluate_grid({"ppo": str(path)}, "cartpole", **kw)
    on_ray = evaluate_grid({"ppo": str(path)}, "cartpole", n_workers=2, backend="ray", **kw)
    assert on_ray.to_dict() == local.to_dict()


def test_one_record_per_task_makes_its_suite():
    import gymnasium as gym

    from robust_rl.envs.tasks import TASKS
    from robust_rl.evaluation.suites import SUITES

    made = {t.suite: t for t in TASKS if t.id in gym.registry}
    assert set(SUITES) <= set(made) and all(t.suite for t in TASKS)
    for name, suite in SUITES.items():
        task = made[name]
        assert suite.nominal_id == task.id and suite.description == task.description
        assert dict(suite.uncertainty) == dict(task.uncertainty_set)
        if task.test_mdps is not None:
            assert [(m.name, dict(m.params)) for m in suite.test] == [
                (k, dict(v)) for k, v in task.test_mdps.items()
            ]


def test_plot_bands_stay_within_the_episodes_and_the_nominal_point_is_known():
    from robust_rl.evaluation.report import _band, _nominal
    from robust_rl.evaluation.results import EvaluationRow

    row = EvaluationRow(
        model="m", mdp="p", env="robust_rl/CartPole-v1", returns=(500.0, 500.0, 20.0)
    )
    lo, hi = _band(row)
    assert hi == 500.0 and lo == pytest.approx(row.mean - row.std)
    assert _nominal("robust_rl/CartPole-v1")["masspole"] == 0.1
    assert _nominal("CartPole-v1") == {}


def test_grid_axes_carry_the_parameters_units():
    from robust_rl.evaluation.report import _grid_curves, _grid_heatmaps, _labels, _pyplot
    from robust_rl.evaluation.results import EvaluationRow

    labels = _labels("robust_rl/CartPole-v1")
    assert labels["masspole"] == "masspole (kg)" and labels["gravity"] == "gravity (m/s²)"
    assert _labels("CartPole-v1") == {}
    rows = [
        EvaluationRow(
            model="m",
            mdp=f"p{i}{j}",
            env="robust_rl/CartPole-v1",
            returns=(float(100 * i + j),),
            kind="grid",
            params={"masspole": mp, "length": ln},
        )
        for i, mp in enumerate((0.05, 0.5))
        for j, ln in enumerate((0.25, 1.0))
    ]
    plt = _pyplot()
    fig = _grid_heatmaps(plt, rows, ["masspole", "length"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("length (m)", "masspole (kg)")
    plt.close(fig)
    single = [
        EvaluationRow(
            model="m",
            mdp=f"q{mp}",
            env="robust_rl/CartPole-v1",
            returns=(1.0,),
            kind="grid",
            params={"masspole": mp},
        )
        for mp in (0.05, 0.5)
    ]
    fig = _grid_curves(plt, single)
    assert fig.axes[0].get_xlabel() == "masspole (kg)"
    plt.close(fig)
