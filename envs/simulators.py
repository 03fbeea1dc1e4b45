r"""Batched, parameterised one-step simulators of the classic-control tasks (the MuJoCo robots'
is :class:`robust_rl.envs.mujoco.simulator.MujocoSimulator`).

A simulator advances many states at once, each under its own physics parameters:

.. math::

    (s'_i, r_i, d_i) = f_{p_i}(s_i, a_i), \qquad i = 1..N,

with the same arithmetic as the scalar environment's ``step`` (float64 states, the scalar env's
casts), so that a row equals ``env.step`` from the same state, action and parameters (tested to
``1e-6``, termination flags exactly). The robust agents' dynamics-set target re-simulates replay
transitions with them (:class:`robust_rl.common.dynamics.DynamicsTarget`).

* ``states``: ``(N, state_dim)`` float64, the env's ``physics_state`` (what
  :meth:`~robust_rl.envs.params.PerturbableEnv.get_physics_state` returns and the env reports as
  ``info["physics_state"]`` for the state *before* each step);
* ``actions``: ``(N,)`` integers for discrete tasks, ``(N, action_dim)`` for continuous ones, as
  the env receives them (not scaled to ``[-1, 1]``);
* ``params``: ``(N, P)`` float64 in the order of the env's ``param_names()``.

Only termination is simulated: the time limit is the caller's (the stored transition knows
whether it was truncated).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robust_rl.errors import InvalidArgumentError

__all__ = [
    "SIMULATORS",
    "AcrobotSimulator",
    "BatchedSimulator",
    "CartPoleSimulator",
    "EpisodeBatch",
    "MountainCarContinuousSimulator",
    "MountainCarSimulator",
    "PendulumSimulator",
    "SimulatedStep",
]


@dataclass(frozen=True)
class SimulatedStep:
    """What :meth:`BatchedSimulator.step` returns.

    :ivar states: ``(N, state_dim)`` float64 next physics states.
    :ivar observations: ``(N, *obs_shape)`` float32 next observations, as the env returns them.
    :ivar rewards: ``(N,)`` float64 rewards.
    :ivar terminated: ``(N,)`` bool termination flags.
    """

    states: np.ndarray
    observations: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray


class BatchedSimulator(ABC):
    """One step of a task for ``N`` (state, action, parameters) rows at once."""

    #: parameter names, in the order of the columns of ``params``
    param_names: ClassVar[tuple[str, ...]] = ()
    #: length of a physics state
    state_dim: ClassVar[int] = 0

    def step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        """Advance every row one step (see the module doc for shapes)."""
        states = np.asarray(states, dtype=np.float64)
        params = np.asarray(params, dtype=np.float64)
        n = states.shape[0] if states.ndim == 2 else -1
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise InvalidArgumentError(
                f"states must have shape (N, {self.state_dim}), got {states.shape}"
            )
        if params.shape != (n, len(self.param_names)):
            raise InvalidArgumentError(
                f"params must have shape ({n}, {len(self.param_names)}) "
                f"(columns {', '.join(self.param_names)}), got {params.shape}"
            )
        actions = np.asarray(actions)
        if actions.shape[0] != n:
            raise InvalidArgumentError(f"actions must have {n} rows, got shape {actions.shape}")
        return self._step(states, actions, params)

    @abstractmethod
    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        """:meth:`step` on checked arrays."""

    def episodes(self, states: np.ndarray, params: np.ndarray) -> EpisodeBatch:
        """Rows that are stepped again and again (episodes in lockstep), from their first
        states ``(N, state_dim)``, each under its own parameters ``(N, P)``.

        Here each step is :meth:`step` from the states the rows reached; a simulator whose
        step depends on more than the physics state (MuJoCo's solver warm start) keeps it.
        """
        return EpisodeBatch(self, states, params)

    @abstractmethod
    def observe(self, states: np.ndarray) -> np.ndarray:
        """``(N, *obs_shape)`` float32 observations of ``(N, state_dim)`` physics states."""


class EpisodeBatch:
    """Episodes of a :class:`BatchedSimulator` in lockstep: each row's state kept between steps.

    :param simulator: the task's simulator.
    :param states: ``(N, state_dim)`` first physics states (e.g. read from the env after
        ``reset``).
    :param params: ``(N, P)`` each row's parameters, fixed for the episode.
    """

    def __init__(self, simulator: BatchedSimulator, states: np.ndarray, params: np.ndarray) -> None:
        self.simulator = simulator
        self.states = np.array(states, dtype=np.float64)
        self.params = np.asarray(params, dtype=np.float64)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> SimulatedStep:
        """Advance the rows ``rows`` (indices) one step under ``actions`` (one per row)."""
        out = self.simulator.step(self.states[rows], actions, self.params[rows])
        self.states[rows] = out.states
        return out


class CartPoleSimulator(BatchedSimulator):
    """Gymnasium's ``CartPole-v1`` Euler step (``tau = 0.02``), reward ``+1`` per step."""

    param_names = ("gravity", "masscart", "masspole", "length", "force_mag")
    state_dim = 4
    tau = 0.02
    x_threshold = 2.4
    theta_threshold_radians = 12 * 2 * math.pi / 360

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        gravity, masscart, masspole, length, force_mag = params.T
        x, x_dot, theta, theta_dot = states.T
        total_mass = masscart + masspole
        polemass_length = masspole * length
        force = np.where(actions.reshape(-1) == 1, force_mag, -force_mag)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
        thetaacc = (gravity * sintheta - costheta * temp) / (
            length * (4.0 / 3.0 - masspole * np.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        nxt = np.stack(
            [
                x + self.tau * x_dot,
                x_dot + self.tau * xacc,
                theta + self.tau * theta_dot,
                theta_dot + self.tau * thetaacc,
            ],
            axis=1,
        )
        terminated = (
            (nxt[:, 0] < -self.x_threshold)
            | (nxt[:, 0] > self.x_threshold)
            | (nxt[:, 2] < -self.theta_threshold_radians)
            | (nxt[:, 2] > self.theta_threshold_radians)
        )
        return SimulatedStep(nxt, self.observe(nxt), np.ones(len(nxt)), terminated)

    def observe(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states, dtype=np.float32)


class PendulumSimulator(BatchedSimulator):
    """Gymnasium's ``Pendulum-v1`` step (``dt = 0.05``, speed clipped to ``±8``), never terminal.

    The physics state is ``(θ, θ̇)``; the observation ``(cos θ, sin θ, θ̇)``.
    """

    param_names = ("g", "m", "l", "max_torque")
    state_dim = 2
    dt = 0.05
    max_speed = 8.0

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        g, m, l, max_torque = params.T  # noqa: E741  (gymnasium's name)
        th, thdot = states.T
        # the env clips a float32 action with Python-float bounds: the result stays float32
        a = np.asarray(actions, dtype=np.float32).reshape(len(states), -1)[:, 0]
        u = np.clip(a, -max_torque, max_torque).astype(np.float32)
        # the env multiplies a float32 scalar by Python floats: float32 under NumPy 2's promotion,
        # float64 under NumPy 1's; compute in the dtype this NumPy gives
        mixed = _SCALAR_MIX_DTYPE
        costs = _angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2).astype(mixed)
        accel = 3 * g / (2 * l) * np.sin(th) + (3.0 / (m * l**2)).astype(mixed) * u.astype(mixed)
        newthdot = np.clip(thdot + accel * self.dt, -self.max_speed, self.max_speed)
        newth = th + newthdot * self.dt
        nxt = np.stack([newth, newthdot], axis=1)
        return SimulatedStep(nxt, self.observe(nxt), -costs, np.zeros(len(nxt), dtype=bool))

    def observe(self, states: np.ndarray) -> np.ndarray:
        th, thdot = np.asarray(states, dtype=np.float64).T
        return np.stack([np.cos(th), np.sin(th), thdot], axis=1).astype(np.float32)


#: dtype of a float32 scalar times a Python float in this NumPy (float32 since NumPy 2)
_SCALAR_MIX_DTYPE = (np.float32(1.0) * 1.0).dtype


def _angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


class MountainCarSimulator(BatchedSimulator):
    """Gymnasium's ``MountainCar-v0`` step with ``force`` and ``gravity``; reward ``−1``."""

    param_names = ("force", "gravity")
    state_dim = 2
    min_position, max_position, max_speed, goal_position = -1.2, 0.6, 0.07, 0.5

    def __init__(self, goal_velocity: float = 0.0) -> None:
        self.goal_velocity = goal_velocity

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        force, gravity = params.T
        position, velocity = states.T
        velocity = velocity + (actions.reshape(-1) - 1) * force + np.cos(3 * position) * (-gravity)
        velocity = np.clip(velocity, -self.max_speed, self.max_speed)
        position = np.clip(position + velocity, self.min_position, self.max_position)
        velocity = np.where((position == self.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        nxt = np.stack([position, velocity], axis=1)
        return SimulatedStep(nxt, self.observe(nxt), -np.ones(len(nxt)), terminated)

    def observe(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states, dtype=np.float32)


class MountainCarContinuousSimulator(MountainCarSimulator):
    """``MountainCarContinuous-v0`` with ``power`` and ``gravity``: reward ``+100`` at the flag
    minus ``0.1 a²``; the env keeps its state in float32, and so does this (it computes in
    float64 and rounds the state, so a flag can differ where the two roundings straddle a
    threshold)."""

    param_names = ("power", "gravity")
    goal_position = 0.45

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        power, gravity = params.T
        position, velocity = states.T
        a = np.asarray(actions, dtype=np.float32).reshape(len(states), -1)[:, 0]
        throttle = np.clip(a, -1.0, 1.0)
        velocity = velocity + throttle * power - gravity * np.cos(3 * position)
        velocity = np.clip(velocity, -self.max_speed, self.max_speed)
        position = np.clip(position + velocity, self.min_position, self.max_position)
        velocity = np.where((position == self.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        rewards = np.where(terminated, 100.0, 0.0) - np.square(a.astype(np.float64)) * 0.1
        nxt = np.stack([position, velocity], axis=1).astype(np.float32).astype(np.float64)
        return SimulatedStep(nxt, self.observe(nxt), rewards, terminated)


class AcrobotSimulator(BatchedSimulator):
    """The project's ``Acrobot-v1`` (link masses and lengths): one RK4 step of ``dt = 0.2``,
    angles wrapped to ``[−π, π]``, speeds bounded, reward ``−1`` until the tip is above the
    target height. The physics state is ``(θ1, θ2, θ̇1, θ̇2)``."""

    param_names = ("link_mass_1", "link_mass_2", "link_length_1", "link_length_2")
    state_dim = 4
    dt = 0.2
    max_vel_1, max_vel_2 = 4 * math.pi, 9 * math.pi
    torques = np.array([-1.0, 0.0, 1.0])
    gravity = 9.8
    moi_factor = 1.0
    target_height = 1.0

    def _derivs(self, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        m1, m2, l1, l2 = params.T
        c1, c2 = l1 / 2.0, l2 / 2.0
        i1 = self.moi_factor * m1 * l1**2
        i2 = self.moi_factor * m2 * l2**2
        th1, th2, w1, w2, torque = y.T
        cos2, sin2 = np.cos(th2), np.sin(th2)
        d1 = m1 * c1**2 + m2 * (l1**2 + c2**2 + 2 * l1 * c2 * cos2) + i1 + i2
        d2 = m2 * (c2**2 + l1 * c2 * cos2) + i2
        phi2 = m2 * c2 * self.gravity * np.sin(th1 + th2)
        phi1 = (
            -m2 * l1 * c2 * sin2 * (w2**2 + 2 * w2 * w1)
            + (m1 * c1 + m2 * l1) * self.gravity * np.sin(th1)
            + phi2
        )
        coriolis = m2 * l1 * c2 * w1**2 * sin2
        acc2 = (torque + d2 / d1 * phi1 - coriolis - phi2) / (m2 * c2**2 + i2 - d2**2 / d1)
        acc1 = -(d2 * acc2 + phi1) / d1
        return np.stack([w1, w2, acc1, acc2, np.zeros_like(w1)], axis=1)

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        torque = self.torques[np.asarray(actions).reshape(-1).astype(np.int64)]
        y0 = np.concatenate([states, torque[:, None]], axis=1)
        dt, dt2 = self.dt, self.dt / 2.0
        k1 = self._derivs(y0, params)
        k2 = self._derivs(y0 + dt2 * k1, params)
        k3 = self._derivs(y0 + dt2 * k2, params)
        k4 = self._derivs(y0 + dt * k3, params)
        ns = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:, :4]
        ns[:, 0] = _wrap(ns[:, 0])
        ns[:, 1] = _wrap(ns[:, 1])
        ns[:, 2] = np.clip(ns[:, 2], -self.max_vel_1, self.max_vel_1)
        ns[:, 3] = np.clip(ns[:, 3], -self.max_vel_2, self.max_vel_2)
        l1, l2 = params[:, 2], params[:, 3]
        tip = -l1 * np.cos(ns[:, 0]) - l2 * np.cos(ns[:, 0] + ns[:, 1])
        terminated = tip > self.target_height
        rewards = np.where(terminated, 0.0, -1.0)
        return SimulatedStep(ns, self.observe(ns), rewards, terminated)

    def observe(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64)
        cols = [
            np.cos(s[:, 0]),
            np.sin(s[:, 0]),
            np.cos(s[:, 1]),
            np.sin(s[:, 1]),
            s[:, 2],
            s[:, 3],
        ]
        return np.stack(cols, axis=1).astype(np.float32)


def _wrap(x: np.ndarray) -> np.ndarray:
    """Gymnasium's ``wrap(x, -π, π)`` (repeated ±2π shifts), vectorised."""
    diff = 2 * math.pi
    x = x.copy()
    while (high := x > math.pi).any():
        x[high] -= diff
    while (low := x < -math.pi).any():
        x[low] += diff
    return x


#: the simulators by name (the task records name them)
SIMULATORS: dict[str, type[BatchedSimulator]] = {
    "cartpole": CartPoleSimulator,
    "pendulum": PendulumSimulator,
    "mountain-car": MountainCarSimulator,
    "mountain-car-continuous": MountainCarContinuousSimulator,
    "acrobot": AcrobotSimulator,
}
