r"""Sampling the worst-case (Gibbs) distribution of the entropic risk.

On each ball the worst-case density is :math:`\propto \exp(\ell(z)/\eta)` (method.md §1).
Self-normalised importance weights ``softmax(ℓ(z_j)/η)`` over uniform draws approximate it, and
resampling by those weights gives (approximate) samples from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import check_eta, check_points, check_positive_int
from robust_rl.risk.ball import sample_ball

__all__ = ["GibbsSample", "sample_worst_case"]


@dataclass(frozen=True)
class GibbsSample:
    """Result of :func:`sample_worst_case`.

    :ivar samples: ``(B, n_out, *S)`` draws resampled by the weights.
    :ivar candidates: ``(B, n_candidates, *S)`` uniform draws in the ball.
    :ivar weights: ``(B, n_candidates)`` self-normalised weights ``softmax(ℓ/η)`` (rows sum to 1).
    :ivar losses: ``(B, n_candidates)`` losses at the candidates.
    :ivar effective_sample_size: ``(B,)`` ``1 / Σ w_j²``, from 1 (one draw dominates) to
        ``n_candidates`` (uniform weights).
    """

    samples: torch.Tensor
    candidates: torch.Tensor
    weights: torch.Tensor
    losses: torch.Tensor
    effective_sample_size: torch.Tensor


@torch.no_grad()
def sample_worst_case(
    loss_fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *targets: torch.Tensor,
    radius: float | Sequence[float] | torch.Tensor,
    eta: float,
    n_candidates: int = 1024,
    n_out: int = 1,
    norm: str = "linf",
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = None,
) -> GibbsSample:
    """Sample the worst-case distribution ``∝ exp(ℓ(z)/η)`` on the ball around each point.

    :param loss_fn: as in :func:`~robust_rl.risk.entropic_risk`: ``(N, *S), *targets -> (N,)``.
    :param x: points ``(B, *S)``.
    :param n_candidates: uniform draws per point used as proposals.
    :param n_out: samples returned per point (multinomial resampling with replacement).
    :return: :class:`GibbsSample`.
    """
    eta = check_eta(eta)
    check_points(x)
    check_positive_int(n_candidates, "n_candidates")
    check_positive_int(n_out, "n_out")
    batch = x.shape[0]
    z = sample_ball(x, radius, n_candidates, norm=norm, generator=generator, clip=clip)
    flat = z.reshape(batch * n_candidates, *x.shape[1:])
    index = torch.arange(batch, device=x.device).repeat_interleave(n_candidates)
    losses = loss_fn(flat, *(t[index] for t in targets))
    if not isinstance(losses, torch.Tensor) or losses.shape != (flat.shape[0],):
        raise InvalidArgumentError(
            f"loss_fn must return per-draw losses of shape ({flat.shape[0]},)"
        )
    losses = losses.reshape(batch, n_candidates)
    weights = torch.softmax(losses / eta, dim=1)
    picks = torch.multinomial(weights, n_out, replacement=True, generator=generator)
    samples = torch.gather(
        z, 1, picks.reshape(batch, n_out, *([1] * (x.dim() - 1))).expand(-1, -1, *x.shape[1:])
    )
    ess = 1.0 / weights.pow(2).sum(dim=1)
    return GibbsSample(samples, z, weights, losses, ess)
