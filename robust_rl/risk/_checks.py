"""Argument validation shared by the estimator core (errors name the argument and what is accepted)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from robust_rl.errors import InvalidArgumentError

NORMS: tuple[str, ...] = ("linf", "l2")
ESTIMATORS: tuple[str, ...] = ("rt-mlmc", "saa")


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise InvalidArgumentError(f"norm must be one of {list(NORMS)}, got {norm!r}")
    return norm


def check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise InvalidArgumentError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def check_eta(eta: float) -> float:
    try:
        value = float(eta)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"eta must be a positive number (math.inf allowed), got {eta!r}"
        ) from None
    if not value > 0 or math.isnan(value):
        raise InvalidArgumentError(f"eta must be a positive number (math.inf allowed), got {eta!r}")
    return value


def check_level(max_level: int, name: str = "max_level") -> int:
    if isinstance(max_level, bool) or not isinstance(max_level, int):
        raise InvalidArgumentError(f"{name} must be a non-negative integer, got {max_level!r}")
    if max_level < 0:
        raise InvalidArgumentError(f"{name} must be a non-negative integer, got {max_level!r}")
    if max_level > 30:
        raise InvalidArgumentError(
            f"{name} must be at most 30 (2**{name} draws per point), got {max_level}"
        )
    return max_level


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value


def as_radius(
    radius: float | Sequence[float] | torch.Tensor, event_shape: torch.Size, like: torch.Tensor
) -> torch.Tensor:
    """Radius as a tensor on ``like``'s device/dtype, checked non-negative and broadcastable to S."""
    try:
        r = torch.as_tensor(radius, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidArgumentError(
            f"radius must be a non-negative float or a tensor/sequence broadcastable to the point "
            f"shape {tuple(event_shape)}, got {radius!r}"
        ) from None
    if not torch.isfinite(r).all() or (r < 0).any():
        raise InvalidArgumentError(f"radius must be finite and non-negative, got {radius!r}")
    try:
        shape = torch.broadcast_shapes(r.shape, event_shape)
    except RuntimeError:
        shape = None
    if shape != event_shape:
        raise InvalidArgumentError(
            f"radius of shape {tuple(r.shape)} does not broadcast to the point shape "
            f"{tuple(event_shape)}; pass a float or a tensor/sequence of shape {tuple(event_shape)}"
        )
    return r


def check_clip(clip: Sequence[float] | None) -> tuple[float, float] | None:
    if clip is None:
        return None
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"clip must be None or a pair (low, high), got {clip!r}"
        ) from None
    if not lo < hi:
        raise InvalidArgumentError(f"clip must satisfy low < high, got {clip!r}")
    return lo, hi


def check_points(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InvalidArgumentError(
            f"x must be a torch.Tensor of shape (B, *S), got {type(x).__name__}"
        )
    if x.dim() < 1 or x.shape[0] == 0:
        raise InvalidArgumentError(f"x must have shape (B, *S) with B >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidArgumentError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    return x


def resolve_control_variate(control_variate: bool | None, estimator: str) -> bool:
    """The RT-MLMC control variate: ``None`` means on for ``"rt-mlmc"``, off for ``"saa"``."""
    if control_variate is None:
        return estimator == "rt-mlmc"
    if not isinstance(control_variate, bool):
        raise InvalidArgumentError(
            f"control_variate must be True, False or None (on for rt-mlmc), got {control_variate!r}"
        )
    if control_variate and estimator != "rt-mlmc":
        raise InvalidArgumentError(
            "control_variate applies to estimator='rt-mlmc' only; pass None (default) or False "
            f"with estimator={estimator!r}"
        )
    return control_variate
