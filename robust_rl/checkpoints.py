"""Complete training checkpoints: resuming continues the same run, bit for bit on CPU.

A checkpoint is one file (written atomically: a crash mid-write leaves the previous checkpoint
intact) that holds everything the next environment step depends on:

* the model as SB3 saves it (parameters, optimizer state, ``num_timesteps``, exploration and
  learning-rate schedules, the last observation and episode-start flags, episode statistics);
* the replay buffer (off-policy algorithms);
* the training environments themselves (the ``VecEnv``, pickled with cloudpickle: physics state
  mid-episode, ``Monitor`` statistics, each env's seeded generator);
* the random states of Python, NumPy (the global generator: epsilon-greedy and replay sampling
  use it), PyTorch (CPU and, when present, CUDA) and the action space's own generator (random
  exploration samples from it; SB3 reseeds it when a model is loaded);
* what the checkpoint belongs to (:class:`CheckpointMeta`: algorithm, env id, seed, config), so
  that a resume with another algorithm or config is refused instead of silently mixing runs.

A checkpoint holds pickles (the environments are arbitrary Python objects), and reading a pickle
can run code, so a checkpoint is signed: HMAC-SHA256 of its contents under a key kept outside
every run folder (:func:`signing_key_path`; created on first use, readable by its owner only).
:func:`load_checkpoint` verifies the signature before it unpickles anything, and refuses a file
signed with another key (a checkpoint from another machine, user or a crafted one) or an unsigned
one unless ``trust=True`` (``robust-rl train --resume --trust``).

Checkpoints are taken at the start of a rollout (after the previous gradient steps), where
resuming with ``learn(..., reset_num_timesteps=False)`` re-enters SB3's loop in the same state.
If the environments cannot be pickled (e.g. a simulator handle without pickle support), the
checkpoint still holds everything else, records ``exact_env=False``, and the resumed run starts
new episodes: :attr:`CheckpointMeta.exact_env` says which case applies.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
import random
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from robust_rl.errors import InvalidArgumentError, MissingFileError, UserError
from robust_rl.io import atomic_write_bytes

__all__ = [
    "CHECKPOINT_FORMAT",
    "KEY_FILE_ENV",
    "Checkpoint",
    "CheckpointCallback",
    "CheckpointMeta",
    "UntrustedCheckpointError",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "signing_key_path",
]

#: version of the checkpoint layout; a file with another version is refused
CHECKPOINT_FORMAT = 2

#: first bytes of a signed checkpoint, followed by the 32-byte signature and the pickle
_MAGIC = b"robust_rl checkpoint 2\n"

#: environment variable naming the signing key file (default: see :func:`signing_key_path`)
KEY_FILE_ENV = "ROBUST_RL_KEY_FILE"


def signing_key_path() -> Path:
    """The file holding this user's checkpoint signing key: ``$ROBUST_RL_KEY_FILE`` if set,
    else ``robust_rl/checkpoint.key`` under ``$XDG_CONFIG_HOME`` (default ``~/.config``).
    Machines that resume each other's checkpoints (a Ray cluster on shared storage) share it
    by pointing ``ROBUST_RL_KEY_FILE`` at one copy."""
    explicit = os.environ.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "robust_rl" / "checkpoint.key"


def _signing_key() -> bytes:
    """The signing key, created (32 random bytes, mode 0600) if it does not exist yet."""
    path = signing_key_path()
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # created meanwhile by another process
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
        key = path.read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot read or create the checkpoint signing key {path} ({exc.strerror}); set "
            f"{KEY_FILE_ENV} to a file in a writable folder"
        ) from None
    if len(key) < 16:
        raise UserError(f"checkpoint signing key {path} is too short; delete it to make a new one")
    return key


def _signature(payload: bytes) -> bytes:
    return hmac.new(_signing_key(), payload, hashlib.sha256).digest()


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint belongs to.

    :ivar algo: algorithm name (``robust-rl train --algo``).
    :ivar env_id: gymnasium id trained on.
    :ivar seed: training seed.
    :ivar config: the validated hyperparameters.
    :ivar num_timesteps: environment steps done when the checkpoint was taken.
    :ivar exact_env: whether the environments' state is in the checkpoint.
    """

    algo: str
    env_id: str
    seed: int
    config: dict[str, Any]
    num_timesteps: int = 0
    exact_env: bool = True

    def mismatches(self, algo: str, env_id: str, seed: int, config: Mapping[str, Any]) -> list[str]:
        """Names of the run settings that differ from this checkpoint's (empty if none)."""
        out = []
        if algo != self.algo:
            out.append(f"algo (checkpoint {self.algo!r}, requested {algo!r})")
        if env_id != self.env_id:
            out.append(f"env (checkpoint {self.env_id!r}, requested {env_id!r})")
        if seed != self.seed:
            out.append(f"seed (checkpoint {self.seed}, requested {seed})")
        changed = sorted(
            k for k in set(config) | set(self.config) if config.get(k) != self.config.get(k)
        )
        if changed:
            out.append(f"config keys {changed}")
        return out


