r"""The physics uncertainty set as a perturbation of the robust agents' Bellman target.

For a replay transition ``(s, a)`` the target draws physics parameters ``p`` from the task's
uncertainty set :math:`P` (law :math:`Q_P`: uniform or log-uniform per coordinate, as the
domain-randomisation baseline draws), re-simulates the one step under each draw
(:mod:`robust_rl.envs.simulators`), and soft-minimises the one-step values (method.md §4b):

.. math::

    y = -\eta \log \mathbb E_{p \sim Q_P}
        \exp\Big(-\big(r_p + \gamma (1 - d_p) V(s'_p)\big)/\eta\Big)

``η → ∞``: the average over the set (domain randomisation inside the target); ``η → 0``: the
worst case over the set, the ``(s, a)``-rectangular robust Bellman operator. The expectation is
estimated by the shared core (:class:`robust_rl.risk.FunctionalEstimator` with a
:class:`~robust_rl.risk.BoxSampler`): SAA with ``2^L`` draws or RT-MLMC per transition. The
centre of each transition is the nominal parameter vector, so the control variate and the
``train/robust_gap`` diagnostic use the nominal re-simulated value, which is the stored
transition's value wherever the simulator reproduces the env exactly (CartPole: bit for bit).

* :class:`DynamicsSet`: what a user passes (``perturbation=DynamicsSet()`` for the task's own
  set, or explicit ranges), also written in configs as ``perturbation: {dynamics: task}``;
* :class:`ResolvedDynamics`: the set resolved against a task (every parameter, nominal values);
* :class:`PhysicsReplayBuffer`: SB3's replay buffer that also keeps each transition's physics
  state (from ``info["physics_state"]``);
* :class:`DynamicsTarget`: the batched target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from robust_rl.envs.params import check_ranges
from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import BOX_DISTRIBUTIONS, BoxSampler, FunctionalEstimator, MLMCEstimate

__all__ = [
    "DynamicsSet",
    "DynamicsTarget",
    "ObservationBall",
    "PhysicsReplayBuffer",
    "PhysicsReplaySamples",
    "ResolvedDynamics",
    "concat_samples",
    "parse_perturbation",
]


@dataclass(frozen=True)
class DynamicsSet:
    """A set of physics parameters the robust target re-simulates each transition under.

    :param ranges: parameter name -> ``(low, high)`` in absolute units; parameters not named
        keep their nominal value. ``None`` (default): the task's own uncertainty set
        (:attr:`robust_rl.envs.TaskSpec.uncertainty_set`, the set its suite and its
        domain-randomised id use).
    :param distribution: ``"uniform"`` or ``"log-uniform"`` per coordinate; ``None`` (default):
        the law of the task's domain-randomised id.

    >>> DynamicsSet({"masspole": (0.05, 2.0)}, "log-uniform").to_config()
    {'dynamics': {'masspole': [0.05, 2.0]}, 'distribution': 'log-uniform'}
    """

    ranges: Mapping[str, tuple[float, float]] | None = None
    distribution: str | None = None

    def __post_init__(self) -> None:
        if self.distribution is not None and self.distribution not in BOX_DISTRIBUTIONS:
            raise InvalidArgumentError(
                f"perturbation distribution must be one of {BOX_DISTRIBUTIONS} or None (the "
                f"task's), got {self.distribution!r}"
            )
        if self.ranges is None:
            return
        checked = check_ranges(self.ranges)
        object.__setattr__(self, "ranges", checked)

    def to_config(self) -> dict[str, Any]:
        """The YAML/JSON form (what :func:`parse_perturbation` reads back)."""
        ranges = (
            "task" if self.ranges is None else {k: [lo, hi] for k, (lo, hi) in self.ranges.items()}
        )
        return {"dynamics": ranges, "distribution": self.distribution}

    def resolve(self, task: Any, current: Mapping[str, float] | None = None) -> ResolvedDynamics:
        """The set over every parameter of ``task`` (a :class:`robust_rl.envs.TaskSpec`).

        :param current: the physics of the env trained on (``env.unwrapped.get_params()``):
            the centre of every transition, and the value of each parameter not in the set.
            Default: the task's nominal values.
        :raises InvalidArgumentError: on a name the task does not have, or a task without a
            batched simulator.
        """
        simulator = task.make_simulator()
        names = tuple(simulator.param_names)
        ranges = dict(task.uncertainty_set if self.ranges is None else self.ranges)
        unknown = sorted(set(ranges) - set(names))
        if unknown:
            raise InvalidArgumentError(
                f"unknown {task.id} parameter(s) {', '.join(map(repr, unknown))} in the dynamics "
                f"set; accepted names: {', '.join(names)}"
            )
        centre = dict(task.nominal) if current is None else dict(current)
        nominal = [float(centre[n]) for n in names]
        low = [
            float(ranges[n][0]) if n in ranges else v for n, v in zip(names, nominal, strict=True)
        ]
        high = [
            float(ranges[n][1]) if n in ranges else v for n, v in zip(names, nominal, strict=True)
        ]
        return ResolvedDynamics(
            task_id=task.id,
            names=names,
            nominal=tuple(nominal),
            low=tuple(low),
            high=tuple(high),
            distribution=self.distribution or task.distribution,
            requested=self,
        )


@dataclass(frozen=True)
class ObservationBall:
    """The observation ball as a perturbation object: the same settings as the agents' ``radius``,
    ``norm``, ``radius_scale`` and ``unperturbed_keys`` arguments (which it sets), in one value;
    configs write it ``perturbation: {ball: {radius: ..., norm: ...}}``.

    >>> ObservationBall([0.03, 0.03, 0.003, 0.03]).to_config()["ball"]["radius"]
    [0.03, 0.03, 0.003, 0.03]
    """

    radius: Any = 0.01
    norm: str = "linf"
    radius_scale: str = "absolute"
    unperturbed_keys: tuple[str, ...] = ()

    def to_config(self) -> dict[str, Any]:
        """The YAML/JSON form (what :func:`parse_perturbation` reads back)."""
        return {
            "ball": {
                "radius": self.radius,
                "norm": self.norm,
                "radius_scale": self.radius_scale,
                "unperturbed_keys": list(self.unperturbed_keys),
            }
        }


@dataclass(frozen=True)
class ResolvedDynamics:
    """A :class:`DynamicsSet` resolved against a task: one box over every parameter.

    :ivar task_id: the task's nominal id (its simulator is rebuilt from it after loading).
    :ivar names: every parameter, in the simulator's column order.
    :ivar nominal: ``(P,)`` the physics of the env trained on (the centre of each transition;
        the value of a parameter not in the set).
    :ivar low: ``(P,)`` lower bounds (the nominal value for a parameter not in the set).
    :ivar high: ``(P,)`` upper bounds.
    :ivar distribution: ``"uniform"`` or ``"log-uniform"``.
    """

    task_id: str
    names: tuple[str, ...]
    nominal: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    distribution: str = field(default="uniform")
    requested: DynamicsSet | None = None

    def sampler(self) -> BoxSampler:
        """The core's sampler of this box."""
        return BoxSampler(self.low, self.high, self.distribution)


