"""``robust-rl train`` / ``evaluate`` and robust_rl.training, end to end on tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from clitools import train_argv
from stable_baselines3.common.callbacks import BaseCallback

import robust_rl
from robust_rl.checkpoints import load_checkpoint
from robust_rl.cli import main
from robust_rl.configs import CONFIG_DIR
from robust_rl.dqn import RobustDQN
from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.training import load_config, load_model, make_model, train, validate_config

CONFIGS = CONFIG_DIR
ROOT = Path(__file__).resolve().parent.parent
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
    # the shipped RobustDQN is the re-tune's winner (chosen on validation MDPs): the RL Zoo
    # config but for the searched keys, and the very file the sweep wrote
    robust = validate_config("robust-dqn", load_config(CONFIGS / "robust_dqn_cartpole.yaml"))
    searched = {"learning_rate", "exploration_fraction"}
    assert {k: v for k, v in robust.items() if k in dqn and k not in searched} == {
        k: v for k, v in dqn.items() if k not in searched
    }
    assert len(robust["radius"]) == 4 and 0 < robust["eta"] < 1
    best = ROOT / "experiments" / "results" / "sweep_radius_eta_v2" / "best" / "robust-dqn.yaml"
    if best.exists():  # a source checkout (a source distribution ships no results)
        assert load_config(best) == load_config(CONFIGS / "robust_dqn_cartpole.yaml")
    first = validate_config(
        "robust-dqn", load_config(CONFIGS / "robust_dqn_cartpole_first_sweep.yaml")
    )
    assert {k: v for k, v in first.items() if k in dqn} == dqn


def test_train_command_saves_model_checkpoint_and_tensorboard(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    out = tmp_path / "run"
    extra = ["--seed", "1", "--tensorboard-log", str(tmp_path / "tb"), "--checkpoint-freq", "200"]
    argv = train_argv("robust-dqn", "robust_rl/CartPole-v1", cfg, out, *extra, "--no-progress-bar")
    assert main(argv) == 0
    assert "saved" in capsys.readouterr().out
    model = RobustDQN.load(out / "model.zip")
    assert model.num_timesteps >= 400 and model.radius == [0.03, 0.03, 0.003, 0.03]
    meta = load_checkpoint(out / "checkpoint.pkl").meta
    assert (meta.algo, meta.env_id, meta.seed, meta.exact_env) == (
        "robust-dqn",
        "robust_rl/CartPole-v1",
        1,
        True,
    )
    assert 200 <= meta.num_timesteps < 400
    assert (tmp_path / "tb" / "RobustDQN_1").is_dir()
    info = json.loads((out / "train_info.json").read_text())
    assert info["seed"] == 1 and info["algo"] == "robust-dqn"
    # an existing model is never overwritten silently
    before = (out / "model.zip").read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists; pass --force" in err
    assert (out / "model.zip").read_bytes() == before


class _Interrupt(Exception):
    pass


class _InterruptAt(BaseCallback):
    """Raise at environment step ``step``, as a killed process would stop there."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.step:
            raise _Interrupt
        return True


def _state(model) -> dict[str, torch.Tensor]:
    return {
        **{f"policy.{k}": v for k, v in model.policy.state_dict().items()},
        **{
            f"optim.{i}.{k}": v
            for i, s in model.policy.optimizer.state_dict()["state"].items()
            for k, v in s.items()
        },
        "buffer.obs": torch.as_tensor(model.replay_buffer.observations),
        "buffer.actions": torch.as_tensor(model.replay_buffer.actions),
        "buffer.rewards": torch.as_tensor(model.replay_buffer.rewards),
        **(
            {"buffer.physics": torch.as_tensor(model.replay_buffer.physics_states)}
            if hasattr(model.replay_buffer, "physics_states")
            else {}
        ),
    }