@dataclass(frozen=True)
class Checkpoint:
    """The contents of a checkpoint file (see :func:`load_checkpoint`)."""

    meta: CheckpointMeta
    model_zip: bytes
    replay_buffer: bytes | None
    env: bytes | None
    rng: dict[str, Any]
    action_space: bytes


def capture_rng_state() -> dict[str, Any]:
    """Random states of Python, NumPy's global generator and PyTorch (CPU, CUDA if present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (SB3 draws from the legacy global)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def save_checkpoint(
    model: BaseAlgorithm, meta: CheckpointMeta, path: str | os.PathLike[str]
) -> CheckpointMeta:
    """Write ``model``'s complete training state to ``path`` atomically (overwriting it).

    :return: the metadata written (with ``num_timesteps`` and ``exact_env`` filled in).
    """
    model_buf = io.BytesIO()
    model.save(model_buf)
    buffer_bytes = None
    if getattr(model, "replay_buffer", None) is not None:
        buf = io.BytesIO()
        model.save_replay_buffer(buf)  # type: ignore[attr-defined]
        buffer_bytes = buf.getvalue()
    env = model.get_env()
    env_bytes = None
    if env is not None:
        try:
            env_bytes = cloudpickle.dumps(env)
        except Exception:  # a simulator handle without pickle support: resume restarts episodes
            env_bytes = None
    meta = CheckpointMeta(
        **{
            **asdict(meta),
            "num_timesteps": int(model.num_timesteps),
            "exact_env": env_bytes is not None,
        }
    )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "meta": asdict(meta),
        "model_zip": model_buf.getvalue(),
        "replay_buffer": buffer_bytes,
        "env": env_bytes,
        "rng": capture_rng_state(),
        "action_space": cloudpickle.dumps(model.action_space),
    }
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write_bytes(path, _MAGIC + _signature(body) + body, force=True)
    return meta


class UntrustedCheckpointError(InvalidArgumentError):
    """A checkpoint not signed with this user's key (reading it could run code)."""


