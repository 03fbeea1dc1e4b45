"""The entropic (soft worst-case) classification loss, for use in any training loop.

.. math::
    F(\\theta) = \\frac1B \\sum_{i=1}^B \\eta \\log \\mathbb{E}_{z \\sim U(B_\\rho(x_i))}
        \\exp\\big(\\ell(z, y_i; \\theta) / \\eta\\big),
    \\qquad \\ell = \\text{cross-entropy}

estimated by the shared core :func:`robust_rl.risk.entropic_risk` (RT-MLMC or SAA). Small η
approaches the worst case in the ball, large η the average over the ball (noise augmentation).

Clipping the draws to the input box (``clip=(0.0, 1.0)`` for images) is an option, off by
default: it changes the distribution from uniform on the ball to its push-forward by the clamp.

Example::

    loss = entropic_loss(model, x, y, radius=0.1, eta=0.05)
    loss.backward()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robust_rl.risk import EntropicRiskResult, EstimatorSpec, entropic_risk
from robust_rl.supervised._checks import check_clip, check_inputs, check_norm, check_radius

__all__ = ["EntropicLoss", "entropic_loss", "entropic_loss_result"]


def entropic_loss_result(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    radius: float,
    eta: float,
    norm: str = "linf",
    estimator: str = "rt-mlmc",
    max_level: int = 4,
    n_samples: int | None = None,
    clip: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
    control_variate: bool | None = None,
) -> EntropicRiskResult:
    """Like :func:`entropic_loss` but returns the core's full result object.

    The result has ``value`` (differentiable scalar), ``per_point`` ``(B,)``, ``levels`` ``(B,)``
    and ``n_evaluations`` (number of forward evaluations of the loss).
    """
    spec = EstimatorSpec.pick(locals())
    return spec_loss_result(
        model, x, y, spec, radius=radius, norm=norm, clip=clip, generator=generator
    )


def spec_loss_result(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: EstimatorSpec,
    *,
    radius: float,
    norm: str = "linf",
    clip: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
) -> EntropicRiskResult:
    """:func:`entropic_loss_result` with the estimator settings as one
    :class:`~robust_rl.risk.EstimatorSpec` (as :class:`EntropicLoss` and
    :func:`~robust_rl.supervised.train.fit` hold them)."""
    box = check_clip(clip)
    check_inputs(x, y, box=box)

    def loss_fn(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(z), labels, reduction="none")

    return entropic_risk(
        loss_fn,
        x,
        y,
        radius=radius,
        norm=norm,
        generator=generator,
        clip=box,
        **spec.to_dict(),
    )


def entropic_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    radius: float,
    eta: float,
    norm: str = "linf",
    estimator: str = "rt-mlmc",
    max_level: int = 4,
    n_samples: int | None = None,
    clip: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
    control_variate: bool | None = None,
) -> torch.Tensor:
    """Estimate of the entropic cross-entropy risk of ``model`` on a batch (differentiable).

    :param model: classifier mapping ``(N, *S)`` to logits ``(N, K)``.
    :param x: inputs ``(B, *S)``.
    :param y: labels ``(B,)``.
    :param radius: radius ρ ≥ 0 of the uniform perturbation ball.
    :param eta: regularisation strength η > 0 (temperature of the soft-max).
    :param norm: ball norm, ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` (randomised-truncation MLMC, one level per point, expected
        ``(L+1)/(2-2^-L)`` draws per point) or ``"saa"`` (``2^L`` draws per point).
    :param max_level: truncation level L ≥ 0; the bias of both estimators is O(2^-L).
    :param n_samples: SAA only: number of draws per point instead of ``2^max_level``.
    :param clip: box ``(low, high)`` the draws are clamped to (changes the distribution), or None.
    :param generator: random generator for the draws (and the RT-MLMC levels).
    :param control_variate: use the clean loss as a control variate for level 0 (one extra
        evaluation per point; same expectation, much lower variance: without it only the level-0
        points, about half the batch, carry the loss itself). ``None`` (default): on for
        ``"rt-mlmc"``, off for ``"saa"``; ``True`` with ``"saa"`` is an error.
    :returns: scalar tensor, the batch mean of the per-point estimates.
    """
    return entropic_loss_result(
        model,
        x,
        y,
        radius=radius,
        eta=eta,
        norm=norm,
        estimator=estimator,
        max_level=max_level,
        n_samples=n_samples,
        clip=clip,
        generator=generator,
        control_variate=control_variate,
    ).value


class EntropicLoss(nn.Module):
    """Module form of :func:`entropic_loss`: ``EntropicLoss(radius=0.1, eta=0.05)(model, x, y)``.

    After each call, :attr:`last_result` holds the core's result object (per-point values, levels,
    number of loss evaluations) for logging.

    :param radius: radius ρ ≥ 0 of the uniform perturbation ball.
    :param eta: regularisation strength η > 0.
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` or ``"saa"``.
    :param max_level: truncation level L.
    :param n_samples: SAA only: draws per point instead of ``2^max_level``.
    :param clip: box ``(low, high)`` the draws are clamped to, or ``None``.
    :param generator: random generator for the draws.
    :param control_variate: clean loss as level-0 control variate; ``None`` (default): on for
        ``"rt-mlmc"``, off for ``"saa"``.
    """

    def __init__(
        self,
        radius: float,
        eta: float,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        clip: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
        control_variate: bool | None = None,
    ) -> None:
        super().__init__()
        self.radius = check_radius(radius)
        self.spec = EstimatorSpec.pick(locals())
        self.norm = check_norm(norm)
        self.clip = check_clip(clip)
        self.generator = generator
        self.last_result: Any = None

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:returns: the scalar entropic loss of ``model`` on ``(x, y)``."""
        self.last_result = spec_loss_result(
            model,
            x,
            y,
            self.spec,
            radius=self.radius,
            norm=self.norm,
            clip=self.clip,
            generator=self.generator,
        )
        return self.last_result.value

    @property
    def eta(self) -> float:
        """The temperature η of the soft-max (``spec.eta``)."""
        return self.spec.eta

    def extra_repr(self) -> str:
        return (
            f"radius={self.radius}, eta={self.spec.eta}, norm={self.norm!r}, "
            f"estimator={self.spec.estimator!r}, max_level={self.spec.max_level}, clip={self.clip}"
        )