@pytest.mark.parametrize(
    ("algo", "extra"),
    [
        ("dqn", {}),
        ("robust-dqn", {}),
        ("robust-dqn", {"perturbation": {"dynamics": "task"}, "eta": 3.0}),
    ],
    ids=["dqn", "robust-dqn", "robust-dqn-dynamics"],
)
def test_interrupted_and_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path, algo, extra):
    cfg = {**load_config(tiny_config(tmp_path, algo)), "n_timesteps": 900, "n_envs": 2, **extra}
    common = dict(checkpoint_freq=200, device="cpu")
    whole = train(algo, "robust_rl/CartPole-v1", cfg, 3, tmp_path / "whole", **common)

    out = tmp_path / "cut"
    with pytest.raises(_Interrupt):  # killed at step 650, mid-episode
        train(algo, "robust_rl/CartPole-v1", cfg, 3, out, callback=_InterruptAt(650), **common)
    assert not (out / "model.zip").exists()
    resumed = train(algo, "robust_rl/CartPole-v1", cfg, 3, out, resume=True, **common)
    assert 400 <= resumed.resumed_from < 650  # checkpoints at rollout starts: 224, 448
    assert resumed.num_timesteps == whole.num_timesteps
    assert resumed.model.exploration_rate == whole.model.exploration_rate
    assert resumed.model._n_updates == whole.model._n_updates
    a, b = _state(whole.model), _state(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, capsys):
    cfg_path = tiny_config(tmp_path)
    out = tmp_path / "run"
    train("robust-dqn", "robust_rl/CartPole-v1", load_config(cfg_path), 0, out, checkpoint_freq=100)
    (out / "model.zip").unlink()  # as if the run had crashed before the final save
    config_before = (out / "config.yaml").read_text()
    base = ["train", "--env", "robust_rl/CartPole-v1", "--out", str(out), "--resume"]
    assert main([*base, "--algo", "dqn", "--config", str(tiny_config(tmp_path, "dqn"))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "belongs to another run" in err
    assert "algo (checkpoint 'robust-dqn', requested 'dqn')" in err
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**load_config(cfg_path), "eta": 0.7}))
    assert main([*base, "--algo", "robust-dqn", "--config", str(other)]) == 2
    assert "config keys ['eta']" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == config_before  # not rewritten
    # the same settings resume
    assert (
        main([*base, "--algo", "robust-dqn", "--config", str(cfg_path), "--no-progress-bar"]) == 0
    )
    assert "resumed from step" in capsys.readouterr().out


def test_resume_refuses_a_missing_or_foreign_checkpoint(tmp_path):
    cfg = load_config(tiny_config(tmp_path))
    with pytest.raises(MissingFileError, match="no checkpoint at"):
        train("robust-dqn", "robust_rl/CartPole-v1", cfg, 0, tmp_path / "a", resume=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InvalidArgumentError, match="not a signed robust_rl checkpoint"):
        train("robust-dqn", "robust_rl/CartPole-v1", cfg, 0, tmp_path / "b", resume=True)
    with pytest.raises(InvalidArgumentError, match="not a readable robust_rl checkpoint"):
        train(
            "robust-dqn", "robust_rl/CartPole-v1", cfg, 0, tmp_path / "b", resume=True, trust=True
        )


