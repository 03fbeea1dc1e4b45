"""Sweeps: the sweep file and its tuning protocol, the local backend, resume, failures, CSV.

Trials train for a few hundred steps with 16-unit networks and evaluate one episode per MDP.
The Ray tests (a ``ray start --head`` cluster on loopback) are in ``test_sweep_ray.py``; the
Optuna search in ``test_sweep_search.py``.
"""

from __future__ import annotations

import ast
import copy
import csv
import dataclasses
import importlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from robust_rl.cli import main
from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep import (
    RESULT_FILE,
    TrialResult,
    expand_sweep,
    load_sweep,
    parse_sweep,
    run_sweep,
    run_trial,
    summarize,
    write_summary,
)
from robust_rl.sweep.backends.local import LocalBackend
from robust_rl.sweep.summary import rows_to_csv

#: a tiny continuous-control sweep: PPO and A2C on Pendulum, one seed, a 2-point grid on m
PENDULUM: dict[str, Any] = {
    "name": "tiny-pendulum",
    "env": "robust_rl/Pendulum-v1",
    "seeds": [0],
    "evaluation": {
        "suite": "pendulum",
        "tune_episodes": 1,
        "episodes": 1,
        "grid_points": 2,
        "grid_axes": ["m"],
        "grid_episodes": 1,
        "attacks": [{"attack": "random", "epsilons": [0.0, 0.1]}],
    },
    "variants": {
        "ppo": {
            "algo": "ppo",
            "params": {
                "n_timesteps": 128,
                "n_steps": 64,
                "batch_size": 32,
                "n_epochs": 1,
                "policy_kwargs": {"net_arch": [16]},
            },
        },
        "a2c": {
            "algo": "a2c",
            "params": {"n_timesteps": 128, "n_steps": 8, "policy_kwargs": {"net_arch": [16]}},
        },
    },
}

#: DQN on CartPole for 300 steps (discrete actions)
TINY_DQN: dict[str, Any] = {
    "n_timesteps": 300,
    "learning_starts": 100,
    "train_freq": 16,
    "gradient_steps": 2,
    "batch_size": 16,
    "buffer_size": 1000,
    "policy_kwargs": {"net_arch": [16]},
}


