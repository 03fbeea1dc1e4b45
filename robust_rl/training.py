"""Train SB3 and robust agents from a YAML hyperparameter file, with exact checkpoints and resume.

Used by ``robust-rl train``, the experiment scripts and the sweeps. A config file holds the
algorithm's constructor arguments (RL-Zoo style) plus ``n_timesteps``, ``policy`` and ``n_envs``::

    n_timesteps: 50000
    policy: MlpPolicy
    learning_rate: 2.3e-3
    policy_kwargs: {net_arch: [256, 256]}
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cloudpickle
import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import (
    ActionNoise,
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
)

import robust_rl.envs  # noqa: F401  (registers the ids)
from robust_rl._files import FolderLock, check_output_folder, read_yaml
from robust_rl.agents import AGENTS
from robust_rl.checkpoints import (
    Checkpoint,
    CheckpointCallback,
    CheckpointMeta,
    TrainingInterrupted,
    check_finite,
    load_checkpoint,
    restore_environment,
    restore_rng_state,
)
from robust_rl.config_checks import check_device, check_seed, check_values
from robust_rl.errors import InvalidArgumentError, OutputExistsError
from robust_rl.io import atomic_write_text, temp_beside

__all__ = [
    "ALGOS",
    "CHECKPOINT_FILE",
    "CONFIG_KEYS",
    "MODEL_FILE",
    "NOISE_TYPES",
    "TrainResult",
    "action_noise",
    "check_env_id",
    "load_config",
    "load_model",
    "make_model",
    "save_model",
    "train",
    "validate_config",
]

#: algorithm name (CLI ``--algo``) -> class
#: ``--algo`` name -> algorithm class, from the package's registry (:mod:`robust_rl.agents`)
ALGOS: dict[str, type[BaseAlgorithm]] = {
    name: spec.load() for name, spec in AGENTS.items() if spec.trains
}
#: keys of a config file that are not constructor arguments (``noise_type``/``noise_std``: the
#: RL Zoo's names for the exploration noise of off-policy agents, built into ``action_noise``)
CONFIG_KEYS: tuple[str, ...] = ("n_timesteps", "policy", "n_envs", "noise_type", "noise_std")
#: ``noise_type`` values -> SB3 action noise class
NOISE_TYPES: dict[str, type[NormalActionNoise] | type[OrnsteinUhlenbeckActionNoise]] = {
    "normal": NormalActionNoise,
    "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise,
}
_NOT_CONFIGURABLE = {"self", "env", "policy", "seed", "tensorboard_log", "_init_setup_model"}
MODEL_FILE = "model.zip"
#: the complete training state (see :mod:`robust_rl.checkpoints`)
CHECKPOINT_FILE = "checkpoint.pkl"


def check_env_id(env_id: str) -> str:
    """Raise ``ValueError`` naming ``env_id`` if gymnasium does not know it."""
    if not isinstance(env_id, str) or not env_id:
        raise InvalidArgumentError(f"env id must be a non-empty string, got {env_id!r}")
    module, sep, _ = env_id.rpartition(":")
    if sep:  # gymnasium's "module:Env-v0": the module registers the id when imported
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InvalidArgumentError(
                f"env id {env_id!r}: cannot import module {module!r} ({exc})"
            ) from None
    try:
        gym.spec(env_id.rpartition(":")[2])
    except gym.error.Error:
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("robust_rl/")))
        raise InvalidArgumentError(
            f"unknown env id {env_id!r}; registered perturbed ids are: {known} (or any gymnasium id)"
        ) from None
    return env_id


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML hyperparameter file (a mapping) with clear errors."""
    p = Path(path)
    data = read_yaml(p, "config file")
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
    _check_noise(algo, accepted, config)
    check_values(ALGOS[algo], config)
    out = dict(config)
    out["n_timesteps"] = n_timesteps
    out["n_envs"] = n_envs
    return out


def _check_noise(algo: str, accepted: set[str], config: Mapping[str, Any]) -> None:
    if "noise_type" not in config and "noise_std" not in config:
        return
    if "action_noise" not in accepted:
        raise InvalidArgumentError(
            f"noise_type/noise_std: algo {algo!r} takes no exploration noise (off-policy "
            "continuous-action algorithms do: sac, td3 and their robust versions)"
        )
    kind, std = config.get("noise_type"), config.get("noise_std")
    if kind not in NOISE_TYPES:
        raise InvalidArgumentError(f"noise_type must be one of {sorted(NOISE_TYPES)}, got {kind!r}")
    if isinstance(std, bool) or not isinstance(std, int | float) or not std > 0:
        raise InvalidArgumentError(f"noise_std must be a positive number, got {std!r}")


