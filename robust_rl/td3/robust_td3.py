"""Robust TD3: Stable-Baselines3's TD3 with an entropic soft-min over perturbed next states.

Paper: J. Wang, R. Gao, Y. Xie, *Regularization for Adversarial Robust Learning*,
https://arxiv.org/abs/2408.09672 (the robust target: method.md §4 of this project); TD3:
S. Fujimoto et al., https://arxiv.org/abs/1802.09477.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import TD3Policy

from robust_rl.common.dynamics import DynamicsSet, ObservationBall
from robust_rl.common.observations import RadiusSpec, batch_rows
from robust_rl.common.robust import RobustAgentMixin, Values
from robust_rl.risk import MLMCEstimate

__all__ = ["RobustTD3"]


class RobustTD3(RobustAgentMixin, TD3):
    r"""Twin Delayed DDPG with an entropic robust target.

    The value of each next state ``s'`` is replaced by its entropic soft-min over the uniform
    distribution on the ball :math:`B_\rho(s')`, each perturbed state ``z`` valued with
    target-policy smoothing at ``z``:

    .. math::

        y = r + \gamma (1 - d) \Big[-\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(s'))}
        \exp\big(-v(z)/\eta\big)\Big], \quad
        v(z) = \min_{k=1,2} Q_{\bar\theta_k}\big(z, \mathrm{clip}(\mu_{\bar\phi}(z) + \epsilon, -1, 1)\big),
        \ \epsilon = \mathrm{clip}(\mathcal N(0, \sigma^2), -c, c)

    The smoothing noise :math:`\epsilon` is drawn once per next state and shared by all its
    perturbed copies (common random numbers): the soft-min then sees the state perturbation only,
    not a minimum over smoothing-noise draws, and with ``radius=0`` the target is TD3's exactly
    whatever the estimator. All draws go through the target actor and the twin target critics in
    one batched forward pass (:meth:`robust_next_values`); the rest of TD3's update (delayed
    policy updates, Polyak averaging) is Stable-Baselines3's. With ``radius=0``, ``estimator="saa"``, ``n_samples=1`` it
    is SB3's TD3 bit for bit (same seed).

    Every SB3 argument is :class:`~stable_baselines3.TD3`'s; the robust arguments are those of
    :class:`~robust_rl.RobustSAC` (``radius``, ``eta``, ``norm``, ``estimator``, ``max_level``,
    ``n_samples``, ``control_variate``, ``level_sampling``, ``radius_scale``,
    ``unperturbed_keys``).
    """

    def __init__(
        self,
        policy: str | type[TD3Policy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        radius: RadiusSpec = 0.01,
        eta: float = 0.1,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        control_variate: bool | None = None,
        level_sampling: str = "independent",
        radius_scale: str = "absolute",
        unperturbed_keys: Sequence[str] | None = None,
        perturbation: DynamicsSet | ObservationBall | dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        # the SB3 parent takes its own arguments; the robust ones are checked and kept here
        super().__init__(**self._robust_init_arguments(locals()))
        if _init_setup_model:
            self._setup_model()

    # ----------------------------------------------------------------------- robust target
    def robust_next_values(
        self, next_observations: th.Tensor | dict[str, th.Tensor]
    ) -> MLMCEstimate:
        """Entropic soft-min of ``min_k Q_k(z, clip(μ(z) + ε))`` over the ball around each next
        state (target-policy smoothing at every draw ``z``, with one ``ε`` per next state shared by
        its draws).

        :param next_observations: ``(B, ...)`` next observations (a dict for Dict spaces).
        :return: the core's :class:`~robust_rl.risk.MLMCEstimate`; ``per_point`` ``(B,)``.
        """
        values = self._next_smoothed_values(batch_rows(next_observations))
        return self.robust_estimate(next_observations, values)

    def _next_smoothed_values(self, rows: int) -> Values:
        """``values(obs, index)``: :meth:`_smoothed_values` with one clipped smoothing noise per
        replay row (drawn here as SB3's TD3 draws it, one ``(rows, action_dim)`` normal sample),
        shared by every perturbed copy of that row."""
        noise = th.empty((rows, get_action_dim(self.action_space)), device=self.device).normal_(
            0, self.target_policy_noise
        )
        noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)

        def smoothed_values(obs: th.Tensor | dict[str, th.Tensor], index: th.Tensor) -> th.Tensor:
            return self._smoothed_values(obs, noise[index])

        return smoothed_values

    def _smoothed_values(
        self, obs: th.Tensor | dict[str, th.Tensor], noise: th.Tensor
    ) -> th.Tensor:
        """``min_k Q_k(obs, clip(μ(obs) + noise, -1, 1))`` for given clipped smoothing noise
        ``noise`` ``(N, action_dim)``."""
        actions = (self.actor_target(obs) + noise).clamp(-1, 1)
        q_values = th.cat(self.critic_target(obs, actions), dim=1)
        return th.min(q_values, dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's TD3 update with :meth:`robust_targets` as the target (the ball: the
        :meth:`robust_next_values` soft-min as the next value)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                values = self._next_smoothed_values(replay_data.rewards.shape[0])
                target_q_values = self.robust_targets(replay_data, values, discounts)

            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = sum(
                F.mse_loss(current_q, target_q_values) for current_q in current_q_values
            )
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(
                    replay_data.observations, self.actor(replay_data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(
                    self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0
                )
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self._log_robust_diagnostics()