def load_checkpoint(path: str | os.PathLike[str], trust: bool = False) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, after checking its signature.

    :param trust: read a checkpoint whose signature does not match this user's key (one from
        another machine or user, or from an earlier version). Reading it runs whatever its pickles
        name: only for files from a source you trust.
    :raises MissingFileError: no file at ``path``.
    :raises UntrustedCheckpointError: the signature is missing or wrong and ``trust`` is false.
    :raises InvalidArgumentError: the file is not a checkpoint of this format.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"no checkpoint at {p}")
    raw = p.read_bytes()
    signed = raw.startswith(_MAGIC)
    start = len(_MAGIC) + 32 if signed else 0
    body = raw[start:]
    if not trust:
        if not signed:
            raise UntrustedCheckpointError(
                f"{p} is not a signed robust_rl checkpoint (an earlier version's, or not a "
                "checkpoint); reading it could run code: resume it only if you trust it "
                "(--trust), or start afresh"
            )
        if not hmac.compare_digest(raw[len(_MAGIC) : start], _signature(body)):
            raise UntrustedCheckpointError(
                f"{p} was not signed with this user's key ({signing_key_path()}): it comes from "
                "another machine or user, or was altered, and reading it could run code; resume "
                "it only if you trust it (--trust)"
            )
    try:
        payload = pickle.loads(body)
    except Exception as exc:
        raise InvalidArgumentError(f"{p} is not a readable robust_rl checkpoint ({exc})") from None
    # format 1 is format 2's payload, unsigned
    if not isinstance(payload, dict) or payload.get("format") not in (1, CHECKPOINT_FORMAT):
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InvalidArgumentError(
            f"{p} is not a robust_rl checkpoint of format {CHECKPOINT_FORMAT} (found {found!r}); "
            "it was written by another version: start the run afresh"
        )
    return Checkpoint(
        CheckpointMeta(**payload["meta"]),
        payload["model_zip"],
        payload["replay_buffer"],
        payload["env"],
        payload["rng"],
        payload["action_space"],
    )


def restore_environment(checkpoint: Checkpoint) -> VecEnv | None:
    """The pickled training environments, or None if the checkpoint has none."""
    return None if checkpoint.env is None else cloudpickle.loads(checkpoint.env)


#: environment steps between checks that the parameters are finite (between checkpoints)
_FINITE_CHECK_FREQ = 1_000


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: a checkpoint was written at ``num_timesteps`` to ``path``."""

    def __init__(self, path: Path, num_timesteps: int) -> None:
        super().__init__(f"interrupted at step {num_timesteps}; checkpoint {path}")
        self.path = path
        self.num_timesteps = num_timesteps


class TrainingDivergedError(UserError, FloatingPointError):
    """The model's parameters became NaN or infinite (a learning rate too large, a bad reward)."""


def check_finite(model: BaseAlgorithm) -> None:
    """Raise :class:`TrainingDivergedError` if any parameter of ``model``'s policy is not finite."""
    for name, param in model.policy.named_parameters():
        if not torch.isfinite(param).all():
            raise TrainingDivergedError(
                f"training diverged at step {model.num_timesteps}: parameter {name} is not finite "
                "(NaN or inf; e.g. a learning rate too large); the last checkpoint before it is "
                "kept and no model was saved"
            )


class CheckpointCallback(BaseCallback):
    """Save a complete checkpoint at the first rollout start after every ``save_freq`` steps.

    Rollout starts are the points where SB3's loop can be re-entered exactly (the previous
    rollout's gradient steps are done), so a run resumed from any checkpoint matches the
    uninterrupted run.

    :param path: the checkpoint file (replaced atomically each time).
    :param meta: what the run is (algorithm, env id, seed, config).
    :param save_freq: environment steps between checkpoints.
    """

    def __init__(
        self, path: str | os.PathLike[str], meta: CheckpointMeta, save_freq: int, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise InvalidArgumentError(f"save_freq must be a positive integer, got {save_freq!r}")
        self.path = Path(path)
        self.meta = meta
        self.save_freq = save_freq
        self._last = 0
        self._last_check = 0
        #: set by Ctrl-C (robust_rl.training): checkpoint at the next rollout start, then stop
        self.interrupt_requested = False

    def _on_training_start(self) -> None:
        self._last = int(self.model.num_timesteps)
        self._last_check = self._last

    def _on_rollout_start(self) -> None:
        due = self.num_timesteps - self._last >= self.save_freq
        if due or self.interrupt_requested:
            check_finite(self.model)  # never replace a good checkpoint by a diverged one
            self._last = self._last_check = int(self.num_timesteps)
            save_checkpoint(self.model, self.meta, self.path)
            if self.interrupt_requested:
                raise TrainingInterrupted(self.path, int(self.num_timesteps))
        elif self.num_timesteps - self._last_check >= _FINITE_CHECK_FREQ:
            self._last_check = int(self.num_timesteps)
            check_finite(self.model)

    def _on_step(self) -> bool:
        return True
