"""Sweeps: expansion of sweep files, the local and Ray backends, resume, failures, CLI errors.

Every trial here trains for 300 steps with a 16-unit network and evaluates one episode per MDP, so
a trial takes about a second; the Ray test starts a local Ray instance (about 10 s).
"""

from __future__ import annotations

import copy
import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from robust_rl.cli import main
from robust_rl.sweep import (
    RESULT_FILE,
    Trial,
    TrialResult,
    expand_sweep,
    load_sweep,
    run_sweep,
    run_trial,
    summarize,
)

TINY: dict[str, Any] = {
    "n_timesteps": 300,
    "learning_starts": 100,
    "train_freq": 16,
    "gradient_steps": 2,
    "batch_size": 16,
    "buffer_size": 1000,
    "policy_kwargs": {"net_arch": [16]},
}
RADIUS = [0.03, 0.03, 0.003, 0.03]


def tiny_spec() -> dict[str, Any]:
    """Two trials: DQN and RobustDQN, seed 0."""
    return {
        "name": "tiny",
        "env": "robust_rl/CartPole-v1",
        "seeds": [0],
        "evaluation": {"episodes": 1, "grid_episodes": 1},
        "variants": {
            "dqn": {"algo": "dqn", "params": dict(TINY)},
            "robust": {
                "algo": "robust-dqn",
                "params": {**TINY, "radius": RADIUS, "eta": 0.1, "max_level": 2},
            },
        },
    }


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def recorded(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / name / RESULT_FILE).read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny sweep, run once with the local backend (two worker processes): (file, out)."""
    root = tmp_path_factory.mktemp("sweep")
    file = write_spec(root / "tiny.yaml", tiny_spec())
    out = root / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "2"]) == 0
    return file, out


@pytest.mark.parametrize("module", ["robust_rl.sweep", "robust_rl._ray_backend"])
def test_every_public_name_imports(module: str) -> None:
    mod = importlib.import_module(module)  # no Ray needed to import the backend
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


# --------------------------------------------------------------------------------------------
# expansion


def test_expand_list_semantics() -> None:
    radii = [[0.01, 0.01, 0.001, 0.01], [0.1, 0.1, 0.01, 0.1]]
    spec = {
        "seeds": [0, 1],
        "variants": {
            "robust": {
                "algo": "robust-dqn",
                "params": {"radius": radii, "eta": [0.1, 1.0], "policy_kwargs": {"net_arch": [16]}},
            },
            "flat": {"algo": "robust-dqn", "params": {"radius": RADIUS}},
            "dqn": {
                "algo": "dqn",
                "params": {"policy_kwargs": [{"net_arch": [16]}, {"net_arch": [32, 32]}]},
            },
        },
    }
    trials = expand_sweep(spec)
    assert len(trials) == 2 * 2 * 2 + 1 * 2 + 2 * 2
    names = [t.name for t in trials]
    assert names[:4] == [
        "robust__radius=0.01-0.01-0.001-0.01__eta=0.1__seed0",
        "robust__radius=0.01-0.01-0.001-0.01__eta=0.1__seed1",
        "robust__radius=0.01-0.01-0.001-0.01__eta=1__seed0",
        "robust__radius=0.01-0.01-0.001-0.01__eta=1__seed1",
    ]
    first = trials[0]
    assert first.group == "robust__radius=0.01-0.01-0.001-0.01__eta=0.1"
    assert first.params == {"radius": radii[0], "eta": 0.1}
    assert first.config["radius"] == radii[0]
    assert first.config["policy_kwargs"] == {"net_arch": [16]}  # a mapping is one value
    assert first.config["n_timesteps"] == 50_000  # defaults filled in by validate_config
    # a flat list of numbers is one radius, not an axis
    flat = [t for t in trials if t.variant == "flat"]
    assert [t.name for t in flat] == ["flat__seed0", "flat__seed1"]
    assert flat[0].params == {} and flat[0].config["radius"] == RADIUS
    # a list of mappings is an axis; the folder name stays free of braces and spaces
    dqn = [t for t in trials if t.variant == "dqn"]
    assert [t.name for t in dqn] == [
        "dqn__policy_kwargs=net_arch-16__seed0",
        "dqn__policy_kwargs=net_arch-16__seed1",
        "dqn__policy_kwargs=net_arch-32-32__seed0",
        "dqn__policy_kwargs=net_arch-32-32__seed1",
    ]
    assert dqn[2].config["policy_kwargs"] == {"net_arch": [32, 32]}


def test_expand_random_search_is_seeded() -> None:
    spec = {
        "search": "random",
        "n_trials": 2,
        "search_seed": 3,
        "variants": {
            "dqn": {"algo": "dqn", "params": {"learning_rate": [1e-3, 1e-4], "gamma": [0.9, 0.99]}}
        },
    }
    first = [t.name for t in expand_sweep(spec)]
    assert first == [t.name for t in expand_sweep(spec)]
    grid = {"variants": spec["variants"]}
    full = [t.name for t in expand_sweep(grid)]
    assert len(first) == 2 and len(set(first)) == 2 and set(first) <= set(full)
    assert len(full) == 4


def test_load_sweep_config_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    write_spec(tmp_path / "configs" / "dqn.yaml", {**TINY, "gamma": 0.9})
    spec = {"name": "rel", "variants": {"dqn": {"algo": "dqn", "config": "configs/dqn.yaml"}}}
    name, trials = load_sweep(write_spec(tmp_path / "s.yaml", spec))
    assert name == "rel"
    assert [t.name for t in trials] == ["dqn__seed0"]
    assert trials[0].config["gamma"] == 0.9 and trials[0].config["n_timesteps"] == 300


# --------------------------------------------------------------------------------------------
# local backend


def test_local_sweep_writes_trials_and_summary(finished: tuple[Path, Path]) -> None:
    _, out = finished
    for name in ("dqn__seed0", "robust__seed0"):
        folder = out / name
        for f in ("model.zip", "config.yaml", "train_info.json", RESULT_FILE):
            assert (folder / f).is_file(), f
        for f in ("suite.csv", "suite.md", "grid.csv", "grid.md", "grid.png"):
            assert (folder / "eval" / f).is_file(), f
        assert list((folder / "tb").glob("*/events.out.tfevents.*")), "no TensorBoard run"
        record = recorded(out, name)
        assert set(record) == {"trial", "suite", "grid", "wall_time_s"}
        assert record["trial"]["name"] == name and record["trial"]["seed"] == 0
        assert list(record["suite"]) == ["original", "heavy pole", "short pole", "strong gravity"]
        assert len(record["grid"]) == 18  # DEFAULT_GRID: 3 parameters x 6 factors
        assert all(1 <= v <= 500 for v in [*record["suite"].values(), *record["grid"].values()])
        # SB3 finishes the last rollout of train_freq=16 steps: 300 -> 304
        assert json.loads((folder / "train_info.json").read_text())["num_timesteps"] == 304
    for f in ("trials.csv", "summary.csv", "summary.md", "summary.png"):
        assert (out / f).is_file(), f
    md = (out / "summary.md").read_text()
    assert md.startswith("# tiny\n")
    assert "| 1 | " in md and "| 2 | " in md and "Failed trials" not in md
    assert (out / "trials.csv").read_text().count("\n") == 3  # header + 2 trials


def test_rerun_skips_finished_trials(finished: tuple[Path, Path], capsys) -> None:
    file, out = finished
    model = out / "dqn__seed0" / "model.zip"
    before = model.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 0
    stdout = capsys.readouterr().out
    assert "[skipped] dqn__seed0" in stdout and "[skipped] robust__seed0" in stdout
    assert model.stat().st_mtime_ns == before
    _, trials = load_sweep(file)
    seen: list[TrialResult] = []
    results = run_sweep(trials, out, max_parallel=1, on_result=seen.append)
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert len(seen) == 2
    for r in results:
        assert r.suite == recorded(out, r.trial.name)["suite"]
        assert r.grid == recorded(out, r.trial.name)["grid"]
    assert model.stat().st_mtime_ns == before


def test_failed_trial_is_reported_and_the_other_completes(tmp_path: Path, capsys) -> None:
    spec = tiny_spec()
    spec["evaluation"]["grid_episodes"] = 0
    spec["variants"] = {"dqn": {"algo": "dqn", "params": {**TINY, "learning_rate": [1e-3, -1.0]}}}
    file = write_spec(tmp_path / "fail.yaml", spec)
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 1
    stdout = capsys.readouterr().out
    good, bad = "dqn__learning_rate=0.001__seed0", "dqn__learning_rate=-1__seed0"
    assert f"[failed ] {bad}: ValueError: Invalid learning rate: -1.0" in stdout
    assert "1 of 2 trials failed" in stdout
    assert (out / good / RESULT_FILE).is_file() and (out / good / "model.zip").is_file()
    assert not (out / bad / RESULT_FILE).exists()
    assert recorded(out, good)["grid"] == {}
    assert not (out / good / "eval" / "grid.csv").exists()
    md = (out / "summary.md").read_text()
    assert f"- {bad}: ValueError: Invalid learning rate: -1.0" in md
    # run again: the finished trial is skipped, the failed one is tried again
    _, trials = load_sweep(file)
    results = run_sweep(trials, out, max_parallel=1)
    assert [r.status for r in results] == ["skipped", "failed"]
    assert results[1].error is not None and "Invalid learning rate" in results[1].error
    rows, summary = summarize(results)
    assert [row["status"] for row in rows] == ["skipped", "failed"]
    assert [agg["group"] for agg in summary] == ["dqn__learning_rate=0.001"]


def test_changed_trial_is_not_skipped_silently(
    finished: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    _, src = finished
    out = tmp_path / "out"
    shutil.copytree(src, out)
    spec = tiny_spec()
    spec["variants"]["dqn"]["params"]["n_timesteps"] = 400
    file = write_spec(tmp_path / "changed.yaml", spec)
    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "dqn__seed0/result.json was written by a different trial" in err
    assert "changed: config.n_timesteps" in err
    _, trials = load_sweep(file)
    res = run_trial(trials[0], out)
    assert res.status == "failed" and "config.n_timesteps" in (res.error or "")
    assert json.loads((out / "dqn__seed0" / "train_info.json").read_text())["num_timesteps"] == 304


# --------------------------------------------------------------------------------------------
# errors


def _mutate(spec: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("variants", "dqn", "algo"), "ppo", "algo must be one of ['dqn', 'robust-dqn']"),
        (
            ("variants", "dqn", "params", "lernin_rate"),
            0.1,
            "unknown hyperparameter(s) ['lernin_rate']",
        ),
        (("variants", "robust", "params", "eta"), [], "the grid for 'eta' is empty"),
        (("seeds",), "zero", "seeds must be a non-empty list of integers, got 'zero'"),
        (("seeds",), [], "seeds must be a non-empty list of non-negative integers"),
        (("seed",), [0], "unknown key(s) ['seed']"),
        (("evaluation", "episodes"), 0, "evaluation.episodes must be >= 1"),
        (("search",), "bayes", "search must be 'grid' or 'random'"),
        (("n_trials",), 3, "n_trials and search_seed apply to search: random only"),
        (("variants", "dqn", "env"), "NoSuchEnv-v0", "unknown env id 'NoSuchEnv-v0'"),
        (("variants", "dqn", "config"), "missing.yaml", "config file missing.yaml does not exist"),
        (("variants", "a/b"), {"algo": "dqn"}, "variant name 'a/b' must start with"),
        (("variants",), {}, "variants must be a non-empty mapping"),
    ],
)
def test_invalid_sweep_file_exits_2(
    tmp_path: Path, capsys, path: tuple[Any, ...], value: Any, message: str
) -> None:
    file = write_spec(tmp_path / "bad.yaml", _mutate(tiny_spec(), path, value))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("robust-rl sweep: error: ")
    assert captured.err.count("\n") == 1, captured.err
    assert message in captured.err
    assert not out.exists()  # nothing ran


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ("- a\n- b\n", "must hold a mapping"),
        pytest.param(
            "variants: {dqn: [\n",
            "is not valid YAML",
        ),
    ],
)
def test_unreadable_sweep_file_exits_2(tmp_path: Path, capsys, text: str | None, message: str):
    file = tmp_path / "sweep.yaml"
    if text is not None:
        file.write_text(text)
    assert main(["sweep", str(file), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_run_sweep_argument_errors(tmp_path: Path) -> None:
    trials = expand_sweep(tiny_spec())
    with pytest.raises(ValueError, match="backend must be one of"):
        run_sweep(trials, tmp_path, backend="dask")
    with pytest.raises(ValueError, match="max_parallel must be a positive integer, got 0"):
        run_sweep(trials, tmp_path, max_parallel=0)
    with pytest.raises(ValueError, match="address applies to backend='ray' only"):
        run_sweep(trials, tmp_path, address="auto")
    with pytest.raises(ValueError, match="trial names must be unique"):
        run_sweep([trials[0], trials[0]], tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Ray backend


def test_ray_backend_without_ray_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    trials = expand_sweep(tiny_spec())
    with pytest.raises(
        ValueError, match=r"--backend ray needs Ray: pip install 'robust-rl\[ray\]'"
    ):
        run_sweep(trials, tmp_path / "a", backend="ray")
    file = write_spec(tmp_path / "tiny.yaml", tiny_spec())
    assert main(["sweep", str(file), "--out", str(tmp_path / "b"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert err == "robust-rl sweep: error: --backend ray needs Ray: pip install 'robust-rl[ray]'\n"


def test_ray_backend_matches_local(finished: tuple[Path, Path], tmp_path: Path, monkeypatch):
    ray = pytest.importorskip("ray")
    file, local_out = finished
    _, trials = load_sweep(file)
    monkeypatch.chdir(tmp_path)  # a relative out is made absolute for the workers
    seen: list[TrialResult] = []
    results = run_sweep(trials, "ray_out", backend="ray", max_parallel=2, on_result=seen.append)
    assert not ray.is_initialized()  # the local Ray started for the sweep is shut down
    assert [r.status for r in results] == ["done", "done"]
    assert sorted(r.trial.name for r in seen) == ["dqn__seed0", "robust__seed0"]
    out = tmp_path / "ray_out"
    for r in results:
        assert isinstance(r.trial, Trial)
        assert (out / r.trial.name / "model.zip").is_file()
        # same seed, one thread: the same returns as the local backend
        assert r.suite == recorded(local_out, r.trial.name)["suite"]
        assert r.grid == recorded(local_out, r.trial.name)["grid"]
        assert recorded(out, r.trial.name)["trial"] == recorded(local_out, r.trial.name)["trial"]
    # finished trials are read by the driver: no Ray instance is started for them
    again = run_sweep(trials, out, backend="ray", max_parallel=2)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert not ray.is_initialized()
