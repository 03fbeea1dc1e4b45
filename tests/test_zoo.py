"""The robust agents through RL Baselines3 Zoo's own scripts (``python -m robust_rl.zoo``), and
robustness reports of the zoo's runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

if importlib.util.find_spec("rl_zoo3") is None:  # not imported here: it patches gymnasium
    pytest.skip("RL Baselines3 Zoo is not installed", allow_module_level=True)

from robust_rl import zoo
from robust_rl.cli import main
from robust_rl.configs import default_config

pytestmark = pytest.mark.zoo


def run_zoo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "robust_rl.zoo", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def saved_config(run: Path) -> dict:
    (params,) = [p for p in run.iterdir() if (p / "config.yml").is_file()]
    return dict(yaml.unsafe_load((params / "config.yml").read_text()))  # the zoo's OrderedDict


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    proc = run_zoo("train", "--algo", "robust_dqn", "--env", "robust_rl/CartPole-v1", "-n", "600",
                   "-f", "logs", "--eval-freq", "300", "--eval-episodes", "1", "--seed", "0",
                   cwd=root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_train_takes_the_shipped_config_by_the_exact_id(logs: Path) -> None:
    run = logs / "logs" / "robust_dqn" / "robust_rl-CartPole-v1_1"
    assert (run / "robust_rl-CartPole-v1.zip").is_file()
    config = saved_config(run)
    shipped = yaml.safe_load(default_config("robust-dqn", "robust_rl/CartPole-v1").read_text())
    for key in ("eta", "radius", "estimator", "learning_rate"):
        assert config[key] == shipped[key], key


def test_enjoy_and_a_report_of_the_run(logs: Path, capsys) -> None:
    proc = run_zoo("enjoy", "--algo", "robust_dqn", "--env", "robust_rl/CartPole-v1", "-f", "logs",
                   "-n", "200", "--no-render", cwd=logs)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Mean reward" in proc.stdout
    run = logs / "logs" / "robust_dqn" / "robust_rl-CartPole-v1_1"
    assert main(["evaluate", str(run), "--episodes", "1", "--quiet"]) == 0
    assert "| robust_rl-CartPole-v1_1 |" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="pygame renders CartPole")
def test_record_video_and_record_training(logs: Path) -> None:
    args = ("--algo", "robust_dqn", "--env", "robust_rl/CartPole-v1", "-f", "logs", "-n", "50")
    videos = logs / "logs" / "robust_dqn" / "robust_rl-CartPole-v1_1" / "videos"
    proc = run_zoo("record_video", *args, cwd=logs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(videos.glob("final-model-robust_dqn-*.mp4"))
    # each model recorded in a new process that knows the robust agents, then joined
    proc = run_zoo("record_training", *args, cwd=logs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (videos / "training.mp4").stat().st_size > 0


@pytest.mark.parametrize("algo", ["robust_sac", "robust_td3", "sac"])
def test_train_enjoy_report_on_pendulum(tmp_path: Path, capsys, algo: str) -> None:
    """Each continuous robust agent, and the zoo's own SAC, through the zoo's scripts on a
    ``robust_rl/*`` id: its shipped config found, gradient steps taken, replayed, reported."""
    proc = run_zoo("train", "--algo", algo, "--env", "robust_rl/Pendulum-v1", "-n", "300",
                   "-f", "logs", "--seed", "0", "-params", "learning_starts:100",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Using 'default' hyperparameters" not in proc.stdout
    run = tmp_path / "logs" / algo / "robust_rl-Pendulum-v1_1"
    ours = algo.replace("_", "-")
    shipped = yaml.safe_load(default_config(ours, "robust_rl/Pendulum-v1").read_text())
    config = saved_config(run)
    assert all(config[k] == v for k, v in shipped.items() if k not in ("learning_starts",)), config
    proc = run_zoo("enjoy", "--algo", algo, "--env", "robust_rl/Pendulum-v1", "-f", "logs",
                   "-n", "200", "--no-render", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["evaluate", str(run), "--episodes", "1", "--quiet"]) == 0
    assert "| robust_rl-Pendulum-v1_1 |" in capsys.readouterr().out


def test_a_shipped_config_by_name(tmp_path: Path) -> None:
    proc = run_zoo("train", "--algo", "robust_sac", "--env", "robust_rl/Pendulum-v1", "-n", "100",
                   "-f", "logs", "-conf", "robust_sac_dynamics_pendulum", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = saved_config(tmp_path / "logs" / "robust_sac" / "robust_rl-Pendulum-v1_1")
    assert config["perturbation"] == {"dynamics": "task"}


def test_hyperparams_fall_back_to_the_perturbed_ids_zoo_entry() -> None:
    dqn = zoo.hyperparams("dqn")
    assert dqn["robust_rl/Acrobot-v1"] == dqn["Acrobot-v1"]  # the zoo's own entry
    robust = zoo.hyperparams("robust_dqn")
    assert robust["robust_rl/Acrobot-v1"] == dqn["Acrobot-v1"]  # the parent's
    assert robust["robust_rl/CartPole-v1"]["eta"] == yaml.safe_load(
        default_config("robust-dqn", "robust_rl/CartPole-v1").read_text())["eta"]  # fmt: skip
    assert "robust_rl/CartPole-v1" in zoo.hyperparams("ppo")
    assert robust["LunarLander-v3"] == dqn["LunarLander-v3"]  # any id the parent knows


def test_samplers_add_the_robust_keys() -> None:
    import optuna
    from rl_zoo3 import ALGOS
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

    from robust_rl import RobustSAC

    zoo.register()
    zoo.register()  # again: no change
    assert ALGOS["robust_sac"] is RobustSAC
    trial = optuna.create_study().ask()
    args = {"using_her_replay_buffer": False, "her_kwargs": {}}
    params = HYPERPARAMS_SAMPLER["robust_sac"](trial, 1, 1, args)
    assert 0.1 <= params["eta"] <= 100 and 1e-3 <= params["radius"] <= 0.1
    assert params["radius_scale"] == "std" and "gamma" in params and "learning_rate" in params


def test_record_training_records_through_this_entry(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(zoo, "_CALL", lambda cmd, *a, **k: seen.append(cmd) or 0)
    zoo._RecordVideoInThisEntry.call(["python", "-m", "rl_zoo3.record_video", "--algo", "x"])
    assert seen == [[sys.executable, "-m", "robust_rl.zoo", "record_video", "--algo", "x"]]


def test_unknown_script_exits_2(capsys) -> None:
    assert zoo.main(["nope"]) == 2
    assert "SCRIPT must be one of train, enjoy, record_video, record_training" in (
        capsys.readouterr().err
    )
