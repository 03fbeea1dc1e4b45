"""Uniform sampling in ℓ∞ and ℓ2 balls around each point of a batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from robust_rl.risk._checks import (
    as_radius,
    check_clip,
    check_norm,
    check_points,
    check_positive_int,
)

__all__ = ["sample_ball"]


def sample_ball(
    x: torch.Tensor,
    radius: float | Sequence[float] | torch.Tensor,
    n: int,
    norm: str = "linf",
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    r"""Draw ``n`` points uniformly from the ball of radius ``radius`` around each point of ``x``.

    .. math::

        \ell_\infty:\; z = x + \rho \odot u,\quad u \sim \mathcal U[-1, 1]^d \qquad
        \ell_2:\; z = x + \rho \odot r\,\frac{g}{\lVert g\rVert},\quad g\sim\mathcal N(0, I_d),\;
        r = v^{1/d},\; v \sim \mathcal U(0, 1)

    A per-coordinate radius (a tensor broadcastable to the point shape ``S``) scales coordinate
    ``i`` by ``ρ_i``: for ℓ∞ the ball becomes a box, for ℓ2 an ellipsoid (uniform in the unit ball of
    the norm ``‖(z − x)/ρ‖``). A zero radius leaves that coordinate unperturbed.

    :param x: centres, shape ``(B, *S)``.
    :param radius: a non-negative float, or a tensor/sequence broadcastable to ``S``.
    :param n: draws per point (``>= 1``).
    :param norm: ``"linf"`` or ``"l2"``.
    :param generator: optional :class:`torch.Generator` (on ``x``'s device) for reproducibility.
    :param clip: optional box ``(low, high)``; draws are clamped into it. Off by default because
        it changes the distribution (mass piles up on the box faces).
    :return: draws of shape ``(B, n, *S)``.

    >>> z = sample_ball(torch.zeros(2, 3), 0.5, 4)
    >>> z.shape, bool(z.abs().max() <= 0.5)
    (torch.Size([2, 4, 3]), True)
    """
    check_points(x)
    check_positive_int(n, "n")
    check_norm(norm)
    box = check_clip(clip)
    event_shape = x.shape[1:]
    r = as_radius(radius, event_shape, x)
    batch = x.shape[0]
    step = unit_ball_noise((batch, n), event_shape, norm, generator, x) * r
    z = x.unsqueeze(1) + step
    if box is not None:
        z = z.clamp(box[0], box[1])
    return z


def unit_ball_noise(
    batch_shape: tuple[int, ...],
    event_shape: torch.Size,
    norm: str,
    generator: torch.Generator | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """Uniform draws in the unit ℓ∞/ℓ2 ball of ``event_shape``; shape ``(*batch_shape, *event_shape)``.

    Unchecked building block of :func:`sample_ball` (arguments are assumed valid).
    """
    shape = (*batch_shape, *event_shape)
    if norm == "linf":
        u = torch.empty(shape, device=like.device, dtype=like.dtype)
        return u.uniform_(-1.0, 1.0, generator=generator)
    d = max(1, event_shape.numel())
    g = torch.randn((*batch_shape, d), generator=generator, device=like.device, dtype=like.dtype)
    direction = g / g.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(like.dtype).tiny)
    v = torch.rand((*batch_shape, 1), generator=generator, device=like.device, dtype=like.dtype)
    return (direction * v.pow(1.0 / d)).reshape(shape)