def cartpole_spec(**variants: Any) -> dict[str, Any]:
    return {
        "name": "tiny-cartpole",
        "env": "robust_rl/CartPole-v1",
        "seeds": [0],
        "evaluation": {"suite": "cartpole", "tune_episodes": 1, "episodes": 1},
        "variants": variants or {"dqn": {"algo": "dqn", "params": dict(TINY_DQN)}},
    }


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def recorded(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / name / RESULT_FILE).read_text())


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny Pendulum sweep, run once on the local backend (in this process)."""
    root = tmp_path_factory.mktemp("sweep")
    file = write_spec(root / "tiny.yaml", PENDULUM)
    out = root / "out"
    spec = load_sweep(file)
    results = run_sweep(spec, out, max_parallel=1)
    assert [r.status for r in results] == ["done", "done"], [r.error for r in results]
    write_summary(results, out, spec=spec, title=spec.name)
    return file, out


SWEEP_MODULES = [
    "robust_rl.sweep",
    "robust_rl.sweep.spec",
    "robust_rl.sweep.parsing",
    "robust_rl.sweep.trials",
    "robust_rl.sweep.runner",
    "robust_rl.sweep.search",
    "robust_rl.sweep.summary",
    "robust_rl.sweep.backends",
    "robust_rl.sweep.backends.local",
    "robust_rl.sweep.backends.ray",
]


def test_sweep_modules_import_without_ray() -> None:
    """Importing any sweep module (each imports its parent package first) loads no ray: one
    fresh interpreter imports them in turn and names the first that does."""
    # (every public module's __all__ is checked once for the library in test_io_cli.py)
    code = (
        "import importlib, sys\n"
        f"for m in {SWEEP_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "    if 'ray' in sys.modules:\n"
        "        print(m)\n"
        "        break\n"
        "else:\n"
        "    print('none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none", f"importing {out.stdout.strip()} loads ray"


def test_sweep_code_names_no_task() -> None:
    """Identifiers and string constants (docstrings apart) name no task: tasks are data."""
    root = Path(importlib.import_module("robust_rl.sweep").__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        words = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ]
        words += [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
        for word in words:
            for task in ("cartpole", "pendulum", "masspole", "acrobot", "hopper"):
                assert task not in word.lower(), f"{path} names {task}: {word!r}"


# --------------------------------------------------------------------------------------------
# the sweep file


def test_grid_expansion_and_names() -> None:
    radii = [[0.01, 0.01, 0.001, 0.01], [0.1, 0.1, 0.01, 0.1]]
    spec = cartpole_spec(
        robust={"algo": "robust-dqn", "params": {"radius": radii, "eta": [0.1, 1.0]}},
        dqn={
            "algo": "dqn",
            "params": {
                "learning_rate": [1e-3, 1e-4],
                "policy_kwargs": [{"net_arch": [16]}, {"net_arch": [32, 32]}],
            },
        },
    )
    spec["seeds"] = [0, 1]
    sweep = parse_sweep(spec)
    assert sweep.budget() == {"robust": 4, "dqn": 4}
    trials = expand_sweep(sweep)
    assert len(trials) == 16
    first = trials[0]
    assert first.name == "robust__radius=0.01-0.01-0.001-0.01__eta=0.1__seed0"
    assert first.group == "robust__radius=0.01-0.01-0.001-0.01__eta=0.1"
    assert first.params == {"radius": radii[0], "eta": 0.1}
    assert first.config["n_timesteps"] == 50_000  # filled in by validate_config
    assert first.evaluation.suite == "cartpole" and first.evaluation.tune_split == "validation"
    dqn = [t.name for t in trials if t.variant == "dqn"]
    assert "dqn__learning_rate=0.0001__policy_kwargs=net_arch-32-32__seed1" in dqn
    # a flat list is one radius, not an axis
    flat = parse_sweep(cartpole_spec(r={"algo": "robust-dqn", "params": {"radius": radii[0]}}))
    assert [t.name for t in expand_sweep(flat)] == ["r__seed0"]


def test_explicit_grid_axes_sweep_scalar_radii() -> None:
    spec = cartpole_spec(
        r={"algo": "robust-dqn", "params": {"eta": 0.5}, "grid": {"radius": [0.01, 0.1]}}
    )
    trials = expand_sweep(parse_sweep(spec))
    assert [t.params for t in trials] == [{"radius": 0.01}, {"radius": 0.1}]
    assert [t.config["radius"] for t in trials] == [0.01, 0.1]
    assert trials[0].name == "r__radius=0.01__seed0"
    # a one-entry axis is a fixed value; a per-coordinate radius is one entry of the axis
    one = parse_sweep(cartpole_spec(r={"algo": "robust-dqn", "grid": {"radius": [[0.1] * 4]}}))
    assert [t.config["radius"] for t in expand_sweep(one)] == [[0.1] * 4]


@pytest.mark.parametrize(
    ("variant", "search", "message"),
    [
        ({"grid": {"radius": 0.1}}, None, "grid.radius must be a non-empty list"),
        ({"grid": {"radius": []}}, None, "grid.radius must be a non-empty list"),
        ({"grid": [0.1]}, None, "grid must be a mapping"),
        (
            {"params": {"radius": 0.1}, "grid": {"radius": [0.1, 0.2]}},
            None,
            "'radius' is in both params and grid",
        ),
        (
            {"grid": {"radius": [0.1, 0.2]}, "space": {"eta": {"low": 0.1, "high": 1.0}}},
            {"method": "optuna", "n_trials": 2},
            "declares grid axes but search.method is optuna",
        ),
    ],
)
def test_explicit_grid_axes_errors(
    variant: dict[str, Any], search: dict[str, Any] | None, message: str
) -> None:
    spec = cartpole_spec(r={"algo": "robust-dqn", **variant})
    if search is not None:
        spec["search"] = search
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        parse_sweep(spec)


def test_paths_relative_to_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    write_spec(tmp_path / "configs" / "dqn.yaml", {**TINY_DQN, "gamma": 0.9})
    suite = {
        "name": "my-suite",
        "nominal_id": "robust_rl/CartPole-v1",
        "test": {"nominal": {}, "heavier pole": {"masspole": 1.0}},
    }
    write_spec(tmp_path / "configs" / "suite.yaml", suite)
    spec = cartpole_spec(dqn={"algo": "dqn", "config": "configs/dqn.yaml"})
    spec["evaluation"]["suite"] = "configs/suite.yaml"
    del spec["name"]
    sweep = load_sweep(write_spec(tmp_path / "rel.yaml", spec))
    assert sweep.name == "rel"
    trial = expand_sweep(sweep)[0]
    assert trial.config["gamma"] == 0.9 and trial.config["n_timesteps"] == 300
    # absolute, so that workers elsewhere (Ray) find it
    assert trial.evaluation.suite == str((tmp_path / "configs" / "suite.yaml").resolve())


_DELETE = object()


def _mutate(spec: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


_TUNE_ON_TEST = (
    "evaluation.tune_split is 'test' and evaluation.report_split is 'test': a sweep must not "
    "tune on the MDPs it reports"
)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # the tuning protocol
        (("evaluation", "tune_split"), "test", _TUNE_ON_TEST),
        (("evaluation", "report_split"), "validation", "evaluation.tune_split is 'validation' and"),
        (("evaluation", "tune_split"), "train", "evaluation.tune_split must be one of"),
        (
            ("evaluation", "tune_seed"),
            10_000,
            "the tuning episode seeds 10000..10000 (evaluation.tune_seed, tune_episodes, "
            "search.checkpoint_episodes) overlap the reported episode seeds 10000..10000",
        ),
        (("evaluation",), _DELETE, "the evaluation key is required"),
        (("evaluation", "suite"), _DELETE, "evaluation.suite is required"),
        (
            ("variants", "dqn", "params", "learning_rate"),
            [1e-3, 1e-4],
            "unequal tuning budgets, points per variant {'dqn': 2, 'a2c': 1}",
        ),
        (
            ("search",),
            {"method": "optuna", "n_trials": 2, "checkpoints": 0, "pruner": "none"},
            "declare no space while search.method is optuna",
        ),
        (("search",), {"method": "optuna"}, "search.n_trials (Optuna points per variant"),
        (("search",), {"method": "random"}, "search.method must be 'grid' or 'optuna'"),
        (("search",), {"n_trials": 3}, "search keys ['n_trials'] apply to method: optuna"),
        (("search",), {"checkpoints": 3}, "search keys ['checkpoints'] apply to method: optuna"),
        (("search",), {"select": "first"}, "search.select must be 'last' or 'best', got 'first'"),
        (
            ("search",),
            {"select": "best", "checkpoints": 0},
            "search.select: best needs search.checkpoints >= 1",
        ),
        (
            ("variants", "dqn", "space"),
            {"learning_rate": {"low": 1e-3, "high": 1e-2}},
            "declares a space but search.method is grid",
        ),
        # file structure
        (("variants", "dqn", "algo"), "ppo2", "algo must be one of"),
        (
            ("variants", "dqn", "params", "lernin_rate"),
            0.1,
            "unknown hyperparameter(s) ['lernin_rate']",
        ),
        (("variants", "dqn", "params", "gamma"), [], "the grid for 'gamma' is empty"),
        (("seeds",), "zero", "seeds must be a non-empty list of integers, got 'zero'"),
        (("seeds",), [0, 0], "seeds must be distinct"),
        (("seed",), [0], "unknown key(s) ['seed'] in the sweep file"),
        (("evaluation", "episodes"), 0, "evaluation.episodes must be an integer >= 1, got 0"),
        (("evaluation", "grid_points"), 1, "evaluation.grid_points must be 0 (no grid) or >= 2"),
        (("evaluation", "grd_points"), 2, "unknown key(s) ['grd_points'] in evaluation"),
        (("evaluation", "suite"), "no-such-suite", "unknown suite 'no-such-suite'"),
        (("evaluation", "suite"), "nosuite.yaml", "nosuite.yaml"),
        (
            ("evaluation", "grid_axes"),
            ["mass"],
            "evaluation.grid_axes ['mass'] are not parameters of suite 'cartpole'",
        ),
        (
            ("evaluation", "attacks"),
            [{"attak": "pgd"}],
            "unknown key(s) ['attak'] in evaluation.attacks[0]",
        ),
        (("evaluation", "attacks"), [{"epsilons": [0.1]}], "attacks[0].attack must name the"),
        (("variants", "dqn", "env"), "NoSuchEnv-v0", "unknown env id 'NoSuchEnv-v0'"),
        (("variants", "dqn", "config"), "missing.yaml", "config file missing.yaml does not exist"),
        (("variants", "a/b"), {"algo": "dqn"}, "variant name 'a/b' must start with"),
        (("variants",), {}, "variants must be a non-empty mapping"),
    ],
)
def test_invalid_sweep_file_exits_2(
    tmp_path: Path, capsys, path: tuple[Any, ...], value: Any, message: str
) -> None:
    base = cartpole_spec(
        dqn={"algo": "dqn", "params": dict(TINY_DQN)}, a2c={"algo": "a2c", "params": {}}
    )
    file = write_spec(tmp_path / "bad.yaml", _mutate(base, path, value))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robust-rl sweep: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()  # nothing ran


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"low": 1e-2, "high": 1e-3}, "needs low < high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"choices": []}, "choices must be a non-empty list"),
        ({"low": 1}, "needs low and high (or choices)"),
        ({"low": 1, "high": 2, "type": "str"}, "type must be 'int' or 'float'"),
        ({"lo": 1, "high": 2}, "unknown key(s) ['lo'] in variants.dqn.space.learning_rate"),
    ],
)
def test_invalid_search_space(entry: dict[str, Any], message: str) -> None:
    spec = cartpole_spec(
        dqn={"algo": "dqn", "space": {"learning_rate": entry}},
        a2c={"algo": "a2c", "space": {"gamma": {"low": 0.9, "high": 0.99}}},
    )
    spec["search"] = {"method": "optuna", "n_trials": 2}
    with pytest.raises(ValueError, match="sweep: ") as info:
        parse_sweep(spec)
    assert message in str(info.value)


def test_search_space_distributions() -> None:
    pytest.importorskip(
        "optuna", reason="optuna is not installed (pip install 'robust-rl[optuna]')"
    )
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    spec = cartpole_spec(
        dqn={
            "algo": "dqn",
            "space": {
                "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                "batch_size": {"choices": [16, 32]},
                "target_update_interval": {"low": 100, "high": 1000, "step": 100},
            },
        }
    )
    spec["search"] = {"method": "optuna", "n_trials": 3, "checkpoints": 2}
    sweep = parse_sweep(spec)
    assert sweep.budget() == {"dqn": 3}
    dists = {p.name: p.distribution() for p in sweep.variants[0].space}
    assert dists["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert dists["batch_size"] == CategoricalDistribution([16, 32])
    assert dists["target_update_interval"] == IntDistribution(100, 1000, step=100)
    with pytest.raises(ValueError, match="an Optuna sweep's points are chosen as it runs"):
        expand_sweep(sweep)


# --------------------------------------------------------------------------------------------
# local backend: a tiny Pendulum sweep


def test_local_pendulum_sweep(pendulum: tuple[Path, Path]) -> None:
    from robust_rl.evaluation import EvaluationResults, get_suite

    _, out = pendulum
    suite = get_suite("pendulum")
    for name in ("ppo__seed0", "a2c__seed0"):
        folder = out / name
        for f in ("model.zip", "config.yaml", "train_info.json", RESULT_FILE):
            assert (folder / f).is_file(), f
        assert not (folder / "eval").exists()  # one compact record per trial, no report files
        record = recorded(out, name)
        assert record["status"] == "done" and record["trial"]["name"] == name
        assert {"same", "columns"} <= set(record["evaluation"])
        results = EvaluationResults.from_dict(record["evaluation"])
        summary = results.summary(name)
        assert list(summary.test) == [m.name for m in suite.test]
        assert list(summary.validation) == [m.name for m in suite.validation]
        assert summary.grid_points == 2  # grid_axes [m], 2 points
        assert list(summary.attacks) == ["random"] and list(summary.attacks["random"]) == [0, 0.1]
        # Pendulum rewards are in [-16.3, 0] per step, 200 steps
        assert all(-3300 <= v <= 0 for v in [*summary.test.values(), *summary.validation.values()])
        seeds = {r.seed for r in results.rows if r.split == "validation"}
        assert seeds == {20_000}  # tuning episodes: tune_seed; reported ones: seed
        assert {r.seed for r in results.rows if r.split != "validation"} == {10_000}
    md = (out / "summary.md").read_text()
    assert md.startswith("# tiny-pendulum\n")
    assert "Suite `pendulum`. Ranked on the validation split" in md
    assert "Tuning budget (points per variant, each over every seed): ppo 1, a2c 1." in md
    assert "| 1 | " in md and "| 2 | " in md and "Failed trials" not in md
    rows = list(csv.DictReader(io.StringIO((out / "trials.csv").read_text())))
    assert [r["trial"] for r in rows] == ["ppo__seed0", "a2c__seed0"]
    assert "test:weak motor" in rows[0] and "attack:random@0.1" in rows[0]


def test_best_point_of_each_variant_is_a_train_config(pendulum: tuple[Path, Path]) -> None:
    from robust_rl.training import load_config, validate_config

    _, out = pendulum
    for variant, algo in (("ppo", "ppo"), ("a2c", "a2c")):
        path = out / "best" / f"{variant}.yaml"
        text = path.read_text()
        assert f"# Train: robust-rl train --algo {algo} --env robust_rl/Pendulum-v1" in text
        trial = yaml.safe_load((out / f"{variant}__seed0" / "config.yaml").read_text())
        # the file is the trial's whole config, and train accepts it as it is
        assert load_config(path) == trial["config"]
        assert validate_config(algo, load_config(path)) == trial["config"]


def test_rerun_reads_finished_trials_back(pendulum: tuple[Path, Path], capsys) -> None:
    file, out = pendulum
    model = out / "ppo__seed0" / "model.zip"
    before = model.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 0
    captured = capsys.readouterr()
    stdout = captured.out
    assert "[skipped] ppo__seed0" in stdout and "[skipped] a2c__seed0" in stdout
    assert "sweep tiny-pendulum" in captured.err and "2/2" in captured.err  # the progress bar
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1", "--quiet"]) == 0
    assert "2/2" not in capsys.readouterr().err
    results = run_sweep(load_sweep(file), out, max_parallel=1)
    assert [r.status for r in results] == ["skipped", "skipped"]
    for r in results:
        assert r.evaluation.to_dict(compact=True) == recorded(out, r.trial.name)["evaluation"]
    assert model.stat().st_mtime_ns == before


def test_resume_from_what_the_repository_commits(
    pendulum: tuple[Path, Path], tmp_path: Path
) -> None:
    """A clone holds no models, checkpoints or TensorBoard logs (.gitignore): the compact
    records alone let the sweep skip every finished trial and rewrite the same summary."""
    file, out = pendulum
    clone = tmp_path / "clone"
    ignored = (".zip", ".pkl", ".pt")
    for path in out.rglob("*"):
        rel = path.relative_to(out)
        if path.is_file() and path.suffix not in ignored and "tb" not in rel.parts:
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, clone / rel)
    kept = sorted(p.name for p in (clone / "ppo__seed0").iterdir())
    assert kept == ["config.yaml", RESULT_FILE, "train_info.json"]
    spec = load_sweep(file)
    results = run_sweep(spec, clone, max_parallel=1)
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert not (clone / "ppo__seed0" / "model.zip").exists()  # nothing was trained
    write_summary(results, clone, spec=spec, title=spec.name)
    assert (clone / "summary.csv").read_text() == (out / "summary.csv").read_text()
    table = (out / "summary.md").read_text().split("\n\nCommand:")[0].rstrip("\n")
    assert (clone / "summary.md").read_text().rstrip("\n") == table
    # the record keeps each trial's outcome, whichever invocation finished it
    assert (clone / "trials.csv").read_text() == (out / "trials.csv").read_text()


def test_changed_trial_is_not_skipped_silently(
    pendulum: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    _, src = pendulum
    out = tmp_path / "out"
    shutil.copytree(src, out)
    spec = copy.deepcopy(PENDULUM)
    spec["evaluation"]["episodes"] = 2
    file = write_spec(tmp_path / "changed.yaml", spec)
    capsys.readouterr()
    assert main(["sweep", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ppo__seed0/result.json was written by a different trial" in err
    assert "changed: evaluation.episodes" in err


def test_trial_result_crosses_processes(pendulum: tuple[Path, Path]) -> None:
    import pickle

    file, out = pendulum
    res = run_sweep(load_sweep(file), out, max_parallel=1)[0]
    back = pickle.loads(pickle.dumps(res))
    assert isinstance(back, TrialResult) and back.trial == res.trial
    assert back.evaluation.to_dict() == res.evaluation.to_dict()
    assert back.tune_score == res.tune_score is not None


def test_workers_start_with_spawn(pendulum: tuple[Path, Path], tmp_path: Path) -> None:
    file, out = pendulum
    backend = LocalBackend(2)
    try:
        assert backend._pool is not None
        assert backend._pool._mp_context.get_start_method() == "spawn"
        # a trial crosses to a spawned worker and its result comes back
        trial = expand_sweep(load_sweep(file))[1]
        shutil.copytree(out / trial.name, tmp_path / trial.name)
        task = backend.submit(run_trial, trial, str(tmp_path))
        (outcome,) = backend.wait()
        assert outcome.task == task and outcome.error is None
        assert outcome.value.status == "skipped"
        assert (
            outcome.value.evaluation.to_dict(compact=True)
            == recorded(out, trial.name)["evaluation"]
        )
    finally:
        backend.close()
    assert LocalBackend(1)._pool is None  # one at a time: in this process


# --------------------------------------------------------------------------------------------
# failures, resume


def test_bad_grid_value_is_refused_before_any_trial(tmp_path: Path, capsys) -> None:
    params = {**TINY_DQN, "learning_rate": [1e-3, -1.0]}
    file = write_spec(tmp_path / "bad.yaml", cartpole_spec(dqn={"algo": "dqn", "params": params}))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["robust-rl sweep: error: learning_rate must be a finite number > 0, got -1.0"]
    assert not out.exists() or not any(out.iterdir())


def test_failed_trial_is_isolated(tmp_path: Path, capsys) -> None:
    # valid values each, refused together by SB3's replay buffer when the model is built
    params = {**TINY_DQN, "optimize_memory_usage": [False, True]}
    file = write_spec(tmp_path / "fail.yaml", cartpole_spec(dqn={"algo": "dqn", "params": params}))
    out = tmp_path / "out"
    assert main(["sweep", str(file), "--out", str(out), "--max-parallel", "1"]) == 1
    stdout = capsys.readouterr().out
    good, bad = "dqn__optimize_memory_usage=False__seed0", "dqn__optimize_memory_usage=True__seed0"
    message = "ValueError: ReplayBuffer does not support optimize_memory_usage"
    assert f"[failed ] {bad}: {message}" in stdout
    assert "1 of 2 trials failed" in stdout
    assert (out / good / RESULT_FILE).is_file() and not (out / bad / RESULT_FILE).exists()
    assert f"- {bad}: {message}" in (out / "summary.md").read_text()
    # again: the finished trial is read back, the failed one is tried again
    results = run_sweep(load_sweep(file), out, max_parallel=1)
    assert [r.status for r in results] == ["skipped", "failed"]
    rows, groups = summarize(results)
    assert [row["status"] for row in rows] == ["done", "failed"]
    assert [g["group"] for g in groups] == ["dqn__optimize_memory_usage=False"]


def test_unfinished_trial_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    from robust_rl.sweep.trials import checkpoint_freq
    from robust_rl.training import CHECKPOINT_FILE, train

    trial = expand_sweep(parse_sweep(cartpole_spec()))[0]
    straight = run_trial(trial, tmp_path / "straight")
    assert straight.status == "done"

    class Crash(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 250:
                raise KeyboardInterrupt  # the machine went down
            return True

    folder = tmp_path / "out" / trial.name
    with pytest.raises(KeyboardInterrupt):
        train(
            trial.algo,
            trial.env,
            copy.deepcopy(trial.config),
            trial.seed,
            folder,
            tensorboard_log=str(folder / "tb"),
            checkpoint_freq=checkpoint_freq(300),
            callback=Crash(),
        )
    assert (folder / CHECKPOINT_FILE).is_file() and not (folder / RESULT_FILE).exists()
    resumed = run_trial(trial, tmp_path / "out")
    assert resumed.status == "done", resumed.error
    info = json.loads((folder / "train_info.json").read_text())
    assert info["resumed_from"] is not None and 0 < info["resumed_from"] < 300
    # exact resume: the same returns as the uninterrupted run
    assert resumed.evaluation.to_dict() == straight.evaluation.to_dict()


def test_run_sweep_argument_errors(tmp_path: Path) -> None:
    trials = expand_sweep(parse_sweep(cartpole_spec()))
    with pytest.raises(ValueError, match="backend must be one of"):
        run_sweep(trials, tmp_path, backend="dask")
    with pytest.raises(ValueError, match="max_parallel must be a positive integer, got 0"):
        run_sweep(trials, tmp_path, max_parallel=0)
    with pytest.raises(ValueError, match="address applies to backend='ray' only"):
        run_sweep(trials, tmp_path, address="auto")
    with pytest.raises(ValueError, match="trial names must be unique"):
        run_sweep([trials[0], trials[0]], tmp_path)
    with pytest.raises(ValueError, match=r"n_trials applies to search\.method optuna only"):
        run_sweep(trials, tmp_path, n_trials=3)
    assert list(tmp_path.iterdir()) == []


def test_csv_quotes_with_the_csv_module() -> None:
    rows = [{"trial": 'a,"b"', "x": 1.23456789}, {"trial": "c\nd", "y": None}]
    text = rows_to_csv(rows)
    back = list(csv.reader(io.StringIO(text)))
    assert back == [["trial", "x", "y"], ['a,"b"', "1.23457", ""], ["c\nd", "", ""]]


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parent.parent / "experiments" / "sweeps").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_sweep_files_follow_the_tuning_protocol(path: Path) -> None:
    """Every committed sweep file parses (configs found, keys valid, protocol checks passed) and
    tunes on validation MDPs with training seeds disjoint from the reproductions' (0..9)."""
    spec = load_sweep(path)
    assert spec.evaluation.tune_split == "validation" != spec.evaluation.report_split
    if spec.search.method == "optuna":
        assert not set(spec.seeds) & set(range(10)), spec.seeds
        assert len(set(spec.budget().values())) == 1  # the same budget for every variant


