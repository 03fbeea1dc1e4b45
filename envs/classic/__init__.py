"""Classic-control tasks with adjustable physics: Pendulum, Acrobot and Mountain Car."""

from __future__ import annotations

from robust_rl.envs.classic.acrobot import (
    ACROBOT_TARGET_HEIGHT,
    NOMINAL_ACROBOT_PARAMS,
    PerturbedAcrobotEnv,
)
from robust_rl.envs.classic.mountain_car import (
    NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS,
    NOMINAL_MOUNTAIN_CAR_PARAMS,
    PerturbedMountainCarContinuousEnv,
    PerturbedMountainCarEnv,
)
from robust_rl.envs.classic.pendulum import NOMINAL_PENDULUM_PARAMS, PerturbedPendulumEnv

__all__ = [
    "ACROBOT_TARGET_HEIGHT",
    "NOMINAL_ACROBOT_PARAMS",
    "NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS",
    "NOMINAL_MOUNTAIN_CAR_PARAMS",
    "NOMINAL_PENDULUM_PARAMS",
    "PerturbedAcrobotEnv",
    "PerturbedMountainCarContinuousEnv",
    "PerturbedMountainCarEnv",
    "PerturbedPendulumEnv",
]
