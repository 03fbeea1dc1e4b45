"""A training run owns its folder: unfinished runs are not overwritten, refused runs leave
nothing, a second writer is refused, Ctrl-C checkpoints exactly, divergence stops cleanly."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from envtools import lock_held_elsewhere
from stable_baselines3.common.callbacks import BaseCallback
from test_training_cli import TINY

from robust_rl._files import FolderLockedError
from robust_rl.checkpoints import TrainingDivergedError, TrainingInterrupted, load_checkpoint
from robust_rl.errors import OutputExistsError
from robust_rl.training import train

CFG = {**TINY, "n_timesteps": 900, "n_envs": 2}
ENV = "robust_rl/CartPole-v1"


class _At(BaseCallback):
    def __init__(self, step: int, action) -> None:
        super().__init__()
        self.step, self.action, self.done = step, action, False

    def _on_step(self) -> bool:
        if not self.done and self.num_timesteps >= self.step:
            self.done = True
            self.action()
        return True


class _Crash(RuntimeError):
    pass


def _crash() -> None:
    raise _Crash


def _info(out: Path) -> dict:
    return json.loads((out / "train_info.json").read_text())


def test_an_unfinished_run_is_not_restarted_over_without_force(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train("dqn", ENV, CFG, 1, out, checkpoint_freq=200, callback=_At(500, _crash))
    assert _info(out)["state"] == "failed" and _info(out)["error"] == "_Crash"
    before = (out / "checkpoint.pkl").read_bytes()
    config = dict(CFG, learning_rate=5e-4)
    with pytest.raises(OutputExistsError, match=r"holds an unfinished run .*--resume .*--force"):
        train("dqn", ENV, config, 1, out, checkpoint_freq=200)
    assert (out / "checkpoint.pkl").read_bytes() == before  # untouched
    assert "learning_rate" not in (out / "config.yaml").read_text()  # still the real run's
    done = train("dqn", ENV, config, 1, out, checkpoint_freq=200, force=True)
    assert done.resumed_from is None and _info(out)["state"] == "finished"
    assert "learning_rate: 0.0005" in (out / "config.yaml").read_text()


def test_a_refused_run_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    bad = dict(CFG, optimize_memory_usage=True)  # SB3 refuses it with timeout handling
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        train("dqn", ENV, bad, 0, out)
    assert not (out / "config.yaml").exists() and not (out / "train_info.json").exists()


def test_a_second_writer_is_refused_with_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with lock_held_elsewhere(out, "robust-rl sweep"):
        with pytest.raises(FolderLockedError, match=r"run is being written by .*robust-rl sweep"):
            train("dqn", ENV, CFG, 0, out)
    assert not (out / "config.yaml").exists()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        train("dqn", ENV, CFG, 0, file)


def test_ctrl_c_writes_a_checkpoint_that_resumes_exactly(tmp_path: Path) -> None:
    whole = train("robust-dqn", ENV, dict(CFG, eta=3.0), 2, tmp_path / "whole", device="cpu")
    out = tmp_path / "cut"
    sigint = _At(650, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(TrainingInterrupted) as caught:
        train("robust-dqn", ENV, dict(CFG, eta=3.0), 2, out, device="cpu", callback=sigint)
    assert caught.value.num_timesteps >= 650 and not (out / "model.zip").exists()
    assert load_checkpoint(out / "checkpoint.pkl").meta.num_timesteps == caught.value.num_timesteps
    assert _info(out)["state"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = train("robust-dqn", ENV, dict(CFG, eta=3.0), 2, out, resume=True, device="cpu")
    assert resumed.resumed_from == caught.value.num_timesteps
    a, b = whole.model.policy.state_dict(), resumed.model.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"

    def poison() -> None:
        with torch.no_grad():
            next(iter(model_ref[0].policy.parameters())).fill_(float("nan"))

    model_ref: list = []

    class _Grab(_At):
        def _on_training_start(self) -> None:
            model_ref.append(self.model)

    with pytest.raises(TrainingDivergedError, match=r"training diverged at step .*not finite"):
        train("dqn", ENV, CFG, 0, out, checkpoint_freq=200, callback=_Grab(500, poison))
    assert not (out / "model.zip").exists() and _info(out)["state"] == "failed"
    kept = load_checkpoint(out / "checkpoint.pkl").meta.num_timesteps
    assert 200 <= kept < 500