def test_summary_states_validation_ties() -> None:
    from robust_rl.sweep.summary import tie_lines

    groups = [
        {"group": "a__p1", "variant": "a", "validation_mean": 1000.0},
        {"group": "b__p1", "variant": "b", "validation_mean": 900.0},
        {"group": "a__p2", "variant": "a", "validation_mean": 1000.0},
        {"group": "b__p2", "variant": "b", "validation_mean": 899.9},
        {"group": "a__p3", "variant": "a", "validation_mean": None},
    ]
    best = {"a": groups[0], "b": groups[1]}
    lines = tie_lines(groups, best)
    assert lines[:3] == ["", "Validation ties:", ""]
    assert len(lines) == 4  # variant b has no tie
    assert lines[3].startswith("- a: 2 points tie at 1000.0 on validation (a__p1, a__p2)")
    assert lines[3].endswith("keeps the first in trial order, a__p1.")
    assert tie_lines(groups[1:2], {"b": groups[1]}) == []


def test_the_sweep_package_has_no_import_cycles():
    """Every import between the sweep's modules, function-level ones included, points one way."""
    import ast

    root = Path(__file__).resolve().parent.parent / "robust_rl" / "sweep"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("robust_rl.sweep"):
                    deps.add(node.module)
        graph[name] = deps - {name}

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += graph.get(n, ())
        return seen

    cycles = sorted(n for n in graph if n in reach(n))
    assert not cycles, cycles


