"""Train DQN / RobustDQN from a YAML hyperparameter file, with atomic checkpoints and resume.

Used by ``robust-rl train``, the experiment scripts and the sweeps. A config file holds the
algorithm's constructor arguments (RL-Zoo style) plus ``n_timesteps``, ``policy`` and ``n_envs``::

    n_timesteps: 50000
    policy: MlpPolicy
    learning_rate: 2.3e-3
    policy_kwargs: {net_arch: [256, 256]}
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.save_util import load_from_zip_file

import robust_rl.envs  # noqa: F401  (registers the ids)
from robust_rl._io import atomic_write_text
from robust_rl.dqn import RobustDQN
from robust_rl.errors import InvalidArgumentError, MissingFileError, OutputExistsError

__all__ = [
    "ALGOS",
    "CONFIG_KEYS",
    "AtomicCheckpointCallback",
    "TrainResult",
    "check_env_id",
    "load_config",
    "load_model",
    "make_model",
    "train",
    "validate_config",
]

#: algorithm name (CLI ``--algo``) -> class
ALGOS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "robust-dqn": RobustDQN}
#: keys of a config file that are not constructor arguments
CONFIG_KEYS: tuple[str, ...] = ("n_timesteps", "policy", "n_envs")
_NOT_CONFIGURABLE = {"self", "env", "policy", "seed", "tensorboard_log", "_init_setup_model"}
MODEL_FILE = "model.zip"
CHECKPOINT_FILE = "checkpoint.zip"
BUFFER_FILE = "checkpoint_replay_buffer.pkl"


def check_env_id(env_id: str) -> str:
    """Raise ``ValueError`` naming ``env_id`` if gymnasium does not know it."""
    try:
        gym.spec(env_id)
    except gym.error.Error:
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("robust_rl/")))
        raise InvalidArgumentError(
            f"unknown env id {env_id!r}; registered perturbed ids are: {known} (or any gymnasium id)"
        ) from None
    return env_id


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML hyperparameter file (a mapping) with clear errors."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise InvalidArgumentError(f"config file {p} is not valid YAML: {detail}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"config file {p} must hold a mapping of hyperparameters, got {type(data).__name__}"
        )
    return data


def validate_config(algo: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Check that every key is a constructor argument of ``algo`` (or one of :data:`CONFIG_KEYS`)."""
    if algo not in ALGOS:
        raise InvalidArgumentError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    accepted = set(inspect.signature(ALGOS[algo].__init__).parameters) - _NOT_CONFIGURABLE
    unknown = sorted(set(config) - accepted - set(CONFIG_KEYS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown hyperparameter(s) {unknown} for algo {algo!r}; accepted: "
            f"{sorted(accepted | set(CONFIG_KEYS))}"
        )
    n_timesteps = config.get("n_timesteps", 50_000)
    if isinstance(n_timesteps, float) and n_timesteps.is_integer():
        n_timesteps = int(n_timesteps)
    if isinstance(n_timesteps, bool) or not isinstance(n_timesteps, int) or n_timesteps < 1:
        raise InvalidArgumentError(f"n_timesteps must be a positive integer, got {n_timesteps!r}")
    n_envs = config.get("n_envs", 1)
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise InvalidArgumentError(f"n_envs must be a positive integer, got {n_envs!r}")
    out = dict(config)
    out["n_timesteps"] = n_timesteps
    out["n_envs"] = n_envs
    return out


def make_model(
    algo: str,
    env_id: str,
    config: Mapping[str, Any],
    seed: int,
    tensorboard_log: str | None = None,
    device: str = "auto",
) -> BaseAlgorithm:
    """Build an untrained model for ``env_id`` from a validated config."""
    cfg = validate_config(algo, config)
    check_env_id(env_id)
    env = make_vec_env(env_id, n_envs=cfg["n_envs"], seed=seed)
    kwargs = {k: v for k, v in cfg.items() if k not in CONFIG_KEYS}
    return ALGOS[algo](
        cfg.get("policy", "MlpPolicy"),
        env,
        seed=seed,
        tensorboard_log=tensorboard_log,
        device=device,
        **kwargs,
    )


def load_model(path: str | os.PathLike[str], device: str = "auto") -> BaseAlgorithm:
    """Load a saved DQN or RobustDQN, choosing the class from the file's contents.

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: the file is not a readable SB3 model.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"model file {p} does not exist")
    try:
        data, _, _ = load_from_zip_file(p, device="cpu", load_data=True)
    except Exception as exc:  # zipfile.BadZipFile, json errors, pickle errors ...
        raise InvalidArgumentError(
            f"model file {p} is not a readable Stable-Baselines3 model ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"model file {p} is not a readable Stable-Baselines3 model")
    cls = RobustDQN if "eta" in data and "target_form" in data else DQN
    try:
        return cls.load(p, device=device)
    except Exception as exc:
        raise InvalidArgumentError(
            f"model file {p} could not be loaded as {cls.__name__} ({exc})"
        ) from None


class AtomicCheckpointCallback(BaseCallback):
    """Every ``save_freq`` environment steps, atomically replace ``checkpoint.zip`` (and the replay
    buffer) in ``directory``: a crash mid-write leaves the previous checkpoint intact."""

    def __init__(self, directory: str | os.PathLike[str], save_freq: int, verbose: int = 0):
        super().__init__(verbose)
        if save_freq < 1:
            raise InvalidArgumentError(f"save_freq must be a positive integer, got {save_freq!r}")
        self.directory = Path(directory)
        self.save_freq = save_freq
        self._last = 0

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.save_freq:
            self._last = self.num_timesteps
            self.save()
        return True

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_save(lambda tmp: self.model.save(tmp), self.directory / CHECKPOINT_FILE)
        if hasattr(self.model, "save_replay_buffer"):
            _atomic_save(
                lambda tmp: self.model.save_replay_buffer(tmp),  # type: ignore[attr-defined]
                self.directory / BUFFER_FILE,
            )


def _atomic_save(save, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    :ivar model: the trained model.
    :ivar model_path: the saved model (``out_dir/model.zip``).
    :ivar num_timesteps: environment steps done in total.
    :ivar resumed_from: timesteps of the checkpoint training resumed from, or None.
    """

    model: BaseAlgorithm
    model_path: Path
    num_timesteps: int
    resumed_from: int | None


def train(
    algo: str,
    env_id: str,
    config: Mapping[str, Any],
    seed: int,
    out_dir: str | os.PathLike[str],
    *,
    tensorboard_log: str | None = None,
    resume: bool = False,
    force: bool = False,
    progress_bar: bool = False,
    checkpoint_freq: int = 10_000,
    callback: BaseCallback | None = None,
    device: str = "auto",
    verbose: int = 0,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` and save ``out_dir/model.zip`` (plus ``config.yaml``).

    :param algo: ``"dqn"`` or ``"robust-dqn"``.
    :param env_id: a registered gymnasium id (``robust_rl/...`` or any other).
    :param config: hyperparameters (see the module docstring); validated first.
    :param seed: random seed (SB3's ``set_random_seed``: same seed, same result on CPU).
    :param out_dir: output folder. An existing ``model.zip`` is never overwritten without
        ``force``; a checkpoint there is continued with ``resume``.
    :param resume: continue from ``out_dir/checkpoint.zip`` (and its replay buffer).
    :param checkpoint_freq: environment steps between atomic checkpoints.
    """
    cfg = validate_config(algo, config)
    check_env_id(env_id)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    model_path = out / MODEL_FILE
    if model_path.exists() and not force:
        raise OutputExistsError(
            f"{model_path} already exists; pass --force to overwrite it or choose another --out"
        )
    checkpoint = out / CHECKPOINT_FILE
    if resume and not checkpoint.is_file():
        raise MissingFileError(f"--resume: no checkpoint at {checkpoint}")
    out.mkdir(parents=True, exist_ok=True)
    run_info = {"algo": algo, "env": env_id, "seed": seed, "config": cfg}
    config_path = out / "config.yaml"
    if not config_path.exists() or force or resume:
        atomic_write_text(config_path, yaml.safe_dump(run_info, sort_keys=False), force=True)

    resumed_from = None
    if resume:
        model = ALGOS[algo].load(
            checkpoint,
            env=make_vec_env(env_id, n_envs=cfg["n_envs"], seed=seed),
            device=device,
            tensorboard_log=tensorboard_log,
        )
        if (out / BUFFER_FILE).is_file() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(out / BUFFER_FILE)  # type: ignore[attr-defined]
        resumed_from = int(model.num_timesteps)
    else:
        model = make_model(algo, env_id, cfg, seed, tensorboard_log=tensorboard_log, device=device)
    model.verbose = verbose
    remaining = cfg["n_timesteps"] - int(model.num_timesteps)
    ckpt = AtomicCheckpointCallback(out, save_freq=checkpoint_freq)
    callbacks = CallbackList([ckpt] + ([callback] if callback is not None else []))
    if remaining > 0:
        model.learn(
            remaining,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=not resume,
        )
    _atomic_save(lambda tmp: model.save(tmp), model_path)
    atomic_write_text(
        out / "train_info.json",
        json.dumps(
            {**run_info, "num_timesteps": int(model.num_timesteps), "resumed_from": resumed_from},
            indent=2,
        ),
        force=True,
    )
    return TrainResult(model, model_path, int(model.num_timesteps), resumed_from)
