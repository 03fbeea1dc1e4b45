"""Robust DQN: Stable-Baselines3's DQN with an entropic soft-min Bellman target.

Paper: J. Wang, R. Gao, Y. Xie, *Regularization for Adversarial Robust Learning*,
https://arxiv.org/abs/2408.09672 (robust Q-learning: method.md §4 of this project).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy, MlpPolicy

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import (
    FunctionalEstimator,
    MLMCEstimate,
    soft_min_of_max,
    soft_min_then_max,
)

__all__ = ["TARGET_FORMS", "TD_LOSSES", "RobustDQN"]

SelfRobustDQN = TypeVar("SelfRobustDQN", bound="RobustDQN")

#: ``"per-action"``: max_a softmin_z Q(z, a) (the talk's form); ``"state-value"``: softmin_z max_a Q(z, a)
TARGET_FORMS: tuple[str, ...] = ("per-action", "state-value")
#: TD losses; the TD gradient is linear in the target under ``"mse"`` only.
TD_LOSSES: tuple[str, ...] = ("huber", "mse")


class RobustDQN(DQN):
    r"""Deep Q-Network with an entropic robust Bellman target.

    The next state ``s'`` of every sampled transition is replaced by the uniform distribution on
    the ball :math:`B_\rho(s')` and the adversary (who minimises value) is softened by ``η``:

    .. math::

        y = r + \gamma (1 - d) \max_a \Big[-\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(s'))}
        \exp\big(-Q_{\text{target}}(z, a)/\eta\big)\Big]

    ``η → 0`` gives the worst case in the ball, ``η → ∞`` the average. The expectation is estimated
    with the shared core (:func:`robust_rl.risk.estimate_functional`): ``2^L`` draws per transition
    (``"saa"``) or randomised-truncation MLMC per transition (``"rt-mlmc"``). All perturbed next
    states of a batch go through the target network in one forward pass.

    Every other argument, and the whole training loop, is Stable-Baselines3's
    :class:`~stable_baselines3.DQN`; see its documentation.

    :param radius: perturbation radius in observation units: a float, or one value per observation
        coordinate (CartPole's coordinates have very different scales, so use a per-coordinate
        radius there).
    :param eta: entropic regularisation strength ``η > 0`` (``math.inf``: average over the ball).
    :param norm: ``"linf"`` (a box) or ``"l2"`` (an ellipsoid for a per-coordinate radius).
    :param estimator: ``"rt-mlmc"`` or ``"saa"``.
    :param max_level: level ``L``: ``"saa"`` uses ``2^L`` draws; ``"rt-mlmc"`` truncates at ``L``.
    :param n_samples: ``"saa"`` only: draws per transition (overrides ``2**max_level``).
    :param target_form: ``"per-action"`` (default; soft-min per action, then max) or
        ``"state-value"`` (soft-min of ``max_a Q``).
    :param control_variate: use the nominal next value ``max_a Q(s', a)`` as a level-0 control
        variate. Unbiased either way, but without it the level-0 term carries the whole value
        divided by ``p_0`` and the target's standard deviation is of the order of the value itself
        (without it RobustDQN does not learn CartPole). ``None`` (default): on for ``"rt-mlmc"``,
        off for ``"saa"``; ``True`` with ``"saa"`` is an error.
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` (default; one level per
        transition) or ``"systematic"`` (every transition's level keeps the exact law ``p_ℓ``,
        the level counts of a batch are nearly constant and the batch bookkeeping is reused:
        about 40 µs less per gradient step; but in a 10-seed CartPole check it learned less
        reliably, 6/10 seeds solving the nominal MDP against 10/10 with independent levels).
    :param td_loss: ``"huber"`` (SB3's default) or ``"mse"``. An unbiased target estimate gives an
        unbiased TD gradient under ``"mse"``, and under ``"huber"`` only inside its quadratic zone.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
    }

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        radius: float | Sequence[float] = 0.01,
        eta: float = 0.1,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        target_form: str = "per-action",
        control_variate: bool | None = None,
        level_sampling: str = "independent",
        td_loss: str = "huber",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self.radius: float | list[float] = _check_radius_value(radius)
        # the core checks eta, norm, estimator, max_level and n_samples (one set of messages)
        FunctionalEstimator(
            soft_min_then_max(eta),
            radius=0.0,
            norm=norm,
            estimator=estimator,
            max_level=max_level,
            n_samples=n_samples,
            control_variate=control_variate,
            level_sampling=level_sampling,
        )
        self.eta = float(eta)
        self.norm = norm
        self.estimator = estimator
        self.max_level = max_level
        self.n_samples = n_samples
        if target_form not in TARGET_FORMS:
            raise InvalidArgumentError(
                f"target_form must be one of {TARGET_FORMS}, got {target_form!r}"
            )
        self.target_form = target_form
        self.control_variate = control_variate
        self.level_sampling = level_sampling
        if td_loss not in TD_LOSSES:
            raise InvalidArgumentError(f"td_loss must be one of {TD_LOSSES}, got {td_loss!r}")
        self.td_loss = td_loss
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        if not isinstance(self.observation_space, spaces.Box):
            raise InvalidArgumentError(
                "RobustDQN perturbs observations in a ball, so observation_space must be a "
                f"gymnasium.spaces.Box, got {type(self.observation_space).__name__}"
            )
        obs_shape = tuple(self.observation_space.shape)
        radius = np.asarray(self.radius, dtype=np.float32)
        if radius.ndim > 0 and radius.shape != obs_shape and radius.size != math.prod(obs_shape):
            raise InvalidArgumentError(
                f"radius has {radius.size} values but the observation has shape {obs_shape}; pass "
                f"a float or one value per observation coordinate ({math.prod(obs_shape)} values)"
            )
        super()._setup_model()
        radius_tensor = th.as_tensor(
            radius.reshape(obs_shape) if radius.ndim > 0 else radius, device=self.device
        )
        functional = soft_min_then_max if self.target_form == "per-action" else soft_min_of_max
        self._target_estimator = FunctionalEstimator(
            functional(self.eta),
            radius=radius_tensor,
            norm=self.norm,
            estimator=self.estimator,
            max_level=self.max_level,
            n_samples=self.n_samples,
            with_center=True,
            control_variate=self.control_variate,
            # checkpoints saved before level_sampling existed used independent levels
            level_sampling=getattr(self, "level_sampling", "independent"),
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_target_estimator"]

    # ----------------------------------------------------------------------- robust target
    def robust_next_values(self, next_observations: th.Tensor) -> MLMCEstimate:
        """Entropic soft-min of the target network's value over the ball around each next state.

        :param next_observations: ``(B, *obs_shape)`` next states (already on the device).
        :return: the core's :class:`~robust_rl.risk.MLMCEstimate`: ``per_point`` is the robust
            value ``(B,)`` (an unbiased estimate of its level-``max_level`` version for
            ``"rt-mlmc"``), ``center`` the nominal value ``max_a Q_target(s', a)``.
        """
        return self._target_estimator(
            lambda z, _index: self.q_net_target(z), next_observations.float()
        )

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update with :meth:`robust_next_values` in place of ``max_a Q_target(s', a)``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses, estimates, evaluations = [], [], []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                est = self.robust_next_values(replay_data.next_observations)
                next_values = est.per_point.reshape(-1, 1)
                target_q_values = (
                    replay_data.rewards + (1 - replay_data.dones) * discounts * next_values
                )
                estimates.append(est)  # diagnostics are reduced once, after the loop
                evaluations.append(est.n_evaluations)

            current_q_values = self.q_net(replay_data.observations)
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())
            if self.td_loss == "huber":
                loss = F.smooth_l1_loss(current_q_values, target_q_values)
            else:
                loss = F.mse_loss(current_q_values, target_q_values)
            losses.append(loss.detach())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(th.stack(losses).mean()))
        robust = th.stack([e.per_point for e in estimates])
        nominal = th.stack([e.center for e in estimates])  # type: ignore[misc]
        self.logger.record("train/robust_gap", float((robust - nominal).mean()))
        self.logger.record(
            "train/mean_level", float(th.stack([e.levels for e in estimates]).float().mean())
        )
        self.logger.record("train/evaluations_per_update", float(np.mean(evaluations)))

    def learn(
        self: SelfRobustDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "RobustDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRobustDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )


def _check_radius_value(radius: float | Sequence[float]) -> float | list[float]:
    """Radius as a JSON-friendly float or list of floats, finite and non-negative."""
    try:
        arr = np.asarray(radius, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"radius must be a non-negative float or a sequence of them (one per observation "
            f"coordinate), got {radius!r}"
        ) from None
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidArgumentError(
            f"radius must be a non-negative float or a sequence of them (one per observation "
            f"coordinate), got {radius!r}"
        )
    return float(arr) if arr.ndim == 0 else [float(v) for v in arr]