@pytest.mark.parametrize("checkpoints", [3, 1])
def test_select_best_evaluates_the_best_validation_checkpoint(
    tmp_path: Path, checkpoints: int
) -> None:
    """With select: best the trial is evaluated with the model of its best validation
    checkpoint (the earliest among ties), kept in best_model.zip; also when that is the last
    one (the final model has trained once more after it)."""
    from robust_rl.sweep.trials import BEST_MODEL_FILE, evaluate_trial
    from robust_rl.training import load_model

    spec = cartpole_spec()
    spec["search"] = {"select": "best", "checkpoints": checkpoints, "checkpoint_episodes": 1}
    trial = expand_sweep(parse_sweep(spec))[0]
    assert (trial.select, trial.checkpoints) == ("best", checkpoints)
    res = run_trial(trial, tmp_path)
    assert res.status == "done", res.error
    data = recorded(tmp_path, trial.name)
    values = {int(k): v for k, v in data["intermediate"].items()}
    assert sorted(values) == list(range(checkpoints))
    chosen = data["selected"]["checkpoint"]
    assert values[chosen] == max(values.values())
    assert all(values[k] < values[chosen] for k in values if k < chosen)
    assert data["selected"]["timesteps"] == 300 * (chosen + 1) // checkpoints
    best = load_model(tmp_path / trial.name / BEST_MODEL_FILE)
    again = evaluate_trial(best, trial.name, trial.evaluation).to_dict(compact=True)
    assert again == data["evaluation"]


def test_a_record_from_before_select_still_belongs_to_its_trial(tmp_path: Path) -> None:
    """A result.json written before Trial.select existed (no such key) is the same trial when
    select holds its default, and another trial when it does not."""
    from robust_rl.sweep.trials import stale_error

    trial = expand_sweep(parse_sweep(cartpole_spec()))[0]
    assert run_trial(trial, tmp_path).status == "done"
    path = tmp_path / trial.name / RESULT_FILE
    data = json.loads(path.read_text())
    del data["trial"]["select"]
    path.write_text(json.dumps(data))
    assert stale_error(trial, tmp_path) is None
    other = dataclasses.replace(trial, select="best", checkpoints=2)
    assert "changed: checkpoints, select" in (stale_error(other, tmp_path) or "")