def action_noise(config: Mapping[str, Any], n_actions: int) -> ActionNoise | None:
    """The exploration noise a validated config names (``None`` without ``noise_type``): zero
    mean, standard deviation ``noise_std`` on each of the ``n_actions`` action coordinates."""
    if "noise_type" not in config:
        return None
    sigma = float(config["noise_std"]) * np.ones(n_actions)
    return NOISE_TYPES[config["noise_type"]](mean=np.zeros(n_actions), sigma=sigma)


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
    # SB3 edits some arguments in place (A2C adds optimizer_class to policy_kwargs): pass a copy
    kwargs = copy.deepcopy({k: v for k, v in cfg.items() if k not in CONFIG_KEYS})
    noise = action_noise(cfg, int(np.prod(cast("tuple[int, ...]", env.action_space.shape))))
    if noise is not None:
        kwargs["action_noise"] = noise
    return ALGOS[algo](
        cfg.get("policy", "MlpPolicy"),
        env,
        seed=seed,
        tensorboard_log=tensorboard_log,
        device=device,
        **kwargs,
    )


def load_model(
    path: str | os.PathLike[str], device: str = "auto", trust: bool = False
) -> BaseAlgorithm:
    """Load a saved SB3 model (DQN, RobustDQN, PPO, A2C, SAC, TD3, ...), choosing the class from
    the file's contents, without running code from the file unless ``trust``; see
    :func:`robust_rl.evaluation.models.load_model`.

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: the file is not a readable SB3 model.
    :raises KeyError: an SB3 model of an unknown algorithm.
    """
    from robust_rl.evaluation.models import load_model as _load_model

    return _load_model(path, device=device, trust=trust)


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 model to ``path`` atomically (a temporary file beside it, then a rename), so
    that a reader never sees half a file."""
    target = Path(path)
    _atomic_save(lambda tmp: model.save(tmp), target)
    return target


def _atomic_save(save, target: Path) -> None:
    fd, tmp = temp_beside(target, suffix=target.suffix)  # SB3 keeps a path ending in .zip
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


def _checkpoint_to_resume(
    out: Path, meta: CheckpointMeta, *, resume: bool, force: bool, trust: bool
) -> Checkpoint | None:
    """The checkpoint in ``out`` to continue (``resume``), refused if it belongs to another
    run; ``None`` to start afresh, refused over an unfinished run unless ``force``."""
    path = out / CHECKPOINT_FILE
    if not resume:
        if path.exists() and not force:
            raise OutputExistsError(
                f"{out} holds an unfinished run ({path.name}); pass --resume to continue "
                "it, --force to start afresh, or choose another --out"
            )
        return None
    checkpoint = load_checkpoint(path, trust=trust)
    differ = checkpoint.meta.mismatches(meta.algo, meta.env_id, meta.seed, meta.config)
    if differ:
        raise InvalidArgumentError(
            f"--resume: {path} belongs to another run; it differs in "
            + "; ".join(differ)
            + " (resume with the checkpoint's settings, or start afresh in another --out)"
        )
    return checkpoint


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
    trust: bool = False,
    progress_bar: bool = False,
    checkpoint_freq: int = 10_000,
    callback: BaseCallback | None = None,
    device: str = "auto",
    verbose: int = 0,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` and save ``out_dir/model.zip`` (plus ``config.yaml``).

    :param algo: a key of :data:`ALGOS` (``"dqn"``, ``"robust-dqn"``, ``"sac"``, ...).
    :param env_id: a registered gymnasium id (``robust_rl/...`` or any other).
    :param config: hyperparameters (see the module docstring); validated first.
    :param seed: random seed (SB3's ``set_random_seed``: same seed, same result on CPU).
    :param out_dir: output folder. An existing ``model.zip`` is never overwritten without
        ``force``; a checkpoint there is continued with ``resume``.
    :param resume: continue from ``out_dir/checkpoint.pkl`` (:mod:`robust_rl.checkpoints`): the
        model, optimizer, replay buffer, environments and random states, so that on CPU the
        resumed run equals the uninterrupted one. A checkpoint of another algorithm, env, seed
        or config is refused (:class:`~robust_rl.errors.InvalidArgumentError`), and so is one not
        signed with this user's key (:func:`robust_rl.checkpoints.load_checkpoint`).
    :param force: start afresh over an existing model or an unfinished run.
    :param trust: resume from a checkpoint that is not signed with this user's key (reading it
        runs whatever its pickles name: only for a file you trust).
    :param checkpoint_freq: environment steps between checkpoints (taken at rollout starts).
    :param callback: an extra SB3 callback (e.g. intermediate evaluations for pruning).
    """
    cfg = validate_config(algo, config)
    check_env_id(env_id)
    check_seed(seed)
    check_device(device)
    out = Path(out_dir)
    for name, folder in (("out_dir", out), ("tensorboard_log", tensorboard_log)):
        if folder is not None:
            check_output_folder(name, Path(folder))
    with FolderLock(out, f"training {algo} on {env_id} (seed {seed})"):
        model_path = out / MODEL_FILE
        if model_path.exists() and not force:
            raise OutputExistsError(
                f"{model_path} already exists; pass --force to overwrite it or choose another --out"
            )
        meta = CheckpointMeta(algo=algo, env_id=env_id, seed=seed, config=_as_plain(cfg))
        checkpoint = _checkpoint_to_resume(out, meta, resume=resume, force=force, trust=trust)
        run_info = {"algo": algo, "env": env_id, "seed": seed, "config": meta.config}

        resumed_from = None
        if checkpoint is not None:
            model = _restore_model(checkpoint, cfg, tensorboard_log, device)
            resumed_from = int(model.num_timesteps)
        else:
            model = make_model(
                algo, env_id, cfg, seed, tensorboard_log=tensorboard_log, device=device
            )
        # the run really happens: its config and state are written now (never for a refused run)
        atomic_write_text(
            out / "config.yaml", yaml.safe_dump(run_info, sort_keys=False), force=True
        )
        info_path = out / "train_info.json"

        def write_state(state: str, **extra: Any) -> None:
            info = {**run_info, "state": state, "num_timesteps": int(model.num_timesteps)}
            info.update(resumed_from=resumed_from, **extra)
            atomic_write_text(info_path, json.dumps(info, indent=2), force=True)

        write_state("running")
        model.verbose = verbose
        remaining = cfg["n_timesteps"] - int(model.num_timesteps)
        ckpt = CheckpointCallback(out / CHECKPOINT_FILE, meta, save_freq=checkpoint_freq)
        first: list[BaseCallback] = [ckpt]
        if checkpoint is not None and (noise := getattr(model, "action_noise", None)) is not None:
            first.append(_KeepActionNoise(noise))
        callbacks = CallbackList(first + ([callback] if callback is not None else []))
        try:
            with _graceful_interrupt(ckpt):
                if remaining > 0:
                    model.learn(
                        remaining,
                        callback=callbacks,
                        progress_bar=progress_bar,
                        reset_num_timesteps=checkpoint is None,
                    )
                check_finite(model)
        except TrainingInterrupted as exc:
            write_state("interrupted", checkpoint=str(exc.path))
            raise
        except BaseException as exc:
            message = str(exc).splitlines()[0] if str(exc) else ""
            write_state("failed", error=f"{type(exc).__name__}: {message}".rstrip(": "))
            raise
        save_model(model, model_path)
        write_state("finished")
        return TrainResult(model, model_path, int(model.num_timesteps), resumed_from)


