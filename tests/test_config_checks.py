"""Config values and files are refused with one line before any work (robust_rl.config_checks,
robust_rl._files)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from clitools import train_argv
from envtools import lock_held_elsewhere

from robust_rl._files import FolderLock, FolderLockedError, read_yaml
from robust_rl.cli import main
from robust_rl.config_checks import check_device, check_seed
from robust_rl.training import load_config, validate_config

BAD_VALUES = [
    ("dqn", {"learning_rate": math.inf}, "learning_rate must be a finite number, got inf"),
    ("dqn", {"learning_rate": math.nan}, "learning_rate must be a finite number, got nan"),
    ("dqn", {"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ("dqn", {"learning_rate": 0.0}, r"learning_rate must be a finite number > 0"),
    ("sac", {"gamma": -1}, r"gamma must be in \(0, 1\], got -1"),
    ("sac", {"gamma": 1.5}, r"gamma must be in \(0, 1\]"),
    ("dqn", {"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ("dqn", {"batch_size": 32.5}, "batch_size must be an integer >= 1"),
    ("td3", {"train_freq": [1, "hour"]}, r"train_freq must be a positive integer or \[n,"),
    ("sac", {"gradient_steps": 0}, "gradient_steps must be an integer >= 1 or -1"),
    ("sac", {"ent_coef": "auto_x"}, "ent_coef must be a number >= 0, 'auto' or"),
    ("dqn", {"exploration_final_eps": 2.0}, r"exploration_final_eps must be in \[0, 1\]"),
    ("ppo", {"policy": "TransformerPolicy"}, r"policy must be one of \['CnnPolicy', 'MlpPolicy'"),
    ("robust-dqn", {"eta": 0}, "eta must be a positive number"),
    ("robust-sac", {"estimator": "saa", "control_variate": True}, "control_variate applies"),
    ("robust-td3", {"max_level": 40}, "max_level must be at most 30"),
]


@pytest.mark.parametrize(("algo", "config", "match"), BAD_VALUES)
def test_bad_values_are_refused_by_name(algo: str, config: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_config(algo, config)


def test_good_values_pass() -> None:
    validate_config("sac", {"ent_coef": "auto_0.1", "gamma": 1.0, "gradient_steps": -1})
    validate_config("ppo", {"ent_coef": 0.0, "policy": "MlpPolicy", "gae_lambda": 0.95})
    validate_config("dqn", {"train_freq": [1, "episode"], "learning_starts": 0})
    validate_config("robust-sac", {"eta": math.inf, "estimator": "saa", "n_samples": 8})


def test_seed_and_device() -> None:
    assert check_seed(2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32, 1.0, True):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\]"):
            check_seed(bad)
    assert check_device("cpu") == "cpu" and check_device("auto") == "auto"
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda, cuda:N or mps"):
        check_device("gpu0")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")


def test_yaml_files_repeated_keys_binary_and_folders(tmp_path: Path) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text("eta: 1.0\nlearning_rate: 1.0e-3\neta: 3.0\n")
    with pytest.raises(ValueError, match=r"key 'eta' is repeated at line 3 \(first at line 1\)"):
        load_config(dup)
    nested = tmp_path / "nested.yaml"
    nested.write_text("variants:\n  a: {algo: dqn}\n  a: {algo: sac}\n")
    with pytest.raises(ValueError, match="key 'a' is repeated at line 3"):
        read_yaml(nested, "sweep file")
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="is not a UTF-8 text"):
        load_config(binary)
    with pytest.raises(ValueError, match="is a folder; give a YAML file"):
        load_config(tmp_path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml(empty, "config file") is None
    with pytest.raises(FileNotFoundError, match=r"config file .*missing.yaml does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_the_cli_prints_one_line(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: .inf\nn_timesteps: 100\n")
    out = tmp_path / "run"
    assert main(train_argv("dqn", "CartPole-v1", config, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["robust-rl train: error: learning_rate must be a finite number, got inf"]
    assert not out.exists()
    config.write_text("n_timesteps: 100\n")
    for flag, value, message in [
        ("--seed", str(2**32), r"seed must be an integer in [0, 4294967295], got 4294967296"),
        ("--device", "gpu0", "device must be auto, cpu, cuda, cuda:N or mps, got 'gpu0'"),
    ]:
        assert main(train_argv("dqn", "CartPole-v1", config, out, flag, value)) == 2
        assert capsys.readouterr().err.strip() == f"robust-rl train: error: {message}"
        assert not out.exists()


def test_folder_lock_refuses_a_writer_of_another_process(tmp_path: Path) -> None:
    with lock_held_elsewhere(tmp_path / "out", "robust-rl train"):
        with pytest.raises(FolderLockedError, match=r"out is being written by .*robust-rl train"):
            with FolderLock(tmp_path / "out", "robust-rl sweep"):
                pass
    with FolderLock(tmp_path / "out", "robust-rl sweep"):  # released when its holder ended
        pass
    assert list((tmp_path / "out").iterdir()) == []  # the lock file is removed on release
    with FolderLock(tmp_path / "new", "robust-rl evaluate"):
        assert (tmp_path / "new" / ".robust-rl.lock").is_file()
    assert not (tmp_path / "new").exists()  # created for the lock alone: removed again


def test_a_validation_mdp_that_is_physically_a_test_mdp_is_refused(tmp_path: Path) -> None:
    from robust_rl.evaluation.suites import load_suite

    suite = tmp_path / "s.yaml"
    base = (
        "name: s\nnominal_id: robust_rl/CartPole-v1\n"
        "uncertainty: {masspole: [0.05, 1.0], length: [0.25, 1.0]}\n"
        "test: {nominal: {}, heavy: {masspole: 0.9, length: 0.5}}\n"
    )
    # the nominal pole is 0.1 kg and 0.5 m long: written differently, the same physics
    for validation in ("{v: {masspole: 0.1}}", "{v: {masspole: 0.9}}"):
        suite.write_text(base + f"validation: {validation}\n")
        with pytest.raises(ValueError, match=r"validation MDP 'v' .* is physically test MDP"):
            load_suite(suite)
    suite.write_text(base + "validation: {v: {masspole: 0.7013}}\n")
    assert [m.name for m in load_suite(suite).validation] == ["v"]


def test_small_items(tmp_path: Path) -> None:
    import gymnasium as gym
    import torch

    from robust_rl.evaluation.models import load_model
    from robust_rl.risk import entropic_risk
    from robust_rl.training import check_env_id

    env = gym.make("robust_rl/CartPole-v1")
    for bad in (True, "1.0"):
        with pytest.raises(ValueError, match="masspole must be a positive finite number"):
            env.unwrapped.set_params(masspole=bad)
    x = torch.zeros(3, 2)
    for value in (math.nan, math.inf):
        with pytest.raises(ValueError, match=r"loss_fn returned \d+ NaN or infinite loss"):
            entropic_risk(lambda z, v=value: torch.full((z.shape[0],), v), x, radius=0.1, eta=1.0)
    assert check_env_id("gymnasium.envs.classic_control:CartPole-v1").endswith("CartPole-v1")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        check_env_id("no_such_module_xyz:CartPole-v1")
    with pytest.raises(ValueError, match=r"is a folder without one model in it"):
        load_model(tmp_path)


def test_model_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    from robust_rl.training import train

    config = {"n_timesteps": 64, "learning_starts": 32, "buffer_size": 100, "batch_size": 8}
    result = train("dqn", "CartPole-v1", config, 0, tmp_path / "run")
    mask = os.umask(0)
    os.umask(mask)
    assert result.model_path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_folder_lock_is_reentrant_here_and_exclusive_across_processes(tmp_path: Path) -> None:
    from robust_rl.sweep import run_sweep

    out = tmp_path / "sweep"
    with FolderLock(out, "robust-rl sweep"), FolderLock(out, "run_sweep"):
        pass  # the command and the library call it makes, in one process
    with lock_held_elsewhere(out, "another sweep"):
        with pytest.raises(FolderLockedError, match=r"sweep is being written by .*another sweep"):
            run_sweep([], out)
    assert run_sweep([], out) == []  # the OS released the killed holder's lock


def test_epsilons_and_sweep_seeds_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    import yaml

    model = tmp_path / "m.zip"
    model.write_bytes(b"not read: the radii are refused first")
    argv = ["evaluate", str(model), "--suite", "cartpole", "--attack", "random"]
    assert main([*argv, "--epsilon", "0.1", "-1"]) == 2
    assert "epsilons must be" in capsys.readouterr().err
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "env": "CartPole-v1",
                "seeds": [0, 2**32],
                "evaluation": {"suite": "cartpole"},
                "variants": {"dqn": {"algo": "dqn"}},
            }
        )
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and r"seeds must be a non-empty list of integers in [0, 4294967295]" in err
    )
    assert not (tmp_path / "o").exists()


def test_a_model_of_another_task_and_a_tensorboard_file_are_one_line(
    tmp_path: Path, capsys
) -> None:
    from robust_rl.training import train

    config = {"n_timesteps": 64, "learning_starts": 32, "buffer_size": 100, "batch_size": 8}
    model = train("dqn", "robust_rl/CartPole-v1", config, 0, tmp_path / "run").model_path
    assert main(["evaluate", str(model), "--suite", "pendulum", "--episodes", "1"]) == 2
    assert capsys.readouterr().err == (
        "robust-rl evaluate: error: model 'run' was trained on another task: its observation "
        "space is Box(shape (4,)), robust_rl/Pendulum-v1's is Box(shape (3,)); evaluate it on a "
        "suite of its own task\n"
    )
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ValueError, match=r"tensorboard_log .*x lies inside the file .*file"):
        train("dqn", "CartPole-v1", config, 0, tmp_path / "run2", tensorboard_log=str(file / "x"))
    assert not (tmp_path / "run2").exists()
