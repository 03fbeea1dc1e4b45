r"""Batched one-step simulation of the perturbed MuJoCo robots, each row under its own physics.

A row is a physics state ``(qpos, qvel)``, an action and a parameter vector (body masses,
friction). Each row's parameters are written into one model of a pool of copies of the env's
model, exactly as the env writes them (:class:`~robust_rl.envs.mujoco.base.ModelWriter`: the
parameters, then ``mj_setConst``), and all rows are stepped ``frame_skip`` times by MuJoCo's
native rollout (``mujoco.rollout``, ``threads`` threads). Observation, reward and termination are the gymnasium v5 formulas, vectorised, read
from the env's own settings (weights, healthy ranges, observation options).

The one difference from the env: the env carries the constraint solver's warm start
(``qacc_warmstart``) from step to step, a restored state starts it cold. The solver converges to
its tolerance either way, so a step differs from the env's by the solver's tolerance, not more
(measured in the tests: observations within 1e-6 of the env's on states the env visits).
"""

from __future__ import annotations

import copy
import itertools
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout

from robust_rl.envs.mujoco.base import ModelWriter
from robust_rl.envs.simulators import BatchedSimulator, EpisodeBatch, SimulatedStep
from robust_rl.errors import InvalidArgumentError

__all__ = ["MujocoEpisodes", "MujocoSimulator"]

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
        self.threads = check_threads(threads)
        self._datas = [mujoco.MjData(model) for _ in range(threads)]
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
        for row, write in enumerate(writers):
            write(values, row)
        return [write.model for write in writers]

    def _step(self, states: np.ndarray, actions: np.ndarray, params: np.ndarray) -> SimulatedStep:
        n, nq, nv = len(states), self._nq, self._nv
        given = np.asarray(actions).reshape(n, -1)  # the reward's control cost in their dtype
        actions = given.astype(np.float64)
        final = np.empty((n, self._nstate))
        for start in range(0, n, self._pool_size):
            rows = slice(start, min(n, start + self._pool_size))
            init = np.zeros((rows.stop - rows.start, self._nstate))
            init[:, 1 : 1 + nq + nv] = states[rows]
            control = np.repeat(actions[rows, None, :], self._frame_skip, axis=1)
            out, _ = rollout.rollout(self._pool(params[rows]), self._datas, init, control)
            final[rows] = out[:, -1, :]
        nxt = final[:, 1 : 1 + nq + nv]
        rewards, terminated = self._reward(states, nxt, given)
        return SimulatedStep(nxt, self.observe(nxt), rewards, terminated)

    def episodes(self, states: np.ndarray, params: np.ndarray) -> EpisodeBatch:
        """Episodes in lockstep, each stepped exactly as the env steps it
        (:class:`MujocoEpisodes`, on this simulator's ``threads``)."""
        return MujocoEpisodes(self, states, params, threads=self.threads)

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


class MujocoEpisodes(EpisodeBatch):
    """Episodes of a MuJoCo robot in lockstep, each stepped as the env steps it.

    One model per distinct parameter row (a grid point: the parameters written as the env
    writes them, then ``mj_setConst``) and one ``MjData`` per row (an episode). A row keeps its
    ``MjData`` from step to step, and with it the constraint solver's warm start, which
    :meth:`MujocoSimulator.step` cannot carry; a step is the env's: ``ctrl`` set to the action,
    ``frame_skip`` calls of ``mj_step``. Rows start as the env does after ``reset``: the
    physics state read back, the warm start zero. So a row's states, rewards and terminations
    are the env's, step for step (asserted in the tests against ``env.step``).

    The MuJoCo step itself is C; what the batch saves is the env's Python around it and one
    ``predict`` per episode and step. With ``threads > 1`` the rows are split into that many
    contiguous parts stepped by a pool of threads (``mj_step`` releases the GIL); the result
    does not depend on the split.
    """

    def __init__(
        self, simulator: MujocoSimulator, states: np.ndarray, params: np.ndarray, threads: int = 1
    ) -> None:
        super().__init__(simulator, states, params)
        self.threads = check_threads(threads)
        self._pool: ThreadPoolExecutor | None = None
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mujoco-episodes")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        self._sim = simulator
        env = simulator._env
        unique, which = np.unique(self.params, axis=0, return_inverse=True)
        values = env.model_values(unique)
        writers = [env.model_writer(copy.copy(env.model)) for _ in range(len(unique))]
        for k, write in enumerate(writers):
            write(values, k)
        self._models = [writers[i].model for i in np.asarray(which).reshape(-1)]
        self._datas = []
        nq = simulator._nq
        for model, state in zip(self._models, self.states, strict=True):
            data = mujoco.MjData(model)
            data.qpos[:] = state[:nq]
            data.qvel[:] = state[nq:]
            self._datas.append(data)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> SimulatedStep:
        sim, nq = self._sim, self._sim._nq
        rows = np.asarray(rows)
        given = np.asarray(actions).reshape(len(rows), -1)
        before = self.states[rows]
        after = np.empty_like(before)
        frame_skip = sim._frame_skip
        order = rows.tolist()

        def advance(part: range) -> None:
            for i in part:
                data = self._datas[order[i]]
                data.ctrl[:] = given[i]
                mujoco.mj_step(self._models[order[i]], data, nstep=frame_skip)
                after[i, :nq] = data.qpos
                after[i, nq:] = data.qvel

        if self._pool is None or len(order) < 2 * self.threads:
            advance(range(len(order)))
        else:
            bounds = np.linspace(0, len(order), self.threads + 1).astype(int)
            parts = [range(a, b) for a, b in itertools.pairwise(bounds.tolist())]
            list(self._pool.map(advance, parts))
        self.states[rows] = after
        rewards, terminated = sim._reward(before, after, given)
        return SimulatedStep(after, sim.observe(after), rewards, terminated)


def check_threads(threads: Any) -> int:
    """``threads`` as a positive int, or a one-line error naming the argument."""
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise InvalidArgumentError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)