def test_evaluate_command_writes_tables_and_refuses_to_overwrite(tmp_path, capsys):
    cfg = tiny_config(tmp_path, "dqn")
    argv = train_argv("dqn", "robust_rl/CartPole-v1", cfg, tmp_path / "dqn", "--no-progress-bar")
    assert main(argv) == 0
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
        (train_argv("dqn", "NoSuchEnv-v0", "CFG", "OUT"), "unknown env id 'NoSuchEnv-v0'"),
        (
            train_argv("dqn", "CartPole-v1", "nope.yaml", "OUT"),
            "--config nope.yaml: no such file and no shipped config",
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
    assert main(train_argv("dqn", "CartPole-v1", cfg, tmp_path / "o")) == 2
    assert "unknown hyperparameter(s) ['learning_rat']" in capsys.readouterr().err
    with pytest.raises(ValueError, match="algo must be one of"):
        validate_config("qrdqn", {})
    with pytest.raises(ValueError, match="n_timesteps must be a positive integer"):
        validate_config("dqn", {"n_timesteps": -5})


def test_make_model_leaves_the_callers_config_untouched():
    from robust_rl.training import make_model

    config = {"n_timesteps": 100, "n_steps": 8, "policy_kwargs": {"net_arch": [8]}}
    make_model("a2c", "robust_rl/CartPole-v1", config, seed=0, device="cpu")
    assert config == {"n_timesteps": 100, "n_steps": 8, "policy_kwargs": {"net_arch": [8]}}


@pytest.mark.parametrize(
    ("kind", "cls"), [("normal", "NormalActionNoise"), ("ornstein-uhlenbeck", "OrnsteinUhlenbeck")]
)
def test_config_exploration_noise_is_built_as_the_rl_zoo_does(kind, cls):
    cfg = {"noise_type": kind, "noise_std": 0.3, "learning_starts": 10, "buffer_size": 100}
    model = make_model("robust-td3", "robust_rl/Pendulum-v1", cfg, seed=0, device="cpu")
    noise = model.action_noise
    assert type(noise).__name__.startswith(cls)
    assert np.array_equal(noise._sigma, [0.3]) and np.array_equal(noise._mu, [0.0])
    assert (
        make_model("sac", "Pendulum-v1", {"buffer_size": 100}, 0, device="cpu").action_noise is None
    )


@pytest.mark.parametrize(
    ("algo", "cfg", "message"),
    [
        (
            "dqn",
            {"noise_type": "normal", "noise_std": 0.1},
            "algo 'dqn' takes no exploration noise",
        ),
        ("td3", {"noise_type": "gauss", "noise_std": 0.1}, "noise_type must be one of"),
        ("td3", {"noise_std": 0.1}, "noise_type must be one of"),
        ("sac", {"noise_type": "normal", "noise_std": -1}, "noise_std must be a positive number"),
        ("sac", {"noise_type": "normal"}, "noise_std must be a positive number, got None"),
    ],
)
def test_bad_exploration_noise_is_refused_with_its_name(algo, cfg, message):
    with pytest.raises(ValueError, match=message):
        validate_config(algo, cfg)


def test_resume_with_exploration_noise_equals_uninterrupted_run(tmp_path):
    """Ornstein-Uhlenbeck noise has a state: it travels in the checkpoint with the model."""
    cfg = dict(n_timesteps=120, learning_starts=30, batch_size=8, buffer_size=500,
               noise_type="ornstein-uhlenbeck", noise_std=0.2,
               policy_kwargs=dict(net_arch=[8]))  # fmt: skip
    common = dict(checkpoint_freq=50, device="cpu")
    whole = train("td3", "robust_rl/Pendulum-v1", cfg, 4, tmp_path / "whole", **common)
    out = tmp_path / "cut"
    with pytest.raises(_Interrupt):
        train("td3", "robust_rl/Pendulum-v1", cfg, 4, out, callback=_InterruptAt(80), **common)
    resumed = train("td3", "robust_rl/Pendulum-v1", cfg, 4, out, resume=True, **common)
    assert resumed.resumed_from == 50
    for key, value in whole.model.policy.state_dict().items():
        assert torch.equal(value, resumed.model.policy.state_dict()[key]), key
    assert np.array_equal(whole.model.replay_buffer.actions, resumed.model.replay_buffer.actions)
    assert np.array_equal(
        whole.model.action_noise.noise_prev, resumed.model.action_noise.noise_prev
    )


def test_train_without_config_uses_the_shipped_one_and_config_takes_shipped_names(tmp_path, capsys):
    from robust_rl.configs import default_config, resolve_config, task_slug

    assert task_slug("robust_rl/InvertedPendulum-v5") == "inverted_pendulum"
    assert default_config("robust-dqn", "robust_rl/CartPole-v1") == CONFIGS / (
        "robust_dqn_cartpole.yaml"
    )
    assert resolve_config("sac_pendulum", "x", "y") == CONFIGS / "sac_pendulum.yaml"
    assert resolve_config("sac_pendulum.yaml", "x", "y") == CONFIGS / "sac_pendulum.yaml"
    base = ["train", "--env", "robust_rl/CartPole-v1", "--no-progress-bar"]
    out = tmp_path / "run"
    assert main([*base, "--algo", "dqn", "--out", str(out), "--timesteps", "64"]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())["config"]
    shipped = validate_config("dqn", load_config(CONFIGS / "dqn_cartpole.yaml"))
    assert {k: v for k, v in written.items() if k != "n_timesteps"} == {
        k: v for k, v in shipped.items() if k != "n_timesteps"
    }
    capsys.readouterr()
    assert main([*base, "--algo", "robust-sac", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no built-in config for --algo robust-sac" in err
    assert "robust_sac_pendulum" in err and not (tmp_path / "b").exists()
    assert main([*base, "--algo", "dqn", "--config", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "no such file and no shipped config of that name" in capsys.readouterr().err


def test_version_answers_without_the_heavy_imports():
    import subprocess
    import sys

    code = (
        "import sys; from robust_rl.cli import main; rc = main(['--version']); "
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [f"robust-rl {robust_rl.__version__}", "[]"]
