"""The Optuna search: TPE points per variant, pruning on intermediate validation evaluations, the
study stored in OUT/study.db, interrupted and resumed without rerunning finished points."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from robust_rl.cli import main
from robust_rl.sweep import RESULT_FILE, STUDY_FILE, parse_sweep
from robust_rl.sweep import search as search_module
from robust_rl.sweep.backends import open_backend
from robust_rl.sweep.search import PruneSnapshot, _open_study, run_point, study_name
from robust_rl.sweep.spec import point_trials

optuna = pytest.importorskip(
    "optuna", reason="optuna is not installed (pip install 'robust-rl[optuna]')"
)
TrialState = optuna.trial.TrialState

TINY_DQN: dict[str, Any] = {
    "n_timesteps": 200,
    "learning_starts": 100,
    "train_freq": 16,
    "gradient_steps": 1,
    "batch_size": 16,
    "buffer_size": 1000,
    "policy_kwargs": {"net_arch": [16]},
}

#: DQN and A2C on CartPole, each searched over its own hyperparameters with the same budget
SEARCH: dict[str, Any] = {
    "name": "tiny-search",
    "env": "robust_rl/CartPole-v1",
    "seeds": [0],
    "evaluation": {"suite": "cartpole", "tune_episodes": 1, "episodes": 1},
    "search": {
        "method": "optuna",
        "n_trials": 2,
        "sampler_seed": 3,
        "pruner": "median",
        "n_startup_trials": 1,
        "checkpoints": 2,
        "checkpoint_episodes": 1,
    },
    "variants": {
        "dqn": {
            "algo": "dqn",
            "params": dict(TINY_DQN),
            "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
        },
        "a2c": {
            "algo": "a2c",
            "params": {"n_timesteps": 200, "n_steps": 8},
            "space": {
                "gamma": {"low": 0.9, "high": 0.999},
                # mappings (and lists) as choices: stored in the study as JSON text
                "policy_kwargs": {"choices": [{"net_arch": [16]}, {"net_arch": [8]}]},
            },
        },
    },
}


def _study(out: Path, variant: str) -> optuna.Study:
    storage = f"sqlite:///{out / STUDY_FILE}"
    return optuna.load_study(study_name=f"tiny-search/{variant}", storage=storage)


def _models(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/model.zip")}


def test_search_interrupted_and_resumed(tmp_path: Path, monkeypatch, capsys) -> None:
    file = tmp_path / "search.yaml"
    file.write_text(yaml.safe_dump(SEARCH, sort_keys=False))
    out = tmp_path / "out"
    told = []
    real_tell = search_module._tell

    def crash_on_third(*args: Any) -> None:
        if len(told) == 2:
            raise KeyboardInterrupt  # the driver dies after the third point ran
        told.append(args)
        real_tell(*args)

    monkeypatch.setattr(search_module, "_tell", crash_on_third)
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 130
    monkeypatch.undo()
    states = [t.state for v in ("dqn", "a2c") for t in _study(out, v).trials]
    assert states.count(TrialState.RUNNING) == 1  # asked, ran, never told
    assert sum(s.is_finished() for s in states) == 2
    spec = parse_sweep(copy.deepcopy(SEARCH))
    ((variant, running),) = [
        (v, t)
        for v in spec.variants
        for t in _study(out, v.name).trials
        if t.state == TrialState.RUNNING
    ]
    interrupted = point_trials(spec, variant, variant.decode(running.params))[0].name
    before = _models(out)
    assert len(before) == 3  # the interrupted point's trial finished its training

    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 0
    stdout = capsys.readouterr().out
    for variant in ("dqn", "a2c"):
        trials = _study(out, variant).trials
        assert len(trials) == 2 and all(t.state.is_finished() for t in trials)
        for t in trials:
            if t.state == TrialState.COMPLETE:
                assert sorted(t.intermediate_values) == [0, 1]  # two checkpoints, one seed
                assert t.value is not None
    after = _models(out)
    assert len(after) == 4
    for folder in out.glob("a2c__p*__seed0"):
        config = yaml.safe_load((folder / "config.yaml").read_text())["config"]
        assert config["policy_kwargs"] in ({"net_arch": [16]}, {"net_arch": [8]})
    assert {k: after[k] for k in before} == before  # nothing finished was trained again
    # the interrupted point's trial is read back, not trained again
    assert f"[skipped] {interrupted}:" in stdout or f"[pruned ] {interrupted} " in stdout
    assert stdout.count("[skipped]") + stdout.count("[pruned ]") >= 1
    md = (out / "summary.md").read_text()
    assert "Tuning budget (points per variant, each over every seed): dqn 2, a2c 2." in md
    assert "Optuna (TPE sampler, seed 3; median pruner after 1 points" in md

    # a larger budget continues the same study
    assert (
        main(["sweep", str(file), "--out", str(out), "--max-parallel", "1", "--n-trials", "3"]) == 0
    )
    assert [len(_study(out, v).trials) for v in ("dqn", "a2c")] == [3, 3]
    assert len(_models(out)) == 6  # one new point per variant (a pruned run saves its model)
    assert {k: v for k, v in _models(out).items() if k in before} == before


def test_pruner_stops_a_point_below_the_median(tmp_path: Path) -> None:
    spec_data = copy.deepcopy(SEARCH)
    spec_data["seeds"] = [0, 1]
    spec = parse_sweep(spec_data)
    variant = spec.variant("dqn")
    trials = point_trials(spec, variant, {"learning_rate": 1e-3})
    dist = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    best = optuna.trial.create_trial(
        params={"learning_rate": 2e-3},
        distributions={"learning_rate": dist},
        value=1e6,
        intermediate_values={0: 1e6, 1: 1e6, 2: 1e6, 3: 1e6},
    )
    results = run_point(trials, str(tmp_path), PruneSnapshot(1, (best,)))
    assert [r.status for r in results] == ["pruned"]  # the second seed never ran
    assert list(results[0].intermediate) == [0]  # pruned at the first checkpoint
    assert not (tmp_path / trials[1].name).exists()
    # read back as pruned on a rerun, not trained again
    again = run_point(trials, str(tmp_path), PruneSnapshot(1, (best,)))
    assert [r.status for r in again] == ["pruned"]
    assert (tmp_path / trials[0].name / RESULT_FILE).is_file()
    # without a better finished point nothing is pruned (and both seeds run)
    fresh = tmp_path / "fresh"
    results = run_point(trials, str(fresh), PruneSnapshot(1, ()))
    assert [r.status for r in results] == ["done", "done"]
    assert [sorted(r.intermediate) for r in results] == [[0, 1], [0, 1]]


def test_study_of_another_sweep_file_is_refused(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / STUDY_FILE}")
    spec = parse_sweep(copy.deepcopy(SEARCH))
    _open_study(spec, spec.variants[0], storage, 0)
    _open_study(spec, spec.variants[0], storage, 0)  # the same file: reopened
    changed = copy.deepcopy(SEARCH)
    changed["evaluation"]["tune_episodes"] = 2
    other = parse_sweep(changed)
    with pytest.raises(
        ValueError, match=r"was made by a different sweep file \(changed: evaluation\)"
    ):
        _open_study(other, other.variants[0], storage, 0)
    assert study_name(spec, "dqn") == "tiny-search/dqn"


def test_search_refuses_a_grid_sweep(tmp_path: Path) -> None:
    data = copy.deepcopy(SEARCH)
    data["search"] = {"method": "grid"}
    for v in data["variants"].values():
        del v["space"]
    runner = open_backend("local", 1)
    try:
        with pytest.raises(ValueError, match=r"needs a sweep with search\.method: optuna"):
            search_module.run_search(parse_sweep(data), tmp_path, runner)
    finally:
        runner.close()


@pytest.mark.parametrize("n_trials", [0, -1, 1.5, True])
def test_a_bad_n_trials_is_refused_before_a_backend_starts(
    tmp_path: Path, monkeypatch, n_trials: Any
) -> None:
    from robust_rl.sweep import runner as runner_module

    def no_backend(*args: Any) -> None:
        raise AssertionError("a backend was opened")

    monkeypatch.setattr(runner_module, "open_backend", no_backend)
    with pytest.raises(ValueError, match=r"n_trials must be a positive integer"):
        runner_module.run_sweep(parse_sweep(copy.deepcopy(SEARCH)), tmp_path, n_trials=n_trials)
    assert not (tmp_path / STUDY_FILE).exists()


def test_failing_points_are_isolated_and_retried(tmp_path: Path, capsys) -> None:
    data = copy.deepcopy(SEARCH)
    data["search"]["pruner"] = "none"
    # every DQN point fails when its model is built (SB3's replay buffer refuses the pair of
    # settings; a value refused on its own would stop the sweep at load); A2C's points are fine
    data["variants"]["dqn"]["params"]["optimize_memory_usage"] = True
    data["variants"]["dqn"]["space"] = {"learning_rate": {"low": 5e-4, "high": 1e-3}}
    file = tmp_path / "fail.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 1
    stdout = capsys.readouterr().out
    assert stdout.count("[failed ] dqn__p") == 2
    assert "ReplayBuffer does not support optimize_memory_usage" in stdout
    assert stdout.count("[done   ] a2c__p") == 2
    assert [t.state for t in _study(out, "a2c").trials] == [TrialState.COMPLETE] * 2
    failed = _study(out, "dqn").trials
    assert [t.state for t in failed] == [TrialState.FAIL] * 2
    assert "Failed trials:" in (out / "summary.md").read_text()
    a2c_models = _models(out)
    # again: the failed points are tried with the same parameters, A2C's are not rerun
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 1
    retried = _study(out, "dqn").trials
    assert [t.state for t in retried] == [TrialState.FAIL] * 4
    assert [t.params for t in retried[2:]] == [t.params for t in failed]
    assert len(_study(out, "a2c").trials) == 2 and _models(out) == a2c_models


def test_a_repeated_point_is_not_run_twice_and_costs_no_budget(tmp_path: Path) -> None:
    """A space of 2 choices with a budget of 4: both points run once each, the sampler's
    repeats are told their known outcome, and the summary counts each point's seed once."""
    data = copy.deepcopy(SEARCH)
    data["search"].update(n_trials=4, pruner="none")
    data["variants"] = {
        "dqn": {
            "algo": "dqn",
            "params": dict(TINY_DQN),
            "space": {"learning_rate": {"choices": [1e-3, 3e-3]}},
        }
    }
    file = tmp_path / "repeat.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 0
    assert len(_models(out)) == 2
    trials = _study(out, "dqn").trials
    rates = [t.params["learning_rate"] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(set(rates)) == [1e-3, 3e-3]
    by_rate = {t.params["learning_rate"]: t.value for t in trials if t.value is not None}
    for t in trials:  # a repeat carries the value of the point it repeats
        if t.state == TrialState.COMPLETE:
            assert t.value == by_rate[t.params["learning_rate"]]
    with open(out / "summary.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    assert sorted(g["param:learning_rate"] for g in groups) == ["0.001", "0.003"]
    assert [g["n_seeds"] for g in groups] == ["1", "1"]  # each point's one seed, counted once
    # a rerun has nothing left to do
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 0
    assert len(_models(out)) == 2
    assert len(_study(out, "dqn").trials) == len(trials)


def test_space_size_counts_choices_only() -> None:
    spec = parse_sweep(copy.deepcopy(SEARCH))
    variants = {v.name: v for v in spec.variants}
    assert search_module._space_size(variants["dqn"]) is None  # a continuous range
    data = copy.deepcopy(SEARCH)
    data["variants"]["a2c"]["space"].pop("gamma")
    only_choices = {v.name: v for v in parse_sweep(data).variants}["a2c"]
    assert search_module._space_size(only_choices) == 2
