r"""What every robust agent shares: settings, checks, radius handling, the estimator, diagnostics.

A robust agent is its Stable-Baselines3 parent plus one target method. The target replaces the
value of each next state ``s'`` by the entropic soft-min over the uniform distribution on the
ball :math:`B_\rho(s')`:

.. math::

    V_\eta(s') = -\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(s'))} \exp\big(-V(z)/\eta\big)

(method.md §4; ``η → 0``: the worst case in the ball, ``η → ∞``: the average), estimated by the
shared core (:class:`robust_rl.risk.FunctionalEstimator`) with one batched forward pass for all
draws. :class:`RobustAgentMixin` holds everything else:

* the robust settings (:data:`ROBUST_SETTINGS`: ``radius``, ``eta``, ``norm``, ``estimator``,
  ``max_level``, ``n_samples``, ``control_variate``, ``level_sampling``, ``radius_scale``,
  ``unperturbed_keys``, and the measured ``observation_scale``), checked before SB3 builds
  anything, and saved with the model by SB3's ``save``;
* the spaces: a clear :class:`~robust_rl.common.observations.UnsupportedSpaceError` for an
  action space the parent does not support or an observation space without a Box to perturb
  (checked before SB3's own assertions);
* the radius (:class:`~robust_rl.common.observations.ObservationPerturbation`: per coordinate,
  per Dict entry, and ``radius_scale="std"``: relative to the standard deviation of each
  coordinate in the replay buffer at the first gradient step, then frozen and saved);
* the draws' own random generator (seeded from the agent's seed, saved and restored with the
  model), so that the ball draws leave the global generators, which SB3's update uses, alone;
* the perturbation: the observation ball above (default), or a physics uncertainty set
  (``perturbation=DynamicsSet()``, :mod:`robust_rl.common.dynamics`): then each transition is
  re-simulated under drawn parameters and the target is the soft-min of the one-step values
  ``r_p + γ(1 − d_p)V(s'_p)``; the replay buffer keeps each transition's physics state;
* TensorBoard diagnostics: ``train/robust_gap`` (robust minus nominal next value),
  ``train/mean_level``, ``train/evaluations_per_update`` and, with a dynamics set,
  ``train/terminal_share`` (the share of simulated draws that terminate).

A new agent subclasses ``RobustAgentMixin`` first and its SB3 parent second, forwards the
robust arguments to :meth:`RobustAgentMixin._init_robust`, calls
:meth:`RobustAgentMixin.robust_targets` (or :meth:`RobustAgentMixin.robust_estimate`) in its
target and
:meth:`RobustAgentMixin._log_robust_diagnostics` at the end of ``train`` (see
:mod:`robust_rl.sac` and :mod:`robust_rl.td3`).
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from robust_rl.common.dynamics import (
    DynamicsSet,
    DynamicsTarget,
    ObservationBall,
    PhysicsReplayBuffer,
    PhysicsReplaySamples,
    ResolvedDynamics,
    parse_perturbation,
)
from robust_rl.common.observations import (
    ObservationPerturbation,
    RadiusSpec,
    UnsupportedSpaceError,
    batch_rows,
    check_observation_space,
    check_radius,
    check_unperturbed_keys,
)
from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import (
    EstimatorSpec,
    FunctionalEstimator,
    MLMCEstimate,
    SetFunctional,
    entropic_min,
)
from robust_rl.risk._checks import check_norm

__all__ = [
    "RADIUS_SCALES",
    "ROBUST_SETTINGS",
    "RobustAgentMixin",
]

SelfRobust = TypeVar("SelfRobust", bound="RobustAgentMixin")

#: ``"absolute"``: radius in observation units; ``"std"``: in units of each coordinate's standard
#: deviation in the replay buffer when learning starts (measured once, then frozen and saved)
RADIUS_SCALES: tuple[str, ...] = ("absolute", "std")
#: the attributes that make up an agent's robust settings (all saved with the model)
ROBUST_SETTINGS: tuple[str, ...] = (
    "radius",
    "eta",
    "norm",
    "estimator",
    "max_level",
    "n_samples",
    "control_variate",
    "level_sampling",
    "radius_scale",
    "unperturbed_keys",
    "observation_scale",
    "perturbation",
)

#: value function of a batch of observations: ``values(obs, index)`` with ``(N, ...)``
#: observations and ``index`` ``(N,)``, the row of the replay batch each observation was drawn
#: around -> ``(N, *O)`` values. Random numbers the values need (policy sampling, target
#: smoothing) are drawn once per replay row and gathered with ``index``, so that all perturbed
#: copies of a next state share them (common random numbers).
Values = Callable[[Any, th.Tensor], th.Tensor]

#: Rows of one call of the target networks inside a robust target. A target pass evaluates
#: every draw of a few replay batches (SAA with 16 draws: 17 rows per transition, thousands per
#: pass); split into parts of this many rows, the activations stay in the CPU's cache (a
#: multiple of 16, so that every part but the last is whole kernel blocks and a row's value is
#: the same as in one call: tested).
TARGET_CHUNK_ROWS = 1024


def in_chunks(values: Values, rows: int | None = None) -> Values:
    """``values`` called on consecutive parts of at most ``rows`` rows (default
    :data:`TARGET_CHUNK_ROWS`), the results joined."""
    size = TARGET_CHUNK_ROWS if rows is None else rows

    def chunked(obs: Any, index: th.Tensor) -> th.Tensor:
        n = batch_rows(obs)
        if n <= size:
            return values(obs, index)
        parts = []
        for a in range(0, n, size):
            part = (
                {k: v[a : a + size] for k, v in obs.items()}
                if isinstance(obs, Mapping)
                else obs[a : a + size]
            )
            parts.append(values(part, index[a : a + size]))
        return th.cat(parts)

    return chunked


class RobustAgentMixin:
    """Robust settings, checks, estimator, generator, diagnostics and save/load for SB3 agents.

    Subclasses set :attr:`_robust_action_spaces` and may override :meth:`_robust_functional`
    (default: :func:`~robust_rl.risk.entropic_min` of scalar values).
    """

    #: action spaces the SB3 parent supports (checked with a clear error before SB3 asserts)
    _robust_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Box,)

    # attributes SB3 provides (declared for the type checker)
    device: th.device
    seed: int | None
    observation_space: spaces.Space
    replay_buffer: Any
    logger: Any
    _vec_normalize_env: Any

    # ------------------------------------------------------------------------ settings
    def _robust_init_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check and keep the robust settings among a constructor's ``arguments`` (its
        ``locals()``: the SB3 parent's arguments plus the robust ones), and return the
        keyword arguments of the SB3 parent's constructor: the same values, the env made from
        its id (:meth:`_init_robust`) and ``_init_setup_model=False`` (the agent sets its model up
        itself, once its own attributes are set).
        """
        env = self._init_robust(
            arguments["env"],
            spec=EstimatorSpec.pick(arguments),
            radius=arguments["radius"],
            norm=arguments["norm"],
            radius_scale=arguments["radius_scale"],
            unperturbed_keys=arguments["unperturbed_keys"],
            perturbation=arguments["perturbation"],
            verbose=arguments["verbose"],
        )
        parent = next(
            c
            for c in type(self).__mro__
            if c.__module__.startswith("stable_baselines3.") and "__init__" in vars(c)
        )
        names = [n for n in inspect.signature(vars(parent)["__init__"]).parameters if n != "self"]
        return {n: arguments[n] for n in names} | {"env": env, "_init_setup_model": False}

    def _init_robust(
        self,
        env: GymEnv | str | None,
        *,
        spec: EstimatorSpec,
        radius: RadiusSpec,
        norm: str,
        radius_scale: str,
        unperturbed_keys: Sequence[str] | None,
        perturbation: DynamicsSet | ObservationBall | Mapping[str, Any] | None = None,
        verbose: int = 0,
    ) -> GymEnv | None:
        """Check and store the robust settings; call before the SB3 parent's ``__init__``.

        With a dynamics set (``perturbation``), the set is resolved against the env's task here
        (a clear error if the env is not a task of :mod:`robust_rl.envs` with a batched
        simulator, or has Dict observations).

        :return: ``env``, made from its id if it was a string (so that its spaces can be checked
            here, with clear errors, before SB3's own assertions).
        """
        parsed = parse_perturbation(perturbation)
        if isinstance(parsed, ObservationBall):  # the ball's settings in one value
            radius, norm = parsed.radius, parsed.norm
            radius_scale, unperturbed_keys = parsed.radius_scale, list(parsed.unperturbed_keys)
            parsed = None
        self.radius = check_radius(radius)
        self.unperturbed_keys = check_unperturbed_keys(unperturbed_keys)
        if radius_scale not in RADIUS_SCALES:
            raise InvalidArgumentError(
                f"radius_scale must be one of {RADIUS_SCALES}, got {radius_scale!r}"
            )
        self.radius_scale = radius_scale
        if not isinstance(spec, EstimatorSpec):
            raise InvalidArgumentError(f"spec must be an EstimatorSpec, got {spec!r}")
        self.norm = check_norm(norm)
        # saved with the model one by one (SB3 saves attributes); read back by estimator_spec
        self.eta = spec.eta
        self.estimator = spec.estimator
        self.max_level = spec.max_level
        self.n_samples = spec.n_samples
        self.control_variate = spec.control_variate
        self.level_sampling = spec.level_sampling
        self.observation_scale: list[float] | None = None
        self.perturbation = parsed
        self._dynamics: ResolvedDynamics | None = None
        if env is not None:
            env = maybe_make_env(env, verbose)
            self._check_spaces(env.observation_space, env.action_space)
        if self.perturbation is not None:
            if env is None:
                raise InvalidArgumentError(
                    "a dynamics-set perturbation needs the env at construction (its task's "
                    "simulator and uncertainty set); pass env="
                )
            if isinstance(env.observation_space, spaces.Dict):
                raise UnsupportedSpaceError(
                    f"{type(self).__name__} with a dynamics set supports Box observations, got "
                    f"{env.observation_space}"
                )
            self._dynamics = _resolve_on_env(self.perturbation, env)
        return env

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        name = type(self).__name__
        if not isinstance(action_space, self._robust_action_spaces):
            accepted = ", ".join(s.__name__ for s in self._robust_action_spaces)
            raise UnsupportedSpaceError(
                f"{name} supports action spaces of type {accepted}, got {action_space}"
            )
        check_observation_space(observation_space, name)

    @property
    def estimator_spec(self) -> EstimatorSpec:
        """The target's estimator settings (``eta``, ``estimator``, ``max_level``, ``n_samples``,
        ``control_variate``, ``level_sampling``) as one checked value."""
        return EstimatorSpec(**{k: getattr(self, k) for k in EstimatorSpec.keys()})

    @property
    def robust_settings(self) -> dict[str, Any]:
        """The robust settings as plain data (:data:`ROBUST_SETTINGS`)."""
        return {k: getattr(self, k) for k in ROBUST_SETTINGS}

    def _robust_functional(self) -> SetFunctional:
        """The set functional of the target: the soft-min of one value per draw."""
        return entropic_min(self.eta)

    # --------------------------------------------------------------------------- setup
    #: settings that models saved by earlier versions lack, and what those versions did
    _robust_legacy_defaults: ClassVar[dict[str, Any]] = {
        "radius_scale": "absolute",
        "unperturbed_keys": [],
        "observation_scale": None,
        "level_sampling": "independent",
        "perturbation": None,
        "_dynamics": None,
    }

    def _setup_model(self) -> None:
        for name, value in self._robust_legacy_defaults.items():
            if not hasattr(self, name):  # a model saved before the setting existed
                setattr(self, name, value)
        self._check_spaces(self.observation_space, self.action_space)  # type: ignore[attr-defined]
        self.estimator_spec.check_memory(
            int(getattr(self, "batch_size", 1)),
            spaces.flatdim(self.observation_space),
            _widest_layer(getattr(self, "policy_kwargs", None)),
        )
        self._robust_perturbation = ObservationPerturbation(
            self.observation_space, self.radius, self.unperturbed_keys
        )
        if self._dynamics is not None and self._dynamics.requested is None:
            # saved before the resolved set recorded its request: it was resolved from this one
            self._dynamics = dataclasses.replace(self._dynamics, requested=self.perturbation)
        if self._dynamics is not None and self._dynamics.requested != self.perturbation:
            raise InvalidArgumentError(
                "perturbation cannot be changed when a model is loaded (its set was resolved on "
                f"the env it was built with: {self._dynamics.requested!r}); build a new model"
            )
        if self._dynamics is not None:
            self._use_physics_replay_buffer()
        super()._setup_model()  # type: ignore[misc]
        self._robust_generator = th.Generator(device=self.device)
        self._seed_robust_generator(self.seed)
        self._robust_estimates: list[tuple[MLMCEstimate, int]] = []
        self._terminal_shares: list[float] = []
        self._target_estimator: FunctionalEstimator | None = None
        self._dynamics_target: DynamicsTarget | None = None
        if self._dynamics is not None:
            self._build_dynamics_target()
        elif self.radius_scale == "absolute" or self.observation_scale is not None:
            self._build_target_estimator()

    def _use_physics_replay_buffer(self) -> None:
        """Store each transition's physics state (SB3 builds the buffer from these settings)."""
        assert self._dynamics is not None
        cls = getattr(self, "replay_buffer_class", None)
        if cls is not None and not issubclass(cls, PhysicsReplayBuffer):
            raise InvalidArgumentError(
                f"replay_buffer_class must be None or PhysicsReplayBuffer with a dynamics set, got "
                f"{cls.__name__}"
            )
        if getattr(self, "n_steps", 1) != 1:
            raise InvalidArgumentError(
                f"n_steps must be 1 with a dynamics set (the target re-simulates one step), got "
                f"{self.n_steps}"  # type: ignore[attr-defined]
            )
        from robust_rl.envs.tasks import get_task

        state_dim = get_task(self._dynamics.task_id).make_simulator().state_dim
        kwargs: dict[str, Any] = dict(getattr(self, "replay_buffer_kwargs", None) or {})
        kwargs["state_dim"] = state_dim
        kwargs["task_id"] = self._dynamics.task_id
        setattr(self, "replay_buffer_class", PhysicsReplayBuffer)  # noqa: B010  (SB3's attribute)
        setattr(self, "replay_buffer_kwargs", kwargs)  # noqa: B010

    def _build_dynamics_target(self) -> None:
        assert self._dynamics is not None
        estimator = self._make_estimator(entropic_min(self.eta), sampler=self._dynamics.sampler())
        action_space = self.action_space  # type: ignore[attr-defined]
        env_action = (
            self.policy.unscale_action  # type: ignore[attr-defined]
            if isinstance(action_space, spaces.Box)
            else None
        )
        self._dynamics_target = DynamicsTarget(self._dynamics, estimator, env_action)

    def _seed_robust_generator(self, seed: int | None) -> None:
        if seed is None:
            self._robust_generator.seed()
        else:
            derived = np.random.SeedSequence([int(seed) % 2**63, 0x526F62]).generate_state(1)
            self._robust_generator.manual_seed(int(derived[0]))

    def set_random_seed(self, seed: int | None = None) -> None:
        """SB3's seeding, plus the generator of the ball draws."""
        super().set_random_seed(seed)  # type: ignore[misc]
        if seed is not None and hasattr(self, "_robust_generator"):
            self._seed_robust_generator(seed)

    @property
    def effective_radius(self) -> np.ndarray | None:
        """``(D,)`` radius of each perturbed coordinate in observation units (``None`` while the
        observation scale of ``radius_scale="std"`` is not measured yet)."""
        base = self._robust_perturbation.radius
        if self.radius_scale == "absolute":
            return base.copy()
        if self.observation_scale is None:
            return None
        return base * np.asarray(self.observation_scale, dtype=np.float64)

    def _build_target_estimator(self) -> None:
        radius = self.effective_radius
        assert radius is not None
        self._target_estimator = self._make_estimator(
            self._robust_functional(),
            radius=th.as_tensor(radius, dtype=th.float32, device=self.device),
            norm=self.norm,
        )

    def _make_estimator(
        self, functional: SetFunctional, **perturbation: Any
    ) -> FunctionalEstimator:
        """The target's estimator from the agent's settings; ``perturbation``: the ball's
        ``radius``/``norm`` or a ``sampler``."""
        return FunctionalEstimator.from_spec(
            self.estimator_spec, functional, with_center=True, **perturbation
        )

    def _measure_observation_scale(self) -> None:
        """Freeze :attr:`observation_scale`: each perturbed coordinate's standard deviation in the
        replay buffer (as the networks see it, i.e. after ``VecNormalize`` if any)."""
        buffer = self.replay_buffer
        n = buffer.buffer_size if buffer.full else buffer.pos
        stored = buffer.observations
        if isinstance(stored, Mapping):
            obs: Any = {k: v[:n].reshape(-1, *v.shape[2:]) for k, v in stored.items()}
        else:
            obs = stored[:n].reshape(-1, *stored.shape[2:])
        if self._vec_normalize_env is not None:
            obs = self._vec_normalize_env.normalize_obs(obs)
        std = self._robust_perturbation.coordinate_std(obs)
        self.observation_scale = [float(v) for v in std]
        self._build_target_estimator()

    # ---------------------------------------------------------------------- the target
    def robust_estimate(
        self,
        next_observations: th.Tensor | dict[str, th.Tensor],
        values: Values,
        updates: int = 1,
    ) -> MLMCEstimate:
        """Estimate the target's functional of ``values`` over the ball around each next state.

        All draws and the unperturbed next states go through ``values`` in one batched call.

        :param next_observations: ``(B, ...)`` next observations from the replay buffer (a dict
            of tensors for Dict spaces), on the device.
        :param values: ``values(obs, index)`` (see :data:`Values`): ``index`` ``(N,)`` is the
            replay row each observation was drawn around. ``values`` should draw no random
            numbers itself: noise drawn per row before the call and gathered with ``index`` is
            shared by a next state's perturbed copies and its centre, so the functional sees the
            perturbation only, and with ``radius=0`` the estimate is the non-robust target exactly.
        :param updates: gradient updates the estimate serves (several when the targets of several
            replay batches are computed together); ``train/evaluations_per_update`` divides by it.
        :return: the core's :class:`~robust_rl.risk.MLMCEstimate` (``per_point``: the robust
            value ``(B,)``; ``center``: the value at the unperturbed next state).
        """
        if self._target_estimator is None:
            self._measure_observation_scale()
        assert self._target_estimator is not None
        perturbation = self._robust_perturbation
        x = perturbation.flatten(next_observations)

        chunked = in_chunks(values)

        def evaluate(z: th.Tensor, index: th.Tensor) -> th.Tensor:
            return chunked(perturbation.unflatten(z, next_observations, index), index)

        est = self._target_estimator(evaluate, x, generator=self._robust_generator)
        self._robust_estimates.append((est, updates))
        return est

    def robust_targets(
        self,
        samples: Any,
        values: Values,
        discounts: th.Tensor | float,
        updates: int = 1,
    ) -> th.Tensor:
        """The robust Bellman target ``(B, 1)`` of a replay batch.

        Observation ball: ``r + γ(1 − d)·softmin_z V(z)`` over the ball around ``s'``
        (:meth:`robust_estimate`); dynamics set: ``softmin_p [r_p + γ(1 − d_p)V(s'_p)]`` over
        re-simulated steps (:class:`~robust_rl.common.dynamics.DynamicsTarget`).

        :param samples: the replay batch (a :class:`~robust_rl.common.dynamics.PhysicsReplaySamples`
            with a dynamics set).
        :param values: ``values(obs, index)`` of next observations (:data:`Values`); scalar per
            row with a dynamics set.
        :param discounts: ``γ`` (or SB3's per-row n-step discounts, ball only).
        :param updates: gradient updates the targets serve (diagnostics).
        """
        if self._dynamics_target is None:
            estimate = self.robust_estimate(samples.next_observations, values, updates=updates)
            next_values = estimate.per_point.reshape(-1, 1)
            return samples.rewards + (1 - samples.dones) * discounts * next_values
        if not isinstance(samples, PhysicsReplaySamples):
            raise InvalidArgumentError(
                "a dynamics-set target needs replay samples with physics states "
                "(PhysicsReplayBuffer)"
            )
        if isinstance(discounts, th.Tensor):
            raise InvalidArgumentError(
                "a dynamics-set target needs one discount gamma (n-step returns are not supported)"
            )
        estimate, terminal = self._dynamics_target(
            samples,
            in_chunks(values),
            float(discounts),
            self._robust_generator,
            self._vec_normalize_env,
        )
        self._robust_estimates.append((estimate, updates))
        self._terminal_shares.append(terminal)
        return estimate.per_point.to(samples.rewards.dtype).reshape(-1, 1)

    @property
    def dynamics(self) -> ResolvedDynamics | None:
        """The resolved physics set of the target, or ``None`` for the observation ball."""
        return self._dynamics

    def _log_robust_diagnostics(self) -> None:
        """Record the mean robust gap, level and evaluations over the estimates since the last call."""
        recorded, self._robust_estimates = self._robust_estimates, []
        if not recorded:
            return
        estimates = [e for e, _ in recorded]
        gaps = [e.per_point - e.center for e in estimates if e.center is not None]
        if gaps:
            self.logger.record("train/robust_gap", float(th.cat(gaps).mean()))
        levels = th.cat([e.levels for e in estimates]).float()
        self.logger.record("train/mean_level", float(levels.mean()))
        if self._terminal_shares:
            self.logger.record("train/terminal_share", float(np.mean(self._terminal_shares)))
            self._terminal_shares = []
        evaluations = sum(e.n_evaluations for e in estimates)
        self.logger.record(
            "train/evaluations_per_update", evaluations / sum(n for _, n in recorded)
        )

    # ------------------------------------------------------------------- learn, save, load
    def learn(
        self: SelfRobust,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRobust:
        """SB3's ``learn``; TensorBoard runs are named after the class (e.g. ``RobustSAC_1``)."""
        return super().learn(  # type: ignore[misc]
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=type(self).__name__ if tb_log_name is None else tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),  # type: ignore[misc]
            "_target_estimator",
            "_robust_generator",
            "_robust_perturbation",
            "_robust_estimates",
            "_terminal_shares",
            "_dynamics_target",
        ]

    def save(
        self,
        path: str | pathlib.Path | Any,
        exclude: Any = None,
        include: Any = None,
    ) -> None:
        """SB3's ``save``; the robust settings and the draws' generator state go with the model."""
        self._robust_rng_state = (
            self.device.type,
            self._robust_generator.get_state().numpy().copy(),
        )
        super().save(path, exclude=exclude, include=include)  # type: ignore[misc]

    @classmethod
    def load(
        cls: type[SelfRobust],
        path: str | pathlib.Path | Any,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfRobust:
        """SB3's ``load``; also restores the generator of the ball draws (same device type)."""
        model = super().load(  # type: ignore[misc]
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        state = getattr(model, "_robust_rng_state", None)
        if state is not None and state[0] == model.device.type:
            model._robust_generator.set_state(th.from_numpy(np.asarray(state[1], dtype=np.uint8)))
        return model


def _widest_layer(policy_kwargs: Mapping[str, Any] | None) -> int:
    """The widest hidden layer of the networks a ``policy_kwargs`` asks for (SB3's default
    ``[256, 256]`` for SAC/TD3 when none is given; DQN's is 64): the activations the target
    network holds per draw when it evaluates every draw in one pass."""
    arch: Any = (policy_kwargs or {}).get("net_arch", [256, 256])
    widths: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            widths.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(arch)
    return max(widths, default=64)


def _resolve_on_env(perturbation: DynamicsSet, env: GymEnv) -> ResolvedDynamics:
    """The dynamics set resolved on the env's task and its current physics, after checking that
    nothing between the agent and the task changes what it observes or does."""

    def call(name: str, *args: Any) -> Any:
        if isinstance(env, VecEnv):
            return env.env_method(name, *args, indices=[0])[0]
        return env.get_wrapper_attr(name)(*args)

    has_task = env.has_attr("task") if isinstance(env, VecEnv) else _has_wrapper_attr(env, "task")
    if not has_task:
        raise InvalidArgumentError(
            "a dynamics-set perturbation needs an env of robust_rl.envs (it re-simulates the "
            "task's physics), e.g. robust_rl/CartPole-v1; got an env without a task"
        )
    observation_space, action_space = call("physics_spaces")
    if env.observation_space != observation_space or env.action_space != action_space:
        raise InvalidArgumentError(
            "a dynamics set re-simulates the task itself, but a wrapper changes its spaces "
            f"(observations {observation_space} -> {env.observation_space}, actions "
            f"{action_space} -> {env.action_space}); train on the task's env without observation "
            "or action wrappers (VecNormalize is supported)"
        )
    resolved = perturbation.resolve(call("task"), call("get_params"))
    for bound in (resolved.low, resolved.high):
        call("check_params", dict(zip(resolved.names, bound, strict=True)))
    return resolved


def _has_wrapper_attr(env: Any, name: str) -> bool:
    try:
        env.get_wrapper_attr(name)
    except AttributeError:
        return False
    return True
