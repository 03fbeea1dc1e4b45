"""Perturbed environments, installed as :mod:`robust_rl.envs`.

Importing this module (which ``import robust_rl`` does) registers the CartPole suite with
gymnasium; registering is idempotent. Use it as::

    import gymnasium as gym
    import robust_rl.envs  # noqa: F401  (registers the ids)

    env = gym.make(robust_rl.envs.CARTPOLE_SUITE["heavy pole"])

Every id is registered with ``max_episode_steps=500`` and ``reward_threshold=475.0``, like
gymnasium's ``CartPole-v1``:

* ``robust_rl/CartPole-v1``: nominal physics (identical to gymnasium's ``CartPole-v1``);
* ``robust_rl/CartPoleHeavyPole-v1``: ``masspole=2.0`` (nominal 0.1);
* ``robust_rl/CartPoleShortPole-v1``: ``length=0.25`` (nominal 0.5; half the pole's length);
* ``robust_rl/CartPoleStrongGravity-v1``: ``gravity=24.5`` (nominal 9.8);
* ``robust_rl/CartPoleDomainRandomized-v1``: parameters redrawn at each reset from
  :data:`DEFAULT_CARTPOLE_RANGES` (log-uniform), the domain-randomisation baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from robust_rl.envs.cartpole import (
    CARTPOLE_PARAM_NAMES,
    NOMINAL_CARTPOLE_PARAMS,
    PerturbedCartPoleEnv,
)
from robust_rl.envs.wrappers import (
    DEFAULT_CARTPOLE_RANGES,
    DomainRandomization,
    make_domain_randomized_cartpole,
)

__all__ = [
    "CARTPOLE_DOMAIN_RANDOMIZED_ID",
    "CARTPOLE_PARAM_NAMES",
    "CARTPOLE_SUITE",
    "CARTPOLE_SUITE_PARAMS",
    "DEFAULT_CARTPOLE_RANGES",
    "NOMINAL_CARTPOLE_PARAMS",
    "DomainRandomization",
    "PerturbedCartPoleEnv",
    "make_domain_randomized_cartpole",
    "register_envs",
]

#: Display name -> registered id of the test MDPs, the nominal one first.
CARTPOLE_SUITE: Mapping[str, str] = {
    "original": "robust_rl/CartPole-v1",
    "heavy pole": "robust_rl/CartPoleHeavyPole-v1",
    "short pole": "robust_rl/CartPoleShortPole-v1",
    "strong gravity": "robust_rl/CartPoleStrongGravity-v1",
}

#: Registered id -> the physics parameters it overrides (the others are nominal).
CARTPOLE_SUITE_PARAMS: Mapping[str, Mapping[str, float]] = {
    "robust_rl/CartPole-v1": {},
    "robust_rl/CartPoleHeavyPole-v1": {"masspole": 2.0},
    "robust_rl/CartPoleShortPole-v1": {"length": 0.25},
    "robust_rl/CartPoleStrongGravity-v1": {"gravity": 24.5},
}

#: Id of the domain-randomised training environment (see :func:`make_domain_randomized_cartpole`).
CARTPOLE_DOMAIN_RANDOMIZED_ID = "robust_rl/CartPoleDomainRandomized-v1"

_LIMITS: dict[str, Any] = {"max_episode_steps": 500, "reward_threshold": 475.0}


def register_envs() -> None:
    """Register the ids above with gymnasium; ids already registered are left alone."""
    for env_id, params in CARTPOLE_SUITE_PARAMS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="robust_rl.envs.cartpole:PerturbedCartPoleEnv",
                kwargs=dict(params),
                **_LIMITS,
            )
    if CARTPOLE_DOMAIN_RANDOMIZED_ID not in gym.registry:
        gym.register(
            id=CARTPOLE_DOMAIN_RANDOMIZED_ID,
            entry_point="robust_rl.envs.wrappers:make_domain_randomized_cartpole",
            **_LIMITS,
        )


register_envs()
