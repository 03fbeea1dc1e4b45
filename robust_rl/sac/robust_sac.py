"""Robust SAC: Stable-Baselines3's SAC with an entropic soft-min over perturbed next states.

Paper: J. Wang, R. Gao, Y. Xie, *Regularization for Adversarial Robust Learning*,
https://arxiv.org/abs/2408.09672 (the robust target: method.md §4 of this project); SAC:
T. Haarnoja et al., https://arxiv.org/abs/1801.01290.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import SACPolicy

from robust_rl.common.dynamics import DynamicsSet, ObservationBall
from robust_rl.common.observations import RadiusSpec, batch_rows
from robust_rl.common.robust import RobustAgentMixin, Values
from robust_rl.risk import MLMCEstimate

__all__ = ["RobustSAC"]


class RobustSAC(RobustAgentMixin, SAC):
    r"""Soft Actor-Critic with an entropic robust target.

    The soft value of each next state ``s'`` is replaced by its entropic soft-min over the
    uniform distribution on the ball :math:`B_\rho(s')`, each perturbed state ``z`` valued under
    the current policy at ``z``:

    .. math::

        y = r + \gamma (1 - d) \Big[-\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(s'))}
        \exp\big(-v(z)/\eta\big)\Big], \quad
        v(z) = \min_{k=1,2} Q_{\bar\theta_k}(z, a) - \alpha \log \pi(a|z),\ a \sim \pi(\cdot|z)

    The action is sampled by reparameterisation, ``a = tanh(μ(z) + σ(z) ξ)``, with one standard
    normal ``ξ`` per next state shared by all its perturbed copies (common random numbers; with
    gSDE the exploration matrix plays that part): the soft-min then sees the state perturbation
    only, not a minimum over the policy's own sampling noise, and with ``radius=0`` the target is
    SAC's exactly whatever the estimator. All draws go through the actor and the twin target
    critics in one batched forward pass (:meth:`robust_next_values`); the rest of SAC's update is
    Stable-Baselines3's. With ``radius=0``, ``estimator="saa"``, ``n_samples=1`` it is SB3's SAC
    bit for bit (same seed).

    Every SB3 argument is :class:`~stable_baselines3.SAC`'s; see its documentation.

    :param radius: perturbation radius (see ``radius_scale``): a float, one value per
        observation coordinate, or for Dict observations a mapping from entry name to either.
    :param eta: entropic regularisation strength ``η > 0`` (``math.inf``: average over the ball).
    :param norm: ``"linf"`` (a box) or ``"l2"`` (an ellipsoid for a per-coordinate radius).
    :param estimator: ``"rt-mlmc"`` (randomised-truncation MLMC) or ``"saa"`` (``2^L`` draws).
    :param max_level: level ``L``: ``"saa"`` uses ``2^L`` draws; ``"rt-mlmc"`` truncates at ``L``.
    :param n_samples: ``"saa"`` only: draws per transition (overrides ``2**max_level``).
    :param control_variate: ``"rt-mlmc"`` only: the nominal next value as a level-0 control
        variate (``None``: on for ``"rt-mlmc"``, off for ``"saa"``).
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` (default; one level per
        transition) or ``"systematic"`` (same law per transition, nearly constant level counts per
        batch; RobustDQN learned CartPole less reliably with it).
    :param radius_scale: ``"absolute"`` (radius in observation units) or ``"std"`` (in units of
        each coordinate's standard deviation in the replay buffer at the first gradient step,
        then frozen and saved as ``observation_scale``).
    :param unperturbed_keys: Dict observations: Box entries left unperturbed (non-Box entries
        never are).
    """

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
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
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
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
        self, next_observations: th.Tensor | dict[str, th.Tensor], ent_coef: th.Tensor
    ) -> MLMCEstimate:
        """Entropic soft-min of the soft value ``min_k Q_k(z, a) − α log π(a|z)``, ``a ~ π(·|z)``,
        over the ball around each next state.

        :param next_observations: ``(B, ...)`` next observations (a dict for Dict spaces).
        :param ent_coef: the entropy coefficient ``α`` (a one-element tensor).
        :return: the core's :class:`~robust_rl.risk.MLMCEstimate`; ``per_point`` ``(B,)``.
        """

        values = self._next_soft_values(batch_rows(next_observations), ent_coef)
        return self.robust_estimate(next_observations, values)

    def _next_soft_values(self, rows: int, ent_coef: th.Tensor) -> Values:
        """``values(obs, index)``: :meth:`_soft_values` with one standard normal per replay row
        (drawn here as SB3's SAC draws it, ``Normal.rsample`` of a ``(rows, action_dim)`` batch)
        shared by every perturbed copy of that row; with gSDE the exploration matrix is the
        noise."""
        xi = None
        if not self.use_sde:
            xi = th.empty((rows, get_action_dim(self.action_space)), device=self.device).normal_()

        def soft_values(obs: th.Tensor | dict[str, th.Tensor], index: th.Tensor) -> th.Tensor:
            return self._soft_values(obs, None if xi is None else xi[index], ent_coef)

        return soft_values

    def _soft_values(
        self, obs: th.Tensor | dict[str, th.Tensor], xi: th.Tensor | None, ent_coef: th.Tensor
    ) -> th.Tensor:
        """``min_k Q_k(obs, a) − α log π(a|obs)`` with ``a`` from :meth:`_sample_actions`."""
        actions, log_prob = self._sample_actions(obs, xi)
        q_values = th.cat(self.critic_target(obs, actions), dim=1)
        return th.min(q_values, dim=1).values - ent_coef * log_prob.reshape(-1)

    def _sample_actions(
        self, obs: th.Tensor | dict[str, th.Tensor], xi: th.Tensor | None
    ) -> tuple[th.Tensor, th.Tensor]:
        """``a = tanh(μ(obs) + σ(obs) ξ)`` and ``log π(a|obs)`` for given standard normals ``xi``
        ``(N, action_dim)`` (``None`` with gSDE: the actor's own, state-dependent noise)."""
        if xi is None:
            return self.actor.action_log_prob(obs)
        mean, log_std, _ = self.actor.get_action_dist_params(obs)
        # no gSDE here: a squashed Gaussian (SB3 annotates action_dist as the gSDE distribution)
        squashed = cast(SquashedDiagGaussianDistribution, self.actor.action_dist)
        dist = squashed.proba_distribution(mean, log_std)
        gaussian = dist.distribution.loc + xi * dist.distribution.scale
        actions = th.tanh(gaussian)
        return actions, dist.log_prob(actions, gaussian)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's SAC update with :meth:`robust_targets` as the target (the ball: the
        :meth:`robust_next_values` soft-min as the next soft value)."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)

        ent_coef_losses, ent_coefs = [], []
        actor_losses, critic_losses = [], []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(
                    self.log_ent_coef * (log_prob + self.target_entropy).detach()
                ).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            with th.no_grad():
                values = self._next_soft_values(replay_data.rewards.shape[0], ent_coef)
                target_q_values = self.robust_targets(replay_data, values, discounts)

            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = 0.5 * sum(
                F.mse_loss(current_q, target_q_values) for current_q in current_q_values
            )
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._log_robust_diagnostics()
