"""Observation normalisation of a run trained with ``VecNormalize``, applied in evaluation.

An agent trained inside SB3's :class:`~stable_baselines3.common.vec_env.VecNormalize` acts on
normalised observations ``clip((o - μ) / sqrt(σ² + ε), -c, c)``, with the running statistics
saved beside the model (the RL Zoo writes ``vecnormalize.pkl``). Evaluating it on raw
observations measures a different policy. :class:`NormalizedModel` puts the saved statistics in
front of the model: every observation the model sees, clean or attacked, is normalised first,
and the attacks differentiate through the normalisation, so an attack radius is in raw
observation units; ``scale="normalized"`` in :func:`~robust_rl.evaluation.evaluate_attacks`
states it in normalised units instead (ε times ``sqrt(σ² + ε)`` per coordinate: the same ball
in the normalised space, before clipping).

The statistics file is read without running code from it (:mod:`robust_rl.safe_pickle`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robust_rl.errors import InvalidArgumentError, MissingFileError

__all__ = [
    "VECNORMALIZE_FILE",
    "NormalizedModel",
    "ObservationNormalization",
    "find_vecnormalize",
    "load_vecnormalize",
]

#: the file name SB3's ``VecNormalize.save`` is given by the RL Zoo and ``robust-rl``
VECNORMALIZE_FILE = "vecnormalize.pkl"


@dataclass(frozen=True)
class ObservationNormalization:
    """``o -> clip((o - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``.

    :param mean: running mean ``(d,)``.
    :param var: running variance ``(d,)``.
    :param clip_obs: clipping bound of the normalised observation.
    :param epsilon: added to the variance.
    """

    mean: np.ndarray
    var: np.ndarray
    clip_obs: float
    epsilon: float

    @property
    def std(self) -> np.ndarray:
        """``sqrt(var + epsilon)``: one normalised unit in raw units, per coordinate."""
        return np.sqrt(self.var + self.epsilon)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalise a batch of observations (numpy; float32 as VecNormalize returns)."""
        out = np.clip((np.asarray(obs) - self.mean) / self.std, -self.clip_obs, self.clip_obs)
        return out.astype(np.float32)

    def torch(self, x: torch.Tensor) -> torch.Tensor:
        """The same on a tensor, differentiable (the attacks' gradients pass through it)."""
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)
        return torch.clamp((x - mean) / std, -self.clip_obs, self.clip_obs)


def load_vecnormalize(path: str | os.PathLike[str]) -> ObservationNormalization:
    """The observation statistics in a file written by ``VecNormalize.save``.

    :raises MissingFileError: no such file.
    :raises InvalidArgumentError: not such a file, Dict observations, or observation
        normalisation switched off in it.
    """
    from robust_rl.safe_pickle import UnsafePickleError, safe_loads

    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"vecnormalize: {p} does not exist")
    try:
        state = safe_loads(p.read_bytes())
    except UnsafePickleError as exc:
        raise InvalidArgumentError(
            f"vecnormalize: {p} names {exc.module}.{exc.name}, which is not read without "
            "running code; expected a file written by VecNormalize.save"
        ) from None
    except Exception as exc:
        raise InvalidArgumentError(f"vecnormalize: {p} is not readable ({exc})") from None
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(state, VecNormalize):
        raise InvalidArgumentError(
            f"vecnormalize: {p} holds a {type(state).__name__}, not VecNormalize statistics"
        )
    if not state.norm_obs:
        raise InvalidArgumentError(f"vecnormalize: {p} does not normalise observations")
    rms = state.obs_rms
    if isinstance(rms, dict):
        raise InvalidArgumentError(
            f"vecnormalize: {p} normalises Dict observations; flat Box observations only"
        )
    return ObservationNormalization(
        mean=np.asarray(rms.mean, dtype=np.float64),
        var=np.asarray(rms.var, dtype=np.float64),
        clip_obs=float(state.clip_obs),
        epsilon=float(state.epsilon),
    )


def find_vecnormalize(model_path: str | os.PathLike[str]) -> Path | None:
    """The statistics saved with a model: ``vecnormalize.pkl`` beside it, or in the one folder
    beside it that has it (the RL Zoo's ``<run>/<env>/vecnormalize.pkl``); None if there is none.

    :raises InvalidArgumentError: several folders beside the model have one.
    """
    folder = Path(model_path).parent
    if (folder / VECNORMALIZE_FILE).is_file():
        return folder / VECNORMALIZE_FILE
    found = sorted(folder.glob(f"*/{VECNORMALIZE_FILE}"))
    if len(found) > 1:
        raise InvalidArgumentError(
            f"model {model_path}: several statistics files beside it ({', '.join(map(str, found))}); "
            "name one with --vecnormalize"
        )
    return found[0] if found else None


class NormalizedModel:
    """``model`` behind its observation normalisation: ``predict(o) = model.predict(norm(o))``.

    Other attributes are the model's (``policy``, ``observation_space``, ...); the attacks read
    :attr:`normalization` and compose their networks with it.

    :param model: an SB3 model (or a :class:`~robust_rl.evaluation.rollouts.RecurrentPredictor`).
    :param normalization: the saved statistics.
    :raises InvalidArgumentError: statistics of another observation size.
    """

    def __init__(self, model: Any, normalization: ObservationNormalization) -> None:
        space = getattr(model, "observation_space", None)
        shape = getattr(space, "shape", None)
        if shape is not None and tuple(shape) != normalization.mean.shape:
            raise InvalidArgumentError(
                f"vecnormalize: statistics of observations {normalization.mean.shape}, the model "
                f"observes {tuple(shape)}"
            )
        self.model = model
        self.normalization = normalization

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def predict(
        self, observation: Any, *, deterministic: bool = True, **kwargs: Any
    ) -> tuple[Any, Any]:
        """The model's action on the normalised observations."""
        return self.model.predict(
            self.normalization(observation), deterministic=deterministic, **kwargs
        )
