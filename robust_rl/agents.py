"""The one registry of the algorithms ``robust_rl`` trains, loads and exports.

Each entry names its class by ``"module:Class"`` (as Gymnasium's registry names entry points),
so that reading the registry imports neither torch nor Stable-Baselines3. Everything else is
derived from it: ``robust-rl train --algo`` and :data:`robust_rl.training.ALGOS`, the recognition
of saved models by :func:`robust_rl.evaluation.load_model` (:data:`~robust_rl.evaluation.models.MODEL_CLASSES`:
an entry matches a file whose policy class subclasses ``policy_base`` and which stores every
``markers`` attribute), and the package's exports (``robust_rl.RobustDQN``, ...).

A robust agent is its SB3 parent plus the robust arguments (tested); its markers are its
parent's plus the robust settings it stores. sb3-contrib's algorithms (TQC, CrossQ, QR-DQN, TRPO,
ARS, RecurrentPPO, MaskablePPO; the ``[contrib]`` extra) are registered for loading and
evaluation only (``trains=False``: train them with sb3-contrib or the RL Zoo), and only where
sb3-contrib is installed (:meth:`AgentSpec.available`).

>>> AGENTS["robust-sac"].parent, AGENTS["robust-sac"].class_name
('sac', 'RobustSAC')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from robust_rl.errors import InvalidArgumentError, UnknownNameError

__all__ = ["AGENTS", "AgentSpec", "get_agent", "register_agent"]


@dataclass(frozen=True)
class AgentSpec:
    """One algorithm.

    :param name: registry name (``robust-rl train --algo``), e.g. ``"robust-dqn"``.
    :param entry_point: ``"module:Class"`` of the algorithm, or the class itself.
    :param policy_base: ``"module:Class"`` (or the class) its stored policy class subclasses.
    :param markers: attributes a saved model of it stores and its look-alikes do not.
    :param parent: registry name of the SB3 algorithm it extends (robust agents).
    :param trains: ``robust-rl train --algo`` offers it (else it is loaded and evaluated only).
    :param requires: the optional package it comes from (``"sb3_contrib"``), None if always
        there.
    """

    name: str
    entry_point: str | type
    policy_base: str | type
    markers: frozenset[str]
    parent: str | None = None
    trains: bool = True
    requires: str | None = None

    def available(self) -> bool:
        """Whether its package is installed (always, without :attr:`requires`)."""
        import importlib.util

        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    @property
    def class_name(self) -> str:
        """The class's name, without importing it."""
        if isinstance(self.entry_point, type):
            return self.entry_point.__name__
        return self.entry_point.rsplit(":", 1)[1]

    @property
    def module(self) -> str:
        """The class's module, without importing it."""
        if isinstance(self.entry_point, type):
            return self.entry_point.__module__
        return self.entry_point.split(":", 1)[0]

    def load(self) -> Any:
        """The algorithm class (imported on first use)."""
        return _resolve(self.entry_point)

    def load_policy_base(self) -> Any:
        """The policy base class (imported on first use)."""
        return _resolve(self.policy_base)


def _resolve(target: str | type) -> Any:
    if isinstance(target, type):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


#: registry name -> entry, in registration order
AGENTS: dict[str, AgentSpec] = {}


def register_agent(
    name: str,
    entry_point: str | type,
    policy_base: str | type,
    markers: tuple[str, ...] | frozenset[str],
    *,
    parent: str | None = None,
    replace: bool = False,
    trains: bool = True,
    requires: str | None = None,
) -> AgentSpec:
    """Add an algorithm to :data:`AGENTS`.

    :param name: registry name.
    :param entry_point: ``"module:Class"`` or the class.
    :param policy_base: ``"module:Class"`` or the class of its policies' base.
    :param markers: attributes only it (and its subclasses) store; an agent with a ``parent``
        lists its parent's markers plus at least one of its own.
    :param parent: the registered algorithm it extends.
    :param replace: replace an existing entry of that name.
    :param trains: offered by ``robust-rl train --algo``.
    :param requires: the optional package it comes from.
    :raises InvalidArgumentError: the name is taken and ``replace`` is false; an unknown parent;
        a ``"module:Class"`` string without the colon.
    """
    if name in AGENTS and not replace:
        raise InvalidArgumentError(f"agent {name!r} is already registered")
    for what, target in (("entry_point", entry_point), ("policy_base", policy_base)):
        if isinstance(target, str) and ":" not in target:
            raise InvalidArgumentError(f"{what} must be 'module:Class' or a class, got {target!r}")
    if parent is not None and parent not in AGENTS:
        raise InvalidArgumentError(f"agent {name!r}: unknown parent {parent!r}")
    spec = AgentSpec(name, entry_point, policy_base, frozenset(markers), parent, trains, requires)
    AGENTS[name] = spec
    return spec


