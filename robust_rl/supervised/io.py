"""Saving and loading classifiers without executing code from the file.

A classifier file is a ``torch.save`` of a plain dictionary: a format tag, the architecture name
(one of :data:`robust_rl.supervised.models.MODELS`), its constructor keyword arguments, the
``state_dict`` and optional metadata. :func:`load_classifier` reads it with
``torch.load(..., weights_only=True)``, which only unpickles tensors and plain containers, and
rebuilds the network from the registered class: a file cannot run code on load.

The loaded model takes images in ``[0, 1]`` of shape ``(N, 1, H, W)`` and returns logits.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.io import atomic_write_bytes, check_writable
from robust_rl.supervised.models import MODELS

__all__ = ["FORMAT", "load_classifier", "read_classifier_metadata", "save_classifier"]

#: format tag stored in every classifier file
FORMAT = "robust_rl.classifier/v1"


def save_classifier(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Save a classifier built by :func:`~robust_rl.supervised.models.make_model`.

    :param model: a :class:`~robust_rl.supervised.models.WRMCNN`, ``SmallCNN`` or ``MLP``.
    :param path: destination file (conventionally ``model.pt``); written atomically.
    :param metadata: plain values (str, int, float, bool, lists, dicts) stored alongside, e.g. the
        training configuration.
    :param force: overwrite an existing file instead of raising :class:`FileExistsError`.
    :raises ValueError: if the model's architecture is not registered.
    """
    name = getattr(model, "arch_name", None)
    if name not in MODELS or not isinstance(model, MODELS[name]):
        raise InvalidArgumentError(
            f"model must be one of the registered architectures {sorted(MODELS)} "
            f"(see make_model), got {type(model).__name__}"
        )
    check_writable(path, force)
    payload = {
        "format": FORMAT,
        "arch": name,
        "kwargs": model.config(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue(), force=force)


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"classifier file not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise InvalidArgumentError(
            f"{p} is not a readable robust_rl classifier file ({exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidArgumentError(
            f"{p} is not a robust_rl classifier file (expected format {FORMAT!r})"
        )
    return payload


def read_classifier_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dictionary stored by :func:`save_classifier` (plus ``arch`` and ``kwargs``)."""
    payload = _read(path)
    return {"arch": payload["arch"], "kwargs": dict(payload["kwargs"]), **payload["metadata"]}


def load_classifier(path: str | os.PathLike[str], map_location: str = "cpu") -> nn.Module:
    """Load a classifier saved by :func:`save_classifier`, in eval mode.

    :param path: the file.
    :param map_location: device to place the parameters on.
    :raises FileNotFoundError: if the file does not exist.
    :raises ValueError: if the file is corrupt, not a classifier file, names an unknown
        architecture or holds weights that do not fit it.
    """
    payload = _read(path)
    arch = payload.get("arch")
    if arch not in MODELS:
        raise InvalidArgumentError(
            f"{path}: unknown architecture {arch!r}; expected one of {sorted(MODELS)}"
        )
    try:
        model = MODELS[arch](**payload["kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, KeyError) as exc:
        raise InvalidArgumentError(
            f"{path}: weights do not fit architecture {arch!r} ({exc})"
        ) from exc
    return model.to(map_location).eval()
