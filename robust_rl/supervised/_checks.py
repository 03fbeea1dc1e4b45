"""Argument checks shared by the supervised modules (each raises a ValueError naming the argument)."""

from __future__ import annotations

import math

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import NORMS, check_clip, check_norm

__all__ = [
    "NORMS",
    "check_clip",
    "check_inputs",
    "check_norm",
    "check_positive",
    "check_radius",
]


def check_radius(radius: float, name: str = "radius") -> float:
    r = float(radius)
    if not math.isfinite(r) or r < 0:
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {radius!r}")
    return r


def check_positive(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InvalidArgumentError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_inputs(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    box: tuple[float, float] | None = None,
    num_classes: int | None = None,
) -> None:
    """Check a batch: shapes agree, labels are class indices, pixels lie in ``box``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InvalidArgumentError("x must be a floating-point torch.Tensor")
    if x.dim() < 2:
        raise InvalidArgumentError(
            f"x must have shape (B, *S) with a batch dimension, got {tuple(x.shape)}"
        )
    if box is not None and x.numel():
        lo, hi = box
        xmin, xmax = float(x.min()), float(x.max())
        if xmin < lo or xmax > hi:
            raise InvalidArgumentError(
                f"inputs must lie in the box [{lo}, {hi}] (clip); found values in "
                f"[{xmin:.4g}, {xmax:.4g}]"
            )
    if y is None:
        return
    if not isinstance(y, torch.Tensor) or y.dtype not in (
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
    ):
        raise InvalidArgumentError("y must be an integer torch.Tensor of class indices")
    if y.shape != x.shape[:1]:
        raise InvalidArgumentError(
            f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}"
        )
    if num_classes is not None and y.numel():
        ymin, ymax = int(y.min()), int(y.max())
        if ymin < 0 or ymax >= num_classes:
            raise InvalidArgumentError(
                f"labels must be in [0, {num_classes - 1}] (num_classes={num_classes}); found "
                f"values in [{ymin}, {ymax}]"
            )
