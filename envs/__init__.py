"""Perturbable environments, installed as :mod:`robust_rl.envs`.

Importing this module (which ``import robust_rl`` does as soon as gymnasium is loaded)
registers every id with gymnasium; registering is idempotent. Use it as::

    import gymnasium as gym
    import robust_rl  # registers the ids

    env = gym.make("robust_rl/Hopper-v5")
    env.unwrapped.get_params()["torso_mass"]            # 3.665..., read from the simulator
    obs, info = env.reset(seed=0, options={"params": {"torso_mass": 6.0, "friction": 0.5}})
    info["params"]                                      # the episode's physics

Every perturbable environment has the same interface (:class:`~.params.PerturbableEnv`, as in
RRLS): ``env.unwrapped.get_params()``, ``env.unwrapped.set_params(**params)`` (an unknown
name or invalid value raises :class:`ValueError` naming it and what is accepted),
``reset(options={"params": {...}})`` and ``info["params"]``.

Tasks (nominal ids; :data:`TASK_IDS`), each with a domain-randomised id drawing from its
uncertainty set (:data:`UNCERTAINTY_SETS`) and named perturbed variants:

* ``robust_rl/CartPole-v1``: ``gravity``, ``masscart``, ``masspole``, ``length``, ``force_mag``;
  variants ``CartPoleHeavyPole-v1``, ``CartPoleShortPole-v1``, ``CartPoleStrongGravity-v1``;
  ``CartPoleDomainRandomized-v1`` (log-uniform over :data:`DEFAULT_CARTPOLE_RANGES`).
* ``robust_rl/Pendulum-v1``: ``g``, ``m``, ``l``, ``max_torque`` (only lowered);
  ``PendulumHeavy-v1``, ``PendulumWeakMotor-v1``, ``PendulumDomainRandomized-v1``.
* ``robust_rl/Acrobot-v1``: ``link_mass_1``, ``link_mass_2``, ``link_length_1``,
  ``link_length_2``; ``AcrobotHeavyTip-v1``, ``AcrobotDomainRandomized-v1``.
* ``robust_rl/MountainCar-v0``: ``force``, ``gravity``; ``MountainCarWeakEngine-v0``,
  ``MountainCarDomainRandomized-v0``.
* ``robust_rl/MountainCarContinuous-v0``: ``power``, ``gravity``;
  ``MountainCarContinuousWeakEngine-v0``, ``MountainCarContinuousDomainRandomized-v0``.
* MuJoCo (``pip install "robust-rl[mujoco]"``): ``robust_rl/InvertedPendulum-v5``
  (``pole_mass``, ``cart_mass``), ``robust_rl/Hopper-v5``, ``robust_rl/HalfCheetah-v5`` and
  ``robust_rl/Walker2d-v5`` (body masses and ``friction``), with ``...HeavyTorso-v5`` /
  ``...LowFriction-v5`` (``InvertedPendulumHeavyPole-v5``) variants and
  ``...DomainRandomized-v5`` ids. They register without ``mujoco``; making one without it
  raises :class:`~.mujoco.MujocoNotInstalledError` naming the install command.

Time limits and reward thresholds are those of gymnasium's ids of the same name.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from robust_rl.envs.cartpole import (
    CARTPOLE_PARAM_NAMES,
    NOMINAL_CARTPOLE_PARAMS,
    PerturbedCartPoleEnv,
)
from robust_rl.envs.mujoco import MUJOCO_AVAILABLE, MujocoNotInstalledError
from robust_rl.envs.params import ParamSpec, PerturbableEnv
from robust_rl.envs.tasks import (
    CARTPOLE_DOMAIN_RANDOMIZED_ID,
    CARTPOLE_SUITE,
    CARTPOLE_SUITE_PARAMS,
    NOMINAL_PARAMS,
    TASK_IDS,
    TASKS,
    UNCERTAINTY_SETS,
    TaskSpec,
    get_task,
)
from robust_rl.envs.wrappers import (
    DEFAULT_CARTPOLE_RANGES,
    DomainRandomization,
    make_domain_randomized,
    make_domain_randomized_cartpole,
)

__all__ = [
    "CARTPOLE_DOMAIN_RANDOMIZED_ID",
    "CARTPOLE_PARAM_NAMES",
    "CARTPOLE_SUITE",
    "CARTPOLE_SUITE_PARAMS",
    "DEFAULT_CARTPOLE_RANGES",
    "MUJOCO_AVAILABLE",
    "NOMINAL_CARTPOLE_PARAMS",
    "NOMINAL_PARAMS",
    "TASK_IDS",
    "UNCERTAINTY_SETS",
    "DomainRandomization",
    "MujocoNotInstalledError",
    "ParamSpec",
    "PerturbableEnv",
    "PerturbedCartPoleEnv",
    "TaskSpec",
    "get_task",
    "make_domain_randomized",
    "make_domain_randomized_cartpole",
    "register_envs",
    "registered_ids",
]


def _registrations() -> list[tuple[str, dict[str, Any]]]:
    """``(id, gym.register keyword arguments)`` of every id, from :data:`TASKS`."""
    out: list[tuple[str, dict[str, Any]]] = []
    for task in TASKS:
        limits = {
            "max_episode_steps": task.max_episode_steps,
            "reward_threshold": task.reward_threshold,
        }
        for env_id, params in {task.id: {}, **task.variants}.items():
            out.append(
                (env_id, {"entry_point": task.entry_point, "kwargs": dict(params), **limits})
            )
        dr: dict[str, Any] = {
            "entry_point": "robust_rl.envs.wrappers:make_domain_randomized",
            "kwargs": {"task": task.id},
        }
        out.append((task.domain_randomized_id, {**dr, **limits}))
    return out


def registered_ids() -> tuple[str, ...]:
    """Every id this package registers (nominal, variants, domain-randomised), in order."""
    return tuple(env_id for env_id, _ in _registrations())


def register_envs() -> None:
    """Register every id with gymnasium; ids already registered are left alone."""
    for env_id, kwargs in _registrations():
        if env_id not in gym.registry:
            gym.register(id=env_id, **kwargs)


register_envs()
