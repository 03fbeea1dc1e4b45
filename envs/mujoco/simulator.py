r"""Batched one-step simulation of the perturbed MuJoCo robots, each row under its own physics.

A row is a physics state ``(qpos, qvel)``, an action and a parameter vector (body masses,
friction). Each row's parameters are written into one model of a pool of copies of the env's
model, exactly as the env writes them (:meth:`PerturbedMujocoEnv.model_values
<robust_rl.envs.mujoco.base.PerturbedMujocoEnv.model_values>` and ``mj_setConst``), and all rows
are stepped ``frame_skip`` times by MuJoCo's native rollout (``mujoco.rollout``, ``threads``
threads). Observation, reward and termination are the gymnasium v5 formulas, vectorised, read
from the env's own settings (weights, healthy ranges, observation options).

The one difference from the env: the env carries the constraint solver's warm start
(``qacc_warmstart``) from step to step, a restored state starts it cold. The solver converges to
its tolerance either way, so a step differs from the env's by the solver's tolerance, not more
(measured in the tests: observations within 1e-6 of the env's on states the env visits).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout

from robust_rl.envs.mujoco.base import ModelWriter
from robust_rl.envs.simulators import BatchedSimulator, SimulatedStep
from robust_rl.errors import InvalidArgumentError

__all__ = ["MujocoSimulator"]

_FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS


class MujocoSimulator(BatchedSimulator):
    """One env step of a perturbed MuJoCo robot for ``N`` rows at once.

    :param task_id: the task's nominal id (``"robust_rl/Hopper-v5"``, ...).
    :param threads: native threads of the rollout.
    :param pool: model copies kept (rows are simulated in chunks of this many).
    """

    def __init__(self, task_id: str, threads: int = 1, pool: int = 256) -> None:
        env: Any = gym.make(task_id).unwrapped
        self._env = env
        self.task_id = task_id
        self.param_names = tuple(env.param_names())
        model = env.model
        if model.na:
            raise InvalidArgumentError(f"{task_id}: models with actuator states are not supported")
        self._nq, self._nv = int(model.nq), int(model.nv)
        self.state_dim = self._nq + self._nv
        self._nstate = int(mujoco.mj_stateSize(model, _FULL))
        if self._nstate != 1 + self.state_dim:
            raise InvalidArgumentError(f"{task_id}: unexpected MuJoCo state layout")
        self._frame_skip = int(env.frame_skip)
        self._dt = float(env.dt)
        self._pool_size = pool
        self._writers: list[ModelWriter] = []
        self._scratch = mujoco.MjData(model)
        self._datas = [mujoco.MjData(model) for _ in range(max(1, threads))]
        self._kind = type(env).__name__
        self._check_rollout()

    def _check_rollout(self) -> None:
        """One tiny rollout over a list of models: older ``mujoco`` releases take one model."""
        init = np.zeros((1, self._nstate))
        mujoco.mj_getState(self._env.model, self._scratch, init[0], _FULL)
        try:
            rollout.rollout(
                [self._env.model], self._datas, init, np.zeros((1, 1, self._env.model.nu))
            )
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"the batched MuJoCo simulator needs a mujoco whose rollout takes one model per "
                f"row (installed: {mujoco.__version__}; {exc}); upgrade mujoco"
            ) from None

    def _pool(self, params: np.ndarray) -> list[Any]:
        """One model per row of ``params``, holding that row's physics."""
        while len(self._writers) < len(params):
            self._writers.append(self._env.model_writer(copy.copy(self._env.model)))
        writers = self._writers[: len(params)]
        values = self._env.model_values(params)
        scratch = self._scratch
        for row, write in enumerate(writers):
            write(values, row)
            mujoco.mj_setConst(write.model, scratch)
        return [write.model for write in writers]

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        n, nq, nv = len(states), self._nq, self._nv
        actions = np.asarray(actions, dtype=np.float64).reshape(n, -1)
        final = np.empty((n, self._nstate))
        for start in range(0, n, self._pool_size):
            rows = slice(start, min(n, start + self._pool_size))
            init = np.zeros((rows.stop - rows.start, self._nstate))
            init[:, 1 : 1 + nq + nv] = states[rows]
            control = np.repeat(actions[rows, None, :], self._frame_skip, axis=1)
            out, _ = rollout.rollout(self._pool(params[rows]), self._datas, init, control)
            final[rows] = out[:, -1, :]
        nxt = final[:, 1 : 1 + nq + nv]
        rewards, terminated = self._reward(states, nxt, actions)
        return SimulatedStep(nxt, self.observe(nxt), rewards, terminated)

    # ---------------------------------------------------------------- gymnasium v5 formulas
    def observe(self, states: np.ndarray) -> np.ndarray:
        env, nq = self._env, self._nq
        qpos, qvel = states[:, :nq], states[:, nq:]
        if self._kind == "PerturbedInvertedPendulumEnv":
            obs = np.concatenate([qpos, qvel], axis=1)
        else:
            if env._exclude_current_positions_from_observation:
                qpos = qpos[:, 1:]
            if self._kind != "PerturbedHalfCheetahEnv":
                qvel = np.clip(qvel, -10, 10)
            obs = np.concatenate([qpos, qvel], axis=1)
        return obs.astype(env.observation_space.dtype)

    def _healthy(self, nxt: np.ndarray) -> np.ndarray:
        env, nq = self._env, self._nq
        z, angle = nxt[:, 1], nxt[:, 2]
        healthy = (env._healthy_z_range[0] < z) & (z < env._healthy_z_range[1])
        healthy &= (env._healthy_angle_range[0] < angle) & (angle < env._healthy_angle_range[1])
        if self._kind == "PerturbedHopperEnv":
            low, high = env._healthy_state_range
            rest = np.concatenate([nxt[:, 2:nq], nxt[:, nq:]], axis=1)
            healthy &= np.all((low < rest) & (rest < high), axis=1)
        return healthy

    def _reward(
        self, states: np.ndarray, nxt: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        env = self._env
        if self._kind == "PerturbedInvertedPendulumEnv":
            obs = self.observe(nxt)
            terminated = ~np.isfinite(obs).all(axis=1) | (np.abs(obs[:, 1]) > 0.2)
            return (~terminated).astype(np.float64), terminated
        x_velocity = (nxt[:, 0] - states[:, 0]) / self._dt
        reward = env._forward_reward_weight * x_velocity
        reward -= env._ctrl_cost_weight * np.sum(np.square(actions), axis=1)
        if self._kind == "PerturbedHalfCheetahEnv":
            return reward, np.zeros(len(nxt), dtype=bool)
        healthy = self._healthy(nxt)
        reward += healthy * env._healthy_reward
        return reward, ~healthy & bool(env._terminate_when_unhealthy)