@contextlib.contextmanager
def _graceful_interrupt(ckpt: CheckpointCallback) -> Iterator[None]:
    """The first Ctrl-C asks for a checkpoint at the next rollout start (where a resumed run is
    exact) and then stops training; a second one stops at once. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum: int, frame: Any) -> None:
        if getattr(ckpt, "interrupt_requested", False):
            raise KeyboardInterrupt
        ckpt.interrupt_requested = True
        print(
            "\nCtrl-C: writing a checkpoint at the next rollout start (Ctrl-C again to stop now)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _KeepActionNoise(BaseCallback):
    """SB3's ``learn`` resets the exploration noise; a resumed run continues the checkpoint's
    (an Ornstein-Uhlenbeck process has a state), so put it back when training starts."""

    def __init__(self, noise: ActionNoise) -> None:
        super().__init__()
        self.noise = copy.deepcopy(noise)

    def _on_training_start(self) -> None:
        self.model.action_noise = self.noise

    def _on_step(self) -> bool:
        return True


def _restore_model(
    checkpoint: Any, cfg: Mapping[str, Any], tensorboard_log: str | None, device: str
) -> BaseAlgorithm:
    """Rebuild the model, its replay buffer, environments and random states from a checkpoint."""
    meta = checkpoint.meta
    env = restore_environment(checkpoint)
    exact = env is not None
    if env is None:
        env = make_vec_env(meta.env_id, n_envs=cfg["n_envs"], seed=meta.seed)
    model = ALGOS[meta.algo].load(
        io.BytesIO(checkpoint.model_zip),
        env=env,
        device=device,
        tensorboard_log=tensorboard_log,
        force_reset=not exact,
    )
    if checkpoint.replay_buffer is not None and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(io.BytesIO(checkpoint.replay_buffer))
    # SB3's load reseeds the action space and the environments (set_random_seed) and building
    # the networks draws from the global generators: put every generator back as it was
    model.action_space = cloudpickle.loads(checkpoint.action_space)
    if exact:
        restored = restore_environment(checkpoint)
        assert restored is not None  # exact: the checkpoint holds the environments
        model.set_env(restored, force_reset=False)
    restore_rng_state(checkpoint.rng)
    return model


def _as_plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain YAML data (what ``config.yaml`` holds), for comparisons."""
    return yaml.safe_load(yaml.safe_dump(dict(config)))
