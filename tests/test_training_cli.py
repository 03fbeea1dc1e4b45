"""``robust-rl train`` / ``evaluate`` and robust_rl.training, end to end on tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from robust_rl.cli import main
from robust_rl.dqn import RobustDQN
from robust_rl.training import load_config, load_model, train, validate_config

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
TINY = dict(
    n_timesteps=400,
    learning_starts=100,
    train_freq=16,
    gradient_steps=2,
    batch_size=16,
    buffer_size=1000,
    policy_kwargs={"net_arch": [16]},
)


def tiny_config(tmp_path: Path, algo: str = "robust-dqn") -> Path:
    base = load_config(
        CONFIGS / ("robust_dqn_cartpole.yaml" if algo == "robust-dqn" else "dqn_cartpole.yaml")
    )
    path = tmp_path / f"{algo}.yaml"
    path.write_text(yaml.safe_dump({**base, **TINY}))
    return path


def test_shipped_configs_are_valid_and_use_rl_zoo_defaults():
    dqn = validate_config("dqn", load_config(CONFIGS / "dqn_cartpole.yaml"))
    assert dqn["learning_rate"] == pytest.approx(2.3e-3)
    assert (dqn["batch_size"], dqn["buffer_size"], dqn["learning_starts"]) == (64, 100_000, 1000)
    assert (dqn["target_update_interval"], dqn["train_freq"], dqn["gradient_steps"]) == (
        10,
        256,
        128,
    )
    assert (dqn["exploration_fraction"], dqn["exploration_final_eps"]) == (0.16, 0.04)
    assert dqn["policy_kwargs"] == {"net_arch": [256, 256]} and dqn["n_timesteps"] == 50_000
    robust = validate_config("robust-dqn", load_config(CONFIGS / "robust_dqn_cartpole.yaml"))
    assert {k: v for k, v in robust.items() if k in dqn} == dqn
    assert len(robust["radius"]) == 4


def test_train_command_saves_model_checkpoint_and_tensorboard(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    out = tmp_path / "run"
    argv = [
        "train",
        "--algo",
        "robust-dqn",
        "--env",
        "robust_rl/CartPole-v1",
        "--config",
        str(cfg),
        "--seed",
        "1",
        "--out",
        str(out),
        "--tensorboard-log",
        str(tmp_path / "tb"),
        "--checkpoint-freq",
        "200",
        "--no-progress-bar",
    ]
    assert main(argv) == 0
    assert "saved" in capsys.readouterr().out
    model = RobustDQN.load(out / "model.zip")
    assert model.num_timesteps >= 400 and model.radius == [0.03, 0.03, 0.003, 0.03]
    assert (out / "checkpoint.zip").is_file() and (out / "checkpoint_replay_buffer.pkl").is_file()
    assert (tmp_path / "tb" / "RobustDQN_1").is_dir()
    info = json.loads((out / "train_info.json").read_text())
    assert info["seed"] == 1 and info["algo"] == "robust-dqn"
    # an existing model is never overwritten silently
    before = (out / "model.zip").read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists; pass --force" in err
    assert (out / "model.zip").read_bytes() == before


def test_resume_continues_from_the_checkpoint(tmp_path):
    cfg = load_config(tiny_config(tmp_path))
    out = tmp_path / "run"
    first = train(
        "robust-dqn",
        "robust_rl/CartPole-v1",
        {**cfg, "n_timesteps": 300},
        0,
        out,
        checkpoint_freq=100,
    )
    assert 300 <= first.num_timesteps < 300 + 16  # SB3 rounds up to train_freq
    (out / "model.zip").unlink()  # as if the run had crashed before the final save
    second = train(
        "robust-dqn",
        "robust_rl/CartPole-v1",
        {**cfg, "n_timesteps": 600},
        0,
        out,
        resume=True,
        checkpoint_freq=100,
    )
    assert second.resumed_from == 300  # the last checkpoint (every 100 steps)
    assert 600 <= second.num_timesteps < 600 + 16
    assert second.model.eta == cfg["eta"]


def test_evaluate_command_writes_tables_and_refuses_to_overwrite(tmp_path, capsys):
    cfg = tiny_config(tmp_path, "dqn")
    assert (
        main(
            [
                "train",
                "--algo",
                "dqn",
                "--env",
                "robust_rl/CartPole-v1",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "dqn"),
                "--no-progress-bar",
            ]
        )
        == 0
    )
    model = tmp_path / "dqn" / "model.zip"
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(model),
                "--episodes",
                "2",
                "--grid",
                "--grid-episodes",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| heavy pole |" in printed and "| dqn |" in printed
    for name in ("suite.csv", "suite.md", "grid.csv", "grid.md", "grid.png"):
        assert (out / name).is_file(), name
    assert main(["evaluate", str(model), "--episodes", "2", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert isinstance(load_model(model).predict([[0.0, 0.0, 0.0, 0.0]])[0][0].item(), int)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["evaluate", "missing.zip"], "model file missing.zip does not exist"),
        (
            ["train", "--algo", "dqn", "--env", "NoSuchEnv-v0", "--config", "CFG", "--out", "OUT"],
            "unknown env id 'NoSuchEnv-v0'",
        ),
        (
            [
                "train",
                "--algo",
                "dqn",
                "--env",
                "CartPole-v1",
                "--config",
                "nope.yaml",
                "--out",
                "OUT",
            ],
            "config file nope.yaml does not exist",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path, "dqn")
    argv = [str(cfg) if a == "CFG" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and "Traceback" not in err


def test_corrupt_model_file_and_unknown_hyperparameter(tmp_path, capsys):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    assert main(["evaluate", str(bad)]) == 2
    assert "is not a readable Stable-Baselines3 model" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rat: 0.1\n")
    assert (
        main(
            [
                "train",
                "--algo",
                "dqn",
                "--env",
                "CartPole-v1",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "unknown hyperparameter(s) ['learning_rat']" in capsys.readouterr().err
    with pytest.raises(ValueError, match="algo must be one of"):
        validate_config("ppo", {})
    with pytest.raises(ValueError, match="n_timesteps must be a positive integer"):
        validate_config("dqn", {"n_timesteps": -5})
