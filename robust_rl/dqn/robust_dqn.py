"""Robust DQN: Stable-Baselines3's DQN with an entropic soft-min Bellman target.

Paper: J. Wang, R. Gao, Y. Xie, *Regularization for Adversarial Robust Learning*,
https://arxiv.org/abs/2408.09672 (robust Q-learning: method.md §4 of this project).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.dqn.policies import DQNPolicy

from robust_rl.common.dynamics import (
    DynamicsSet,
    ObservationBall,
    PhysicsReplaySamples,
    concat_samples,
)
from robust_rl.common.observations import RadiusSpec
from robust_rl.common.robust import RobustAgentMixin
from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import (
    MLMCEstimate,
    SetFunctional,
    soft_min_of_max,
    soft_min_then_max,
)

__all__ = ["TARGET_FORMS", "TD_LOSSES", "RobustDQN"]

#: ``"per-action"``: max_a softmin_z Q(z, a) (the talk's form); ``"state-value"``: softmin_z max_a Q(z, a)
TARGET_FORMS: tuple[str, ...] = ("per-action", "state-value")
#: TD losses; the TD gradient is linear in the target under ``"mse"`` only.
TD_LOSSES: tuple[str, ...] = ("huber", "mse")


class RobustDQN(RobustAgentMixin, DQN):
    r"""Deep Q-Network with an entropic robust Bellman target.

    The next state ``s'`` of every sampled transition is replaced by the uniform distribution on
    the ball :math:`B_\rho(s')` and the adversary (who minimises value) is softened by ``η``:

    .. math::

        y = r + \gamma (1 - d) \max_a \Big[-\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(s'))}
        \exp\big(-Q_{\text{target}}(z, a)/\eta\big)\Big]

    With ``perturbation=DynamicsSet()`` the perturbation is the task's physics uncertainty set
    instead (:mod:`robust_rl.common.dynamics`): each transition ``(s, a)`` is re-simulated under
    drawn parameters ``p`` and

    .. math::

        y = -\eta \log \mathbb E_{p} \exp\big(-(r_p + \gamma (1 - d_p)
        \max_{a'} Q_{\text{target}}(s'_p, a'))/\eta\big)

    (``target_form`` then does not apply: the soft-min is of the one-step value).

    ``η → 0`` gives the worst case in the ball, ``η → ∞`` the average. The expectation is estimated
    with the shared core (:class:`robust_rl.risk.FunctionalEstimator`): ``2^L`` draws per
    transition (``"saa"``) or randomised-truncation MLMC per transition (``"rt-mlmc"``). All
    perturbed next states of a batch go through the target network in one forward pass. Box and
    Dict observations (``MultiInputPolicy``) are supported: see :class:`robust_rl.RobustSAC` for
    the radius per Dict entry and ``unperturbed_keys``.

    Every other argument, and the whole training loop, is Stable-Baselines3's
    :class:`~stable_baselines3.DQN`; see its documentation. The robust arguments shared by all
    robust agents (``radius``, ``eta``, ``norm``, ``estimator``, ``max_level``, ``n_samples``,
    ``control_variate``, ``level_sampling``, ``radius_scale``, ``unperturbed_keys``) are
    documented in :mod:`robust_rl.common.robust` and :class:`robust_rl.RobustSAC`.

    :param radius: perturbation radius: a float, or one value per observation coordinate
        (CartPole's coordinates have very different scales, so use a per-coordinate radius there,
        or ``radius_scale="std"``), or per Dict entry.
    :param perturbation: ``None`` (default): the observation ball of ``radius``, ``norm``,
        ``radius_scale`` and ``unperturbed_keys``; an :class:`~robust_rl.ObservationBall` (or
        ``{"ball": {...}}``): those four settings in one value, replacing the arguments; a
        :class:`~robust_rl.DynamicsSet` (or its
        config form ``{"dynamics": "task" | {name: [low, high]}, "distribution": ...}``): the
        task's physics set, re-simulated (the ball's arguments are then unused).
    :param target_form: ``"per-action"`` (default; soft-min per action, then max) or
        ``"state-value"`` (soft-min of ``max_a Q``).
    :param control_variate: use the nominal next value ``max_a Q(s', a)`` as a level-0 control
        variate. Unbiased either way, but without it the level-0 term carries the whole value
        divided by ``p_0`` and the target's standard deviation is of the order of the value itself
        (without it RobustDQN does not learn CartPole). ``None`` (default): on for ``"rt-mlmc"``,
        off for ``"saa"``; ``True`` with ``"saa"`` is an error.
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` (default; one level per
        transition) or ``"systematic"`` (every transition's level keeps the exact law ``p_ℓ``; the
        level counts of each target pass, over its ``target_batches`` replay batches, are nearly
        constant and the pass's bookkeeping is reused: about 25 µs less per gradient step in the
        throughput benchmark; but in a 10-seed CartPole check it learned less reliably, 6/10
        seeds solving the nominal MDP against 10/10 with independent levels).
    :param td_loss: ``"huber"`` (SB3's default) or ``"mse"``. An unbiased target estimate gives an
        unbiased TD gradient under ``"mse"``, and under ``"huber"`` only inside its quadratic zone.
    :param target_batches: how many gradient steps' robust targets are computed in one batched
        pass. The target network does not change during a call of :meth:`train` (SB3 updates it
        between environment steps), so the replay batches of several gradient steps can be drawn
        first and their targets computed together: the same targets in law, the same replay
        batches, and the estimator's fixed cost shared. ``None`` (default): about 512 next states
        at a time (fewer for large observations, at least one batch); ``1``: one batch per
        gradient step.
    """

    _robust_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Discrete,)

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
        radius: RadiusSpec = 0.01,
        eta: float = 0.1,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        target_form: str = "per-action",
        control_variate: bool | None = None,
        level_sampling: str = "independent",
        radius_scale: str = "absolute",
        unperturbed_keys: Sequence[str] | None = None,
        perturbation: DynamicsSet | ObservationBall | dict[str, Any] | None = None,
        td_loss: str = "huber",
        target_batches: int | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if target_form not in TARGET_FORMS:
            raise InvalidArgumentError(
                f"target_form must be one of {TARGET_FORMS}, got {target_form!r}"
            )
        self.target_form = target_form
        if td_loss not in TD_LOSSES:
            raise InvalidArgumentError(f"td_loss must be one of {TD_LOSSES}, got {td_loss!r}")
        self.td_loss = td_loss
        if target_batches is not None and (
            isinstance(target_batches, bool)
            or not isinstance(target_batches, int)
            or target_batches < 1
        ):
            raise InvalidArgumentError(
                f"target_batches must be a positive integer or None (automatic), got {target_batches!r}"
            )
        self.target_batches = target_batches
        # the SB3 parent takes its own arguments; the robust ones are checked and kept here
        super().__init__(**self._robust_init_arguments(locals()))
        if _init_setup_model:
            self._setup_model()

    # ----------------------------------------------------------------------- robust target
    def _robust_functional(self) -> SetFunctional:
        """Per-action soft-min then max (``"per-action"``) or soft-min of ``max_a Q``."""
        form = soft_min_then_max if self.target_form == "per-action" else soft_min_of_max
        return form(self.eta)

    def robust_next_values(
        self, next_observations: th.Tensor | dict[str, th.Tensor], updates: int = 1
    ) -> MLMCEstimate:
        """Entropic soft-min of the target network's value over the ball around each next state.

        :param next_observations: ``(B, ...)`` next observations (a dict for Dict spaces), on the
            device.
        :param updates: gradient updates these next observations serve (for the diagnostics).
        :return: the core's :class:`~robust_rl.risk.MLMCEstimate`: ``per_point`` is the robust
            value ``(B,)`` (an unbiased estimate of its level-``max_level`` version for
            ``"rt-mlmc"``), ``center`` the nominal value ``max_a Q_target(s', a)``.
        """
        return self.robust_estimate(
            next_observations, lambda obs, _: self.q_net_target(obs), updates=updates
        )

    def _target_values(self, obs: th.Tensor | dict[str, th.Tensor], _: th.Tensor) -> th.Tensor:
        """The target network's values of next observations: ``(N, A)`` for the ball's
        functionals, ``max_a Q_target`` ``(N,)`` for a dynamics set."""
        q_values = self.q_net_target(obs)
        return q_values if self.dynamics is None else q_values.max(dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update with :meth:`robust_targets` in place of SB3's target.

        The replay batches of up to :attr:`target_batches` gradient steps are drawn first (in
        SB3's order) and their robust targets computed in one pass of the target network, which
        does not change during this call.
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses = []
        chunk = self._target_chunk(batch_size)
        for first in range(0, gradient_steps, chunk):
            batches = [
                self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
                for _ in range(min(chunk, gradient_steps - first))
            ]
            with th.no_grad():
                samples = _concat_batches(batches)
                discounts = samples.discounts if samples.discounts is not None else self.gamma
                targets = self.robust_targets(
                    samples, self._target_values, discounts, updates=len(batches)
                ).view(len(batches), -1, 1)
            for replay_data, target_q_values in zip(batches, targets, strict=True):
                current_q_values = self.q_net(replay_data.observations)
                current_q_values = th.gather(
                    current_q_values, dim=1, index=replay_data.actions.long()
                )
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
        self._log_robust_diagnostics()

    def _target_chunk(self, batch_size: int) -> int:
        """Gradient steps per robust-target pass: :attr:`target_batches`, or about 512 next states
        (at most 2^20 observation entries) when it is None."""
        if self.target_batches is not None:
            return self.target_batches
        # SB3's DQN accepts only observation spaces with a shape (Box, Discrete, Dict of them...)
        shapes = [cast("tuple[int, ...]", s.shape) for s in _subspaces(self.observation_space)]
        entries = sum(int(np.prod(shape)) for shape in shapes)
        points = min(_AUTO_TARGET_POINTS, _AUTO_TARGET_ENTRIES // max(entries, 1))
        return max(1, points // batch_size)


#: automatic ``target_batches``: about this many next states per pass (on one CPU thread the
#: target network's time per row is lowest at a few hundred to a few thousand rows), and at most
#: this many observation entries
_AUTO_TARGET_POINTS = 512
_AUTO_TARGET_ENTRIES = 2**20


def _concat_batches(batches: list[Any]) -> Any:
    """Replay batches stacked along the batch axis (one batch is returned as it is)."""
    if len(batches) == 1:
        return batches[0]
    if isinstance(batches[0], PhysicsReplaySamples):
        return concat_samples(batches)
    discounts = [b.discounts for b in batches]
    return ReplayBufferSamples(
        observations=_concat([b.observations for b in batches]),  # type: ignore[arg-type]
        actions=th.cat([b.actions for b in batches]),
        next_observations=_concat([b.next_observations for b in batches]),  # type: ignore[arg-type]
        dones=th.cat([b.dones for b in batches]),
        rewards=th.cat([b.rewards for b in batches]),
        discounts=None if discounts[0] is None else th.cat(discounts),
    )


def _concat(
    observations: list[th.Tensor] | list[dict[str, th.Tensor]],
) -> th.Tensor | dict[str, th.Tensor]:
    """Replay batches' observations (tensors, or dicts of tensors) stacked along the batch axis."""
    if len(observations) == 1:
        return observations[0]
    if isinstance(observations[0], dict):
        return {k: th.cat([o[k] for o in observations]) for k in observations[0]}
    return th.cat(observations)


def _subspaces(space: spaces.Space) -> list[spaces.Space]:
    """The entries of a Dict space, or the space itself."""
    return list(space.spaces.values()) if isinstance(space, spaces.Dict) else [space]
