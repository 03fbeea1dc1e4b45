"""Argument checks shared by the evaluation modules (errors name the argument)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from robust_rl.errors import InvalidArgumentError

__all__ = ["check_models", "check_nonnegative_float", "check_positive_int", "check_seed"]


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer ``>= 1``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_seed(value: Any, name: str = "seed") -> int:
    """Return ``value`` if it is an integer ``>= 0``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``float(value)`` if it is a finite number ``>= 0``, else raise naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_models(models: Any) -> None:
    """Require a non-empty ``{name: model}`` mapping with string names."""
    if not isinstance(models, Mapping) or len(models) == 0:
        raise InvalidArgumentError(
            f"models must be a non-empty mapping {{name: model}}, got {type(models).__name__}"
        )
    for name in models:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"models: names must be non-empty strings, got {name!r}")
