"""Model files and checkpoints from elsewhere are read without running their code.

Each crafted file carries a payload that would create a marker file when unpickled; the safe
paths must refuse the file (one line) or read it without the payload ever running.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import stat
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, SAC

from robust_rl.checkpoints import (
    KEY_FILE_ENV,
    UntrustedCheckpointError,
    load_checkpoint,
    signing_key_path,
)
from robust_rl.cli import main
from robust_rl.errors import InvalidArgumentError, UserError
from robust_rl.evaluation.models import load_model, read_model_class
from robust_rl.safe_pickle import UnsafePickleError, allow_globals, safe_loads


class _Payload:
    """Unpickling this creates ``marker`` (stands for any code a crafted file would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _saved_dqn(tmp_path: Path) -> Path:
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=0, buffer_size=500, seed=0)
    model.learn(50)
    path = tmp_path / "dqn.zip"
    model.save(path)
    return path


def _rewrite(src: Path, dst: Path, data=None, members=None) -> Path:
    """Copy the model zip ``src`` to ``dst`` with its data JSON and/or members replaced."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            content = zin.read(name)
            if name == "data" and data is not None:
                content = json.dumps(data).encode()
            if members and name in members:
                content = members[name]
            zout.writestr(name, content)
    return dst


def _serialized(obj) -> dict:
    return {":type:": "x", ":serialized:": base64.b64encode(cloudpickle.dumps(obj)).decode()}


@pytest.mark.parametrize("key", ["_last_obs", "policy_class", "observation_space"])
def test_a_crafted_model_attribute_is_refused_without_running(tmp_path, key):
    src = _saved_dqn(tmp_path)
    marker = tmp_path / "ran"
    data = json.loads(zipfile.ZipFile(src).read("data"))
    data[key] = _serialized(_Payload(marker))
    bad = _rewrite(src, tmp_path / "bad.zip", data=data)
    with pytest.raises(InvalidArgumentError, match=rf"attribute '{key}' can only be read by run"):
        load_model(bad)
    assert not marker.exists()
    # the CLI: one line, exit 2, nothing run
    assert main(["evaluate", str(bad), "--episodes", "1"]) == 2
    assert not marker.exists()
    # with trust, SB3's loader runs it (what --trust means)
    try:
        load_model(bad, trust=True)
    except InvalidArgumentError:  # the payload's value (None) is not a usable policy class
        pass
    assert marker.exists()


def test_crafted_weights_are_refused_without_running(tmp_path):
    src = _saved_dqn(tmp_path)
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    torch.save({"q_net.q_net.0.weight": _Payload(marker)}, buf)
    bad = _rewrite(src, tmp_path / "bad.zip", members={"policy.pth": buf.getvalue()})
    with pytest.raises(InvalidArgumentError, match="its weights are not plain tensors"):
        load_model(bad)
    assert not marker.exists()


def test_safe_load_equals_trusted_load(tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=0, buffer_size=500, seed=1)
    model.learn(30)
    model.save(tmp_path / "sac.zip")
    safe = load_model(tmp_path / "sac.zip", device="cpu")
    trusted = load_model(tmp_path / "sac.zip", device="cpu", trust=True)
    assert type(safe) is SAC and safe.unrestored_attributes == ()
    assert read_model_class(tmp_path / "sac.zip").name == "sac"
    pairs = zip(
        safe.policy.state_dict().values(), trusted.policy.state_dict().values(), strict=True
    )
    for a, b in pairs:
        assert torch.equal(a, b)
    obs = np.stack([model.observation_space.sample() for _ in range(8)])
    np.testing.assert_array_equal(
        safe.predict(obs, deterministic=True)[0], trusted.predict(obs, deterministic=True)[0]
    )
    assert safe.observation_space == model.observation_space
    assert safe.lr_schedule(1.0) == trusted.lr_schedule(1.0)


def test_a_schedule_pickled_as_a_function_is_replaced_by_a_constant(tmp_path):
    """Older SB3 versions pickle schedules as functions (code): replaced, and said so."""
    src = _saved_dqn(tmp_path)
    data = json.loads(zipfile.ZipFile(src).read("data"))
    data["lr_schedule"] = _serialized(lambda _: 1e-3)
    old = _rewrite(src, tmp_path / "old.zip", data=data)
    model = load_model(old)
    assert model.unrestored_attributes == ("lr_schedule",)
    assert model.lr_schedule(0.5) == pytest.approx(data["learning_rate"])
    reference = DQN.load(src)
    obs = np.zeros((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(obs)[0], reference.predict(obs)[0])


def test_safe_loads_refuses_globals_off_the_list_and_can_be_extended():
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval is not on the safe list"):
        safe_loads(pickle.dumps(eval))
    assert safe_loads(pickle.dumps(np.arange(3))).tolist() == [0, 1, 2]
    with pytest.raises(UnsafePickleError):
        safe_loads(pickle.dumps(Path("x")))
    allow_globals([("pathlib", "PosixPath")])
    assert safe_loads(pickle.dumps(Path("x"))) == Path("x")
    with pytest.raises(UserError, match="allow_globals"):
        allow_globals([("pathlib", "")])


# --- checkpoints ------------------------------------------------------------------------------


def _tiny_run(tmp_path: Path, out: Path) -> None:
    from test_training_cli import tiny_config

    from robust_rl.training import load_config, train

    cfg = load_config(tiny_config(tmp_path, "dqn"))
    train("dqn", "robust_rl/CartPole-v1", cfg, 0, out, checkpoint_freq=100)
    (out / "model.zip").unlink()  # as if the run had crashed before the final save


def test_a_crafted_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UntrustedCheckpointError, match="not a signed robust_rl checkpoint"):
        load_checkpoint(out / "checkpoint.pkl")
    assert not marker.exists()


def test_checkpoints_are_signed_with_the_users_key(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _tiny_run(tmp_path, out)
    ckpt = out / "checkpoint.pkl"
    assert load_checkpoint(ckpt).meta.algo == "dqn"
    key = signing_key_path()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # one byte changed: refused
    raw = bytearray(ckpt.read_bytes())
    raw[-5] ^= 1
    altered = tmp_path / "altered.pkl"
    altered.write_bytes(bytes(raw))
    with pytest.raises(UntrustedCheckpointError, match="altered"):
        load_checkpoint(altered)
    # another user's key: refused, and accepted with trust
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "other" / "key"))
    with pytest.raises(UntrustedCheckpointError, match="was not signed with this user's key"):
        load_checkpoint(ckpt)
    assert load_checkpoint(ckpt, trust=True).meta.algo == "dqn"
    # the CLI names --trust, and resumes with it
    from test_training_cli import tiny_config

    args = ["train", "--algo", "dqn", "--env", "robust_rl/CartPole-v1", "--out", str(out)]
    args += ["--config", str(tiny_config(tmp_path, "dqn")), "--resume", "--no-progress-bar"]
    assert main(args) == 2
    assert main([*args, "--trust"]) == 0


def test_an_unusable_key_location_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(KEY_FILE_ENV, str(blocker / "key"))
    with pytest.raises(UserError, match=f"set {KEY_FILE_ENV} to a file in a writable folder"):
        _tiny_run(tmp_path, tmp_path / "run")


# --- storage failures -------------------------------------------------------------------------


def test_a_full_disk_during_training_is_one_line_and_keeps_the_checkpoint(
    tmp_path, monkeypatch, capsys
):
    import errno

    from test_training_cli import tiny_config

    import robust_rl.io as io_module

    out = tmp_path / "run"
    args = ["train", "--algo", "dqn", "--env", "robust_rl/CartPole-v1", "--out", str(out)]
    args += ["--config", str(tiny_config(tmp_path, "dqn")), "--no-progress-bar"]
    args += ["--checkpoint-freq", "100"]
    real = io_module._write_synced
    calls = {"n": 0}

    def fill_up(fd, data):
        calls["n"] += 1
        if calls["n"] > 4:  # after the first checkpoints: the disk is full
            import os

            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device", "checkpoint.pkl")
        real(fd, data)

    monkeypatch.setattr(io_module, "_write_synced", fill_up)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "--resume" in err
    assert load_checkpoint(out / "checkpoint.pkl").meta.num_timesteps > 0  # the last good one
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary left


def test_a_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch, capsys):
    import os

    from test_training_cli import tiny_config

    folder = tmp_path / "ro"
    folder.mkdir()
    real = os.access
    # as a read-only mount answers (root ignores permission bits, so a chmod would not do)
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode))
    args = ["train", "--algo", "dqn", "--env", "robust_rl/CartPole-v1"]
    args += ["--out", str(folder / "run"), "--config", str(tiny_config(tmp_path, "dqn"))]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"its folder {folder} is not" in err
    assert not (folder / "run").exists()
