"""Values of a training config checked before anything is built (types, ranges, finiteness).

:func:`check_values` is called by :func:`robust_rl.training.validate_config`, so ``robust-rl
train``, every sweep trial (at sweep load, before the first trial runs) and the experiment scripts
refuse a bad value with one line naming the key and what is accepted, instead of training a model
of NaN parameters or failing in SB3 after hundreds of steps. Keys not listed here go to the
algorithm's constructor as given (and its own checks).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import EstimatorSpec

__all__ = ["SEED_MAX", "check_device", "check_seed", "check_values"]

#: the largest seed NumPy's generators take (seeds are 32-bit)
SEED_MAX = 2**32 - 1


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{key} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{key} must be a finite number, got {value!r}")
    return v


def _positive(key: str, value: Any) -> None:
    if callable(value):  # an SB3 schedule (Python API)
        return
    if _number(key, value) <= 0:
        raise InvalidArgumentError(f"{key} must be a finite number > 0, got {value!r}")


def _non_negative(key: str, value: Any) -> None:
    if _number(key, value) < 0:
        raise InvalidArgumentError(f"{key} must be a finite number >= 0, got {value!r}")


def _unit(low_open: bool) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        v = _number(key, value)
        ok = (0 < v <= 1) if low_open else (0 <= v <= 1)
        if not ok:
            interval = "(0, 1]" if low_open else "[0, 1]"
            raise InvalidArgumentError(f"{key} must be in {interval}, got {value!r}")

    return check


def _integer(minimum: int, also: tuple[int, ...] = ()) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"{key} must be an integer >= {minimum}, got {value!r}")
        if value < minimum and value not in also:
            extra = "".join(f" or {a}" for a in also)
            raise InvalidArgumentError(
                f"{key} must be an integer >= {minimum}{extra}, got {value!r}"
            )

    return check


def _train_freq(key: str, value: Any) -> None:
    if isinstance(value, list | tuple):
        if len(value) != 2 or value[1] not in ("step", "episode"):
            raise InvalidArgumentError(
                f"{key} must be a positive integer or [n, 'step'|'episode'], got {value!r}"
            )
        _integer(1)(key, value[0])
        return
    _integer(1)(key, value)


def _ent_coef(key: str, value: Any) -> None:
    if isinstance(value, str):
        if value == "auto":
            return
        if value.startswith("auto_"):
            try:
                init = float(value[5:])
            except ValueError:
                init = -1.0
            if math.isfinite(init) and init > 0:
                return
        raise InvalidArgumentError(
            f"{key} must be a number >= 0, 'auto' or 'auto_<initial value>', got {value!r}"
        )
    _non_negative(key, value)


def _gradient_steps(key: str, value: Any) -> None:
    _integer(1, also=(-1,))(key, value)


#: key -> check (the SB3 constructor arguments whose bad values SB3 does not refuse clearly)
CHECKS: dict[str, Callable[[str, Any], None]] = {
    "learning_rate": _positive,
    "gamma": _unit(low_open=True),
    "tau": _unit(low_open=True),
    "batch_size": _integer(1),
    "buffer_size": _integer(1),
    "learning_starts": _integer(0),
    "train_freq": _train_freq,
    "gradient_steps": _gradient_steps,
    "target_update_interval": _integer(1),
    "policy_delay": _integer(1),
    "exploration_fraction": _unit(low_open=False),
    "exploration_initial_eps": _unit(low_open=False),
    "exploration_final_eps": _unit(low_open=False),
    "max_grad_norm": _positive,
    "ent_coef": _ent_coef,
    "target_policy_noise": _non_negative,
    "target_noise_clip": _non_negative,
    "n_steps": _integer(1),
    "n_epochs": _integer(1),
    "gae_lambda": _unit(low_open=False),
    "clip_range": _positive,
    "vf_coef": _non_negative,
}


def check_values(cls: type, config: Mapping[str, Any]) -> None:
    """Check the values of ``config`` for algorithm class ``cls`` (see the module docstring).

    Also: ``policy`` is one of the class's policy names, and for a robust agent the estimator
    settings form a valid :class:`~robust_rl.risk.EstimatorSpec` (defaults filled in from the
    class's signature).
    """
    for key, check in CHECKS.items():
        if key in config:
            check(key, config[key])
    policy = config.get("policy", "MlpPolicy")
    aliases = getattr(cls, "policy_aliases", {})
    if isinstance(policy, str) and aliases and policy not in aliases:
        raise InvalidArgumentError(
            f"policy must be one of {sorted(aliases)} for {cls.__name__}, got {policy!r}"
        )
    signature = inspect.signature(cls).parameters
    if "eta" in signature and "estimator" in signature:  # a robust agent
        settings = {
            k: config.get(k, signature[k].default) for k in EstimatorSpec.keys() if k in signature
        }
        EstimatorSpec.from_dict(settings)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed NumPy accepts: an integer in ``[0, 2**32 − 1]``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InvalidArgumentError(f"{name} must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return seed


def check_device(device: Any) -> str:
    """A torch device that exists here: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if device == "auto":
        return device
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(
            f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}"
        ) from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(f"device {device!r}: CUDA is not available on this machine")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise InvalidArgumentError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError(f"device {device!r}: MPS is not available on this machine")
    elif d.type not in ("cpu", "cuda", "mps"):
        raise InvalidArgumentError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    return str(device)
