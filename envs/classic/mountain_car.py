"""Mountain Car (discrete and continuous) with adjustable engine strength and gravity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv

from robust_rl.envs.params import ParamSpec, PerturbableEnv

__all__ = [
    "NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS",
    "NOMINAL_MOUNTAIN_CAR_PARAMS",
    "PerturbedMountainCarContinuousEnv",
    "PerturbedMountainCarEnv",
]

#: Parameters of :class:`PerturbedMountainCarEnv` at their gymnasium ``MountainCar-v0`` values.
NOMINAL_MOUNTAIN_CAR_PARAMS: Mapping[str, float] = {"force": 0.001, "gravity": 0.0025}

#: Parameters of :class:`PerturbedMountainCarContinuousEnv` at their
#: ``MountainCarContinuous-v0`` values.
NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS: Mapping[str, float] = {"power": 0.0015, "gravity": 0.0025}

_GRAVITY = ParamSpec("gravity", "gravity term of the velocity update (track units per step²)")


class PerturbedMountainCarEnv(PerturbableEnv, MountainCarEnv):
    """Mountain Car (discrete actions) whose engine force and gravity can be changed.

    ## Description

    Gymnasium's ``MountainCar-v0`` (Moore, 1990): an under-powered car in a valley
    ``y = sin(3x)`` must rock back and forth to reach the flag at ``x = 0.5``. Per step,

    .. math::

        v_{t+1} = \\mathrm{clip}(v_t + (a - 1)\\,\\mathrm{force} - \\cos(3 x_t)\\,\\mathrm{gravity},
        \\pm 0.07), \\qquad x_{t+1} = \\mathrm{clip}(x_t + v_{t+1}, -1.2, 0.6),

    with ``a ∈ {0, 1, 2}`` (push left, no push, push right). Everything except the two
    parameters is gymnasium's; with the defaults it reproduces ``MountainCar-v0`` step for step.
    Both parameters are read by every step, so :meth:`set_params` takes effect at once.

    ## Arguments

    | Parameter | Default  | Description                                         |
    |-----------|----------|-----------------------------------------------------|
    | `force`   | `0.001`  | velocity change of one push (engine strength)       |
    | `gravity` | `0.0025` | scale of the slope's pull, ``-cos(3x) * gravity``    |

    Both must be positive finite numbers. ``-1`` reward per step, termination at the flag,
    truncation after 200 steps (registered ids).

    Registered ids: ``robust_rl/MountainCar-v0`` (nominal), ``robust_rl/MountainCarWeakEngine-v0``
    (``force=0.0008``) and ``robust_rl/MountainCarDomainRandomized-v0``.
    """

    TASK_NAME = "MountainCar"
    PARAM_SPECS = (
        ParamSpec("force", "velocity change of one push (track units per step)"),
        _GRAVITY,
    )

    def __init__(
        self,
        render_mode: str | None = None,
        goal_velocity: float = 0,
        force: float = NOMINAL_MOUNTAIN_CAR_PARAMS["force"],
        gravity: float = NOMINAL_MOUNTAIN_CAR_PARAMS["gravity"],
    ) -> None:
        checked = self.check_params({"force": force, "gravity": gravity})
        super().__init__(render_mode=render_mode, goal_velocity=goal_velocity)
        self._write_params(checked)

    def _read_params(self) -> dict[str, float]:
        return {"force": float(self.force), "gravity": float(self.gravity)}

    def _write_params(self, params: dict[str, float]) -> None:
        for name, value in params.items():
            setattr(self, name, value)


class PerturbedMountainCarContinuousEnv(PerturbableEnv, Continuous_MountainCarEnv):
    """Mountain Car (continuous action) whose engine power and gravity can be changed.

    ## Description

    Gymnasium's ``MountainCarContinuous-v0``. Per step, with ``u`` the action clipped to
    ``[-1, 1]``,

    .. math::

        v_{t+1} = \\mathrm{clip}(v_t + u\\,\\mathrm{power} - \\mathrm{gravity}\\cos(3 x_t),
        \\pm 0.07), \\qquad x_{t+1} = \\mathrm{clip}(x_t + v_{t+1}, -1.2, 0.6),

    and the velocity is zeroed when the car hits the left wall. Gymnasium hard-codes the
    gravity term (``0.0025``) inside ``step``; this class re-implements ``step`` with
    ``gravity`` as an attribute and otherwise the same arithmetic, so the defaults reproduce
    ``MountainCarContinuous-v0`` step for step (reward ``+100`` at the flag minus
    ``0.1 a²`` per step, truncation after 999 steps for the registered ids).

    ## Arguments

    | Parameter | Default  | Description                                        |
    |-----------|----------|----------------------------------------------------|
    | `power`   | `0.0015` | velocity change of a full-throttle step            |
    | `gravity` | `0.0025` | scale of the slope's pull, ``-cos(3x) * gravity``   |

    Both must be positive finite numbers.

    Registered ids: ``robust_rl/MountainCarContinuous-v0`` (nominal),
    ``robust_rl/MountainCarContinuousWeakEngine-v0`` (``power=0.0012``) and
    ``robust_rl/MountainCarContinuousDomainRandomized-v0``.
    """

    TASK_NAME = "MountainCarContinuous"
    _STATE_DTYPE = np.float32
    PARAM_SPECS = (
        ParamSpec("power", "velocity change of a full-throttle step (track units per step)"),
        _GRAVITY,
    )

    def __init__(
        self,
        render_mode: str | None = None,
        goal_velocity: float = 0,
        power: float = NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS["power"],
        gravity: float = NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS["gravity"],
    ) -> None:
        checked = self.check_params({"power": power, "gravity": gravity})
        self.gravity = NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS["gravity"]
        super().__init__(render_mode=render_mode, goal_velocity=goal_velocity)
        self._write_params(checked)

    def _read_params(self) -> dict[str, float]:
        return {"power": float(self.power), "gravity": float(self.gravity)}

    def _write_params(self, params: dict[str, float]) -> None:
        for name, value in params.items():
            setattr(self, name, value)

    def _physics_step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one step with the current ``power`` and ``gravity`` (see the class doc)."""
        position, velocity = self.state[0], self.state[1]
        throttle = min(max(action[0], self.min_action), self.max_action)
        velocity += throttle * self.power - self.gravity * math.cos(3 * position)
        velocity = min(max(velocity, -self.max_speed), self.max_speed)
        position += velocity
        position = min(max(position, self.min_position), self.max_position)
        if position == self.min_position and velocity < 0:
            velocity = 0
        terminated = bool(position >= self.goal_position and velocity >= self.goal_velocity)
        reward = (100.0 if terminated else 0.0) - math.pow(action[0], 2) * 0.1
        self.state = np.array([position, velocity], dtype=np.float32)
        if self.render_mode == "human":
            self.render()
        return self.state, reward, terminated, False, {}
