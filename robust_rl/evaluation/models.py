"""Load any saved SB3 model without naming its algorithm.

An SB3 ``.zip`` stores the model's attributes (``data``), among them the policy class. The
algorithm is chosen from a registry (:data:`MODEL_CLASSES`): an entry matches a file when the
stored policy class is a subclass of the entry's policy base **and** every one of the entry's
marker attributes is stored (hyperparameters only that algorithm keeps, e.g. ``clip_range``
for PPO, ``eta`` and ``target_form`` for RobustDQN). Among matching entries the one with the
most markers wins (a subclass such as RobustDQN adds markers to its parent's), and a tie is
refused as ambiguous. Later agents join with :func:`register_model_class`; nothing else names
an algorithm.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from robust_rl.dqn import RobustDQN
from robust_rl.errors import InvalidArgumentError, MissingFileError, UnknownNameError

__all__ = [
    "MODEL_CLASSES",
    "ModelClass",
    "load_model",
    "read_model_class",
    "register_model_class",
]


@dataclass(frozen=True)
class ModelClass:
    """How to recognise one algorithm in a saved file.

    :param name: registry name (``"ppo"``), as in ``robust-rl train --algo``.
    :param cls: the SB3 algorithm class (its ``load`` is used).
    :param policy_base: the stored policy class must be a subclass of this.
    :param markers: attribute names the algorithm stores and its look-alikes do not.
    """

    name: str
    cls: type[BaseAlgorithm]
    policy_base: type[BasePolicy]
    markers: frozenset[str]


#: registry name -> how to recognise and load it.
MODEL_CLASSES: dict[str, ModelClass] = {}


def register_model_class(
    name: str,
    cls: type[BaseAlgorithm],
    policy_base: type[BasePolicy],
    markers: tuple[str, ...] | frozenset[str],
    *,
    replace: bool = False,
) -> ModelClass:
    """Add an algorithm to :data:`MODEL_CLASSES` (see the module docstring for matching).

    :param name: registry name.
    :param cls: the algorithm class.
    :param policy_base: base class of its policies.
    :param markers: attributes only it (and its subclasses) store; a subclass must list its
        parent's markers plus at least one of its own.
    :param replace: replace an existing entry of that name.
    :raises ValueError: the name is taken and ``replace`` is false.
    """
    if name in MODEL_CLASSES and not replace:
        raise InvalidArgumentError(f"model class {name!r} is already registered")
    entry = ModelClass(name, cls, policy_base, frozenset(markers))
    MODEL_CLASSES[name] = entry
    return entry


register_model_class("dqn", DQN, DQNPolicy, ("exploration_fraction", "target_update_interval"))
register_model_class(
    "robust-dqn",
    RobustDQN,
    DQNPolicy,
    ("exploration_fraction", "target_update_interval", "eta", "target_form"),
)
register_model_class("a2c", A2C, ActorCriticPolicy, ("n_steps", "gae_lambda"))
register_model_class(
    "ppo", PPO, ActorCriticPolicy, ("n_steps", "gae_lambda", "clip_range", "n_epochs")
)
register_model_class("sac", SAC, SACPolicy, ("target_entropy", "ent_coef"))
register_model_class("td3", TD3, TD3Policy, ("policy_delay", "target_policy_noise"))

#: robust continuous-control agents of this package: (name, module, class, parent entry); each
#: is recognised by its parent's markers plus the robust agents' ``eta`` and ``radius``
_ROBUST_AGENTS: tuple[tuple[str, str, str, str], ...] = (
    ("robust-sac", "robust_rl.sac", "RobustSAC", "sac"),
    ("robust-td3", "robust_rl.td3", "RobustTD3", "td3"),
)


def _register_robust_agents() -> None:
    for name, module, cls_name, parent in _ROBUST_AGENTS:
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):  # not in this version of the package
            continue
        base = MODEL_CLASSES[parent]
        register_model_class(name, cls, base.policy_base, base.markers | {"eta", "radius"})


_register_robust_agents()


def _read_data(p: Path) -> Mapping[str, Any]:
    """The stored attributes (the zip's ``data`` member) without loading the parameters."""
    if p.is_dir():
        raise InvalidArgumentError(f"model file {p} is a folder; give the model's .zip file")
    if not p.is_file():
        raise MissingFileError(f"model file {p} does not exist")
    if not zipfile.is_zipfile(p):
        raise InvalidArgumentError(
            f"model file {p} is not a readable Stable-Baselines3 model (not a zip file)"
        )
    try:
        with zipfile.ZipFile(p) as archive:
            if "data" not in archive.namelist():
                raise InvalidArgumentError(
                    f"model file {p} is not a readable Stable-Baselines3 model (no data member)"
                )
            data = json_to_data(archive.read("data").decode())
    except InvalidArgumentError:
        raise
    except Exception as exc:  # json errors, pickle errors ...
        raise InvalidArgumentError(
            f"model file {p} is not a readable Stable-Baselines3 model ({exc})"
        ) from None
    if not isinstance(data, dict) or "policy_class" not in data:
        raise InvalidArgumentError(
            f"model file {p} is not a readable Stable-Baselines3 model (no data member)"
        )
    return data


def read_model_class(path: str | os.PathLike[str]) -> ModelClass:
    """The registry entry of the algorithm that saved ``path`` (the file is not fully loaded).

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: not an SB3 model file, or two algorithms match equally well.
    :raises KeyError: an SB3 model of an algorithm not in :data:`MODEL_CLASSES`.
    """
    p = Path(path)
    data = _read_data(p)
    policy = data["policy_class"]
    if not isinstance(policy, type):
        raise InvalidArgumentError(
            f"model file {p}: its policy class could not be restored ({policy!r})"
        )
    keys = set(data)
    matches = [
        e for e in MODEL_CLASSES.values() if issubclass(policy, e.policy_base) and e.markers <= keys
    ]
    if not matches:
        raise UnknownNameError(
            f"model file {p}: policy {policy.__module__}.{policy.__name__} matches no known "
            f"algorithm; known: {', '.join(sorted(MODEL_CLASSES))} (add others with "
            "robust_rl.evaluation.register_model_class)"
        )
    best = max(len(e.markers) for e in matches)
    top = [e for e in matches if len(e.markers) == best]
    if len(top) > 1:
        raise InvalidArgumentError(
            f"model file {p} matches several algorithms equally: {[e.name for e in top]}"
        )
    return top[0]


def load_model(path: str | os.PathLike[str], device: str = "auto") -> BaseAlgorithm:
    """Load a saved SB3 model, choosing its class from the file (see :func:`read_model_class`).

    :param path: the ``.zip`` written by ``model.save``.
    :param device: torch device for the loaded model.
    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: not a readable SB3 model.
    :raises KeyError: an SB3 model of an unknown algorithm.
    """
    entry = read_model_class(path)
    try:
        return entry.cls.load(Path(path), device=device)
    except Exception as exc:
        raise InvalidArgumentError(
            f"model file {path} could not be loaded as {entry.cls.__name__} ({exc})"
        ) from None


def check_model_env(model: Any, env_id: str, name: str = "model") -> None:
    """Refuse, with one line, a model whose observation or action space is not the env's (a
    model trained on another task than the suite's)."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        pairs = (
            ("observation", model.observation_space, env.observation_space),
            ("action", model.action_space, env.action_space),
        )
        for kind, mine, theirs in pairs:
            if (
                type(mine) is not type(theirs)
                or getattr(mine, "shape", None) != getattr(theirs, "shape", None)
                or getattr(mine, "n", None) != getattr(theirs, "n", None)
            ):
                raise InvalidArgumentError(
                    f"{name} was trained on another task: its {kind} space is "
                    f"{_brief(mine)}, {env_id}'s is {_brief(theirs)}; evaluate it on a suite of "
                    "its own task"
                )
    finally:
        env.close()


def _brief(space: Any) -> str:
    """A space in a few words: its type and shape (or number of actions)."""
    n = getattr(space, "n", None)
    detail = f"n={n}" if n is not None else f"shape {getattr(space, 'shape', None)}"
    return f"{type(space).__name__}({detail})"