def parse_perturbation(value: Any) -> DynamicsSet | ObservationBall | None:
    """A ``perturbation=`` argument as an object: ``None`` (the observation ball given by
    ``radius`` etc.), an :class:`ObservationBall`, a :class:`DynamicsSet`, or their config forms
    ``{"ball": {"radius": ..., "norm": ..., ...}}`` and ``{"dynamics": "task" | {name: [low,
    high]}, "distribution": ...}``.

    :raises InvalidArgumentError: on anything else, naming what is accepted.
    """
    if value is None or isinstance(value, DynamicsSet | ObservationBall):
        return value
    if isinstance(value, Mapping) and set(value) == {"ball"}:
        ball = value["ball"]
        fields = {"radius", "norm", "radius_scale", "unperturbed_keys"}
        if not isinstance(ball, Mapping) or not set(ball) <= fields:
            raise InvalidArgumentError(
                f"perturbation['ball'] must be a mapping over {', '.join(sorted(fields))}, got "
                f"{ball!r}"
            )
        settings: dict[str, Any] = dict(ball)
        if "unperturbed_keys" in settings:
            settings["unperturbed_keys"] = tuple(settings["unperturbed_keys"])
        return ObservationBall(**settings)
    if isinstance(value, Mapping) and "dynamics" in value:
        extra = sorted(set(value) - {"dynamics", "distribution"})
        if extra:
            raise InvalidArgumentError(
                f"perturbation: unknown key(s) {', '.join(map(repr, extra))}; accepted: "
                "'dynamics', 'distribution'"
            )
        ranges = value["dynamics"]
        if ranges == "task":
            ranges = None
        elif not isinstance(ranges, Mapping):
            raise InvalidArgumentError(
                f"perturbation['dynamics'] must be 'task' or a mapping name -> [low, high], "
                f"got {ranges!r}"
            )
        return DynamicsSet(ranges, value.get("distribution"))
    raise InvalidArgumentError(
        "perturbation must be None (the observation ball of radius, norm, ...), an ObservationBall "
        "or {'ball': {...}}, a DynamicsSet or {'dynamics': 'task' | {name: [low, high]}, "
        f"'distribution': ...}}; got {value!r}"
    )


class PhysicsReplaySamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` plus what the simulator needs (host arrays).

    :ivar physics_states: ``(B, state_dim)`` float64 physics state ``s`` of each transition.
    :ivar buffer_actions: ``(B, action_dim)`` the actions as stored (scaled to ``[-1, 1]`` for
        squashed Box policies, as SB3 stores them).
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    physics_states: np.ndarray
    buffer_actions: np.ndarray


class PhysicsReplayBuffer(ReplayBuffer):
    """SB3's :class:`~stable_baselines3.common.buffers.ReplayBuffer` that also stores each
    transition's physics state, read from ``info["physics_state"]`` (every
    :mod:`robust_rl.envs` task reports it: the state before the step).

    Sampling draws the same indices as SB3's buffer, from the same random numbers.

    :param state_dim: length of a physics state.
    :param task_id: the task whose simulator the target uses: the first transitions added are
        checked to be observed as the simulator observes their physics state (an observation or
        action wrapper between the agent and the task would make the re-simulated steps wrong).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        state_dim: int = 0,
        task_id: str | None = None,
    ) -> None:
        if optimize_memory_usage:
            raise InvalidArgumentError(
                "optimize_memory_usage=True is not supported with a dynamics set (the physics "
                "state of each transition is stored); use optimize_memory_usage=False"
            )
        if state_dim < 1:
            raise InvalidArgumentError(f"state_dim must be a positive integer, got {state_dim!r}")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.state_dim = state_dim
        self.task_id = task_id
        self._checked_adds = 0
        self._observer: Any = None
        self.physics_states = np.zeros((self.buffer_size, self.n_envs, state_dim), np.float64)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        try:
            states = np.stack([np.asarray(info["physics_state"], np.float64) for info in infos])
        except KeyError:
            raise InvalidArgumentError(
                "the env does not report info['physics_state'], which a dynamics set needs; "
                "use a task of robust_rl.envs (e.g. robust_rl/CartPole-v1)"
            ) from None
        if states.shape != (self.n_envs, self.state_dim):
            raise InvalidArgumentError(
                f"info['physics_state'] has shape {states.shape[1:]}, expected ({self.state_dim},)"
            )
        if self._checked_adds < _CHECKED_ADDS and self.task_id is not None:
            self._check_observed(np.asarray(obs), states)
        self.physics_states[self.pos] = states
        super().add(obs, next_obs, action, reward, done, infos)

    def _check_observed(self, obs: np.ndarray, states: np.ndarray) -> None:
        from robust_rl.envs.tasks import get_task

        self._checked_adds += 1
        if self._observer is None:
            self._observer = get_task(str(self.task_id)).make_simulator()
        expected = self._observer.observe(states)
        if obs.shape != expected.shape or not np.allclose(obs, expected, atol=1e-5):
            raise InvalidArgumentError(
                f"the observations stored are not the {self.task_id} observations of the physics "
                "states (a wrapper changes what the agent sees?); a dynamics set re-simulates the "
                "task itself: train on the task's env without observation or action wrappers "
                "(VecNormalize is supported)"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_observer"] = None  # rebuilt on demand (a MuJoCo simulator holds an env)
        return state

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> PhysicsReplaySamples:
        # the same random draw as SB3's ReplayBuffer._get_samples
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        next_obs = self._normalize_obs(self.next_observations[batch_inds, env_indices, :], env)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            next_obs,
            (
                self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
            ).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        obs, actions, next_obs_t, dones, rewards = (self.to_torch(d) for d in data)  # type: ignore[arg-type]
        return PhysicsReplaySamples(
            observations=obs,
            actions=actions,
            next_observations=next_obs_t,
            dones=dones,
            rewards=rewards,
            discounts=None,
            physics_states=self.physics_states[batch_inds, env_indices],
            buffer_actions=self.actions[batch_inds, env_indices, :],
        )


#: transitions whose observation is checked against the simulator's (see PhysicsReplayBuffer)
_CHECKED_ADDS = 10


def concat_samples(batches: list[PhysicsReplaySamples]) -> PhysicsReplaySamples:
    """Several replay batches as one (for a target pass over several gradient steps)."""
    if len(batches) == 1:
        return batches[0]
    return PhysicsReplaySamples(
        observations=th.cat([b.observations for b in batches]),
        actions=th.cat([b.actions for b in batches]),
        next_observations=th.cat([b.next_observations for b in batches]),
        dones=th.cat([b.dones for b in batches]),
        rewards=th.cat([b.rewards for b in batches]),
        discounts=None,
        physics_states=np.concatenate([b.physics_states for b in batches]),
        buffer_actions=np.concatenate([b.buffer_actions for b in batches]),
    )


#: value of a batch of next observations: ``values(obs (N, ...), index (N,)) -> (N,)``
Values = Callable[[th.Tensor, th.Tensor], th.Tensor]


class DynamicsTarget:
    """The batched target ``y`` of every transition of a replay batch over a physics set.

    :param resolved: the set.
    :param estimator: the core's estimator, built with ``sampler=resolved.sampler()`` and a
        soft-min functional of scalar values (``with_center`` for the diagnostics).
    :param env_action: maps stored actions ``(N, action_dim)`` to what the env receives
        (e.g. the policy's ``unscale_action``), or ``None`` for discrete actions.
    """

    def __init__(
        self,
        resolved: ResolvedDynamics,
        estimator: FunctionalEstimator,
        env_action: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        from robust_rl.envs.tasks import get_task

        self.resolved = resolved
        self.simulator = get_task(resolved.task_id).make_simulator()
        if tuple(self.simulator.param_names) != resolved.names:
            raise InvalidArgumentError(
                f"the dynamics set names {resolved.names}, the simulator of {resolved.task_id} "
                f"takes {self.simulator.param_names}"
            )
        self.estimator = estimator
        self.env_action = env_action

    def __call__(
        self,
        samples: PhysicsReplaySamples,
        values: Values,
        gamma: float,
        generator: th.Generator | None,
        vec_normalize: VecNormalize | None = None,
    ) -> tuple[MLMCEstimate, float]:
        """Estimate ``y`` for every transition.

        :param samples: the replay batch (with physics states).
        :param values: ``values(obs, index)``: the target network's value of next observations
            (random numbers drawn per replay row and gathered with ``index``).
        :param gamma: the discount.
        :param generator: draws the parameters (on the networks' device).
        :param vec_normalize: normalises the simulated observations and rewards as the replay
            buffer normalises the stored ones.
        :return: the estimate (``per_point``: ``y`` ``(B,)``; ``center``: the nominal value) and
            the share of simulated draws that terminated.
        """
        device = samples.rewards.device
        batch = samples.physics_states.shape[0]
        actions = samples.buffer_actions
        if self.env_action is not None:
            actions = self.env_action(actions)
        nominal = th.tensor(self.resolved.nominal, dtype=th.float64, device=device)
        x = nominal.expand(batch, -1).contiguous()
        terminated_share: list[float] = []

        def evaluate(params: th.Tensor, index: th.Tensor) -> th.Tensor:
            rows = index.cpu().numpy()
            step = self.simulator.step(
                samples.physics_states[rows], actions[rows], params.cpu().numpy()
            )
            obs, rewards = step.observations, step.rewards
            if vec_normalize is not None:
                obs = vec_normalize.normalize_obs(obs)
                rewards = vec_normalize.normalize_reward(rewards)
            dones = th.as_tensor(step.terminated, dtype=th.float32).to(device)
            reward = th.as_tensor(rewards, dtype=th.float32).to(device)
            v = values(th.as_tensor(obs).to(device), index)
            terminated_share.append(float(step.terminated.mean()))
            return reward + (1 - dones) * gamma * v

        estimate = self.estimator(evaluate, x, generator=generator)
        return estimate, terminated_share[0]