def get_agent(name: str) -> AgentSpec:
    """The entry of ``name``.

    :raises UnknownNameError: not registered (the message lists the names).
    """
    try:
        return AGENTS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown algorithm {name!r}; known: {', '.join(sorted(AGENTS))}"
        ) from None


_SB3 = "stable_baselines3"
_DQN_MARKERS = ("exploration_fraction", "target_update_interval")
_SAC_MARKERS = ("target_entropy", "ent_coef")
_TD3_MARKERS = ("policy_delay", "target_policy_noise")
#: what every robust agent stores beside its parent's settings
_ROBUST_MARKERS = ("eta", "radius")

register_agent("dqn", f"{_SB3}:DQN", f"{_SB3}.dqn.policies:DQNPolicy", _DQN_MARKERS)
register_agent("sac", f"{_SB3}:SAC", f"{_SB3}.sac.policies:SACPolicy", _SAC_MARKERS)
register_agent("td3", f"{_SB3}:TD3", f"{_SB3}.td3.policies:TD3Policy", _TD3_MARKERS)
register_agent(
    "ppo",
    f"{_SB3}:PPO",
    f"{_SB3}.common.policies:ActorCriticPolicy",
    ("n_steps", "gae_lambda", "clip_range", "n_epochs"),
)
register_agent(
    "a2c", f"{_SB3}:A2C", f"{_SB3}.common.policies:ActorCriticPolicy", ("n_steps", "gae_lambda")
)
register_agent(
    "robust-dqn",
    "robust_rl.dqn:RobustDQN",
    f"{_SB3}.dqn.policies:DQNPolicy",
    (*_DQN_MARKERS, "eta", "target_form"),
    parent="dqn",
)
register_agent(
    "robust-sac",
    "robust_rl.sac:RobustSAC",
    f"{_SB3}.sac.policies:SACPolicy",
    (*_SAC_MARKERS, *_ROBUST_MARKERS),
    parent="sac",
)
register_agent(
    "robust-td3",
    "robust_rl.td3:RobustTD3",
    f"{_SB3}.td3.policies:TD3Policy",
    (*_TD3_MARKERS, *_ROBUST_MARKERS),
    parent="td3",
)

#: sb3-contrib (the ``[contrib]`` extra): loaded and evaluated, not trained here; names as the
#: RL Zoo's ``--algo``
_CONTRIB = "sb3_contrib"
for _name, _cls, _policy, _markers in (
    ("tqc", "TQC", "tqc.policies:TQCPolicy", ("top_quantiles_to_drop_per_net",)),
    ("crossq", "CrossQ", "crossq.policies:CrossQPolicy", ("policy_delay", "ent_coef")),
    ("qrdqn", "QRDQN", "qrdqn.policies:QRDQNPolicy", _DQN_MARKERS),
    (
        "trpo",
        "TRPO",
        "common.policies:ActorCriticPolicy",
        ("n_steps", "gae_lambda", "cg_max_steps"),
    ),
    ("ars", "ARS", "ars.policies:ARSPolicy", ("n_delta", "n_top")),
    (
        "ppo_lstm",
        "RecurrentPPO",
        "common.recurrent.policies:RecurrentActorCriticPolicy",
        ("n_steps", "gae_lambda", "clip_range", "n_epochs"),
    ),
    (
        "ppo_mask",
        "MaskablePPO",
        "common.maskable.policies:MaskableActorCriticPolicy",
        ("n_steps", "gae_lambda", "clip_range", "n_epochs"),
    ),
):
    _module = _policy.split(":")[0]
    _base = f"{_SB3}.{_policy}" if _module == "common.policies" else f"{_CONTRIB}.{_policy}"
    register_agent(_name, f"{_CONTRIB}:{_cls}", _base, _markers, trains=False, requires=_CONTRIB)
