"""Tests of :mod:`robust_rl.evaluation.models`: the algorithm is read from the saved file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

from robust_rl.dqn import RobustDQN
from robust_rl.errors import InvalidArgumentError, MissingFileError, UnknownNameError
from robust_rl.evaluation import MODEL_CLASSES, load_model, read_model_class
from robust_rl.training import load_model as training_load_model

CASES = [
    ("dqn", DQN, "robust_rl/CartPole-v1"),
    ("robust-dqn", RobustDQN, "robust_rl/CartPole-v1"),
    ("ppo", PPO, "robust_rl/CartPole-v1"),
    ("a2c", A2C, "robust_rl/CartPole-v1"),
    ("sac", SAC, "robust_rl/Pendulum-v1"),
    ("td3", TD3, "robust_rl/Pendulum-v1"),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, cls, env in CASES:
        path = folder / f"{name}.zip"
        cls("MlpPolicy", env, device="cpu", seed=0).save(path)
        out[name] = path
    return out


@pytest.mark.parametrize(("name", "cls", "env"), CASES)
def test_the_class_is_read_from_the_file(saved: dict, name: str, cls: type, env: str) -> None:
    assert read_model_class(saved[name]).name == name
    model = load_model(saved[name], device="cpu")
    assert type(model) is cls
    assert type(training_load_model(saved[name], device="cpu")) is cls
    obs = np.zeros((1, *model.observation_space.shape), dtype=np.float32)
    assert model.predict(obs, deterministic=True)[0].shape[0] == 1


def test_registry_holds_every_algorithm() -> None:
    assert {"dqn", "robust-dqn", "ppo", "a2c", "sac", "td3"} <= set(MODEL_CLASSES)


def test_wrong_files_are_user_errors(tmp_path: Path, saved: dict) -> None:
    with pytest.raises(MissingFileError, match="does not exist"):
        load_model(tmp_path / "missing.zip")
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(
        InvalidArgumentError, match=r"is not a readable Stable-Baselines3 model \(not a zip file\)"
    ):
        load_model(text)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(
        InvalidArgumentError, match=r"is not a readable Stable-Baselines3 model \(no data member\)"
    ):
        load_model(empty)
    # an SB3 file whose stored attributes match no registered algorithm
    unknown = tmp_path / "unknown.zip"
    with zipfile.ZipFile(saved["dqn"]) as src, zipfile.ZipFile(unknown, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "data":
                d = json.loads(data)
                del d["exploration_fraction"]
                data = json.dumps(d).encode()
            dst.writestr(item, data)
    with pytest.raises(UnknownNameError, match="matches no known algorithm; known: a2c, "):
        read_model_class(unknown)
