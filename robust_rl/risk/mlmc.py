r"""Multilevel Monte Carlo estimators of set functionals over uniform draws in a ball.

One implementation of level sampling, drawing, batching and the antithetic difference serves
every use: the entropic risk of a scalar loss (:func:`entropic_risk`) and the robust Q-learning
target (:mod:`robust_rl.dqn`), which only differ in the set functional (see
:mod:`robust_rl.risk.functionals`).

For a point ``x`` and a functional ``U`` of ``n`` draws, the level-``L`` objective is
``F^L = E[U(z_1..z_{2^L})]``.

* ``"saa"``: ``U`` of ``2^L`` draws (or ``n_samples``). Bias ``O(2^-L)``, cost ``2^L``.
* ``"rt-mlmc"``: per point, a level ``ℓ ~ p_ℓ ∝ 2^-ℓ`` on ``0..L``, ``2^ℓ`` draws, the antithetic
  difference ``A^ℓ = U(z_{1..2^ℓ}) − ½U(first half) − ½U(second half)`` (``A^0 = U(z_1)``) and
  the estimate ``A^ℓ / p_ℓ``: unbiased for ``F^L`` at expected cost ``(L+1)/(2−2^-L)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from robust_rl.risk._checks import (
    as_radius,
    check_estimator,
    check_eta,
    check_level,
    check_norm,
    check_points,
    check_positive_int,
)
from robust_rl.risk.ball import sample_ball
from robust_rl.risk.functionals import SetFunctional, entropic_max
from robust_rl.risk.levels import level_probabilities, sample_levels

__all__ = ["EntropicRiskResult", "MLMCEstimate", "entropic_risk", "estimate_functional"]

#: ``evaluate(z, index) -> values``: ``z`` of shape ``(N, *S)``, ``index`` of shape ``(N,)`` (the
#: data point each row belongs to); returns ``(N, *O)``.
Evaluator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MLMCEstimate:
    """Result of :func:`estimate_functional`.

    :ivar per_point: ``(B,)`` estimate of ``F^L`` for each point (differentiable).
    :ivar levels: ``(B,)`` int64 levels drawn (``"saa"``: ``max_level`` for every point).
    :ivar n_evaluations: rows passed to ``evaluate`` (draws, plus centres if requested).
    :ivar center: ``(B,)`` the functional at the unperturbed point, if ``with_center``, else None.
    """

    per_point: torch.Tensor
    levels: torch.Tensor
    n_evaluations: int
    center: torch.Tensor | None = None


@dataclass(frozen=True)
class EntropicRiskResult:
    """Result of :func:`entropic_risk`.

    :ivar value: differentiable scalar, the batch mean of :attr:`per_point`.
    :ivar per_point: ``(B,)`` per-point estimates of ``η log E exp(ℓ(z)/η)``.
    :ivar levels: ``(B,)`` levels drawn (``"saa"``: ``max_level``).
    :ivar n_evaluations: number of loss evaluations used.
    :ivar center: ``(B,)`` loss at the unperturbed points when ``control_variate=True``, else None.
    """

    value: torch.Tensor
    per_point: torch.Tensor
    levels: torch.Tensor
    n_evaluations: int
    center: torch.Tensor | None = None


def _antithetic(functional: SetFunctional, values: torch.Tensor) -> torch.Tensor:
    """``A^ℓ`` for a group of points that all drew the same level; ``values`` is ``(b, 2^ℓ, *O)``."""
    n = values.shape[1]
    if n == 1:
        return functional(values)
    half = n // 2
    return functional(values) - 0.5 * (functional(values[:, :half]) + functional(values[:, half:]))


def estimate_functional(
    evaluate: Evaluator,
    functional: SetFunctional,
    x: torch.Tensor,
    *,
    radius: float | Sequence[float] | torch.Tensor,
    norm: str = "linf",
    estimator: str = "rt-mlmc",
    max_level: int = 4,
    n_samples: int | None = None,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = None,
    with_center: bool = False,
    control_variate: bool = False,
) -> MLMCEstimate:
    r"""Estimate ``F^L(x_i) = E[U(z_1..z_{2^L})]`` for every point, with one batched evaluation.

    All draws of all points (and all levels) are concatenated into a single call of
    ``evaluate``, so a neural network sees one forward pass per estimate.

    :param evaluate: ``(z (N, *S), index (N,)) -> (N, *O)``; ``index[k]`` is the point row ``k``
        was drawn around (use it to gather targets).
    :param functional: ``(b, n, *O) -> (b,)``, e.g. :func:`~robust_rl.risk.functionals.entropic_max`.
    :param x: points, shape ``(B, *S)``.
    :param radius: ball radius, a float or a tensor broadcastable to ``S`` (per coordinate).
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` or ``"saa"``.
    :param max_level: truncation level ``L`` (``"saa"`` uses ``2^L`` draws unless ``n_samples``).
    :param n_samples: ``"saa"`` only: draws per point, overriding ``2^max_level``.
    :param generator: optional generator for reproducible levels and draws.
    :param clip: optional box the draws are clamped into (changes the distribution).
    :param with_center: also evaluate the unperturbed points (one extra row per point) and return
        the functional there as :attr:`MLMCEstimate.center`.
    :param control_variate: ``"rt-mlmc"`` only (implies ``with_center``): use the centre value
        ``c`` as a control variate for level 0, ``c + (A^ℓ − c·[ℓ=0]) / p_ℓ``. Still unbiased for
        ``F^L``; the level-0 term's variance falls from ``Var U(z)/p_0`` to ``Var(U(z) − c)/p_0``,
        which matters when values are large compared with their spread over the ball.
    """
    check_points(x)
    check_norm(norm)
    check_estimator(estimator)
    check_level(max_level)
    as_radius(radius, x.shape[1:], x)
    if n_samples is not None:
        if estimator != "saa":
            raise ValueError(
                f"n_samples applies to estimator='saa' only, got estimator={estimator!r}"
            )
        check_positive_int(n_samples, "n_samples")
    if control_variate and estimator != "rt-mlmc":
        raise ValueError("control_variate applies to estimator='rt-mlmc' only")
    with_center = with_center or control_variate
    batch = x.shape[0]
    device = x.device
    rows = torch.arange(batch, device=device)

    if estimator == "saa":
        n = n_samples if n_samples is not None else 2**max_level
        levels = torch.full((batch,), max_level, dtype=torch.long, device=device)
        groups = [(rows, n)]
    else:
        levels = sample_levels(batch, max_level, generator=generator, device=device)
        groups = []
        for level in range(max_level + 1):
            idx = torch.nonzero(levels == level, as_tuple=True)[0]
            if idx.numel() > 0:
                groups.append((idx, 2**level))

    # Draw every group, then evaluate all draws (and the centres) in one pass.
    chunks: list[torch.Tensor] = []
    owners: list[torch.Tensor] = []
    for idx, n in groups:
        z = sample_ball(x[idx], radius, n, norm=norm, generator=generator, clip=clip)
        chunks.append(z.reshape(-1, *x.shape[1:]))
        owners.append(idx.repeat_interleave(n))
    if with_center:
        chunks.append(x)
        owners.append(rows)
    z_all = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    owner_all = torch.cat(owners) if len(owners) > 1 else owners[0]
    out = evaluate(z_all, owner_all)
    if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != z_all.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"evaluate/loss_fn must return a tensor with one row per draw, shape ({z_all.shape[0]}, ...),"
            f" got {shape}"
        )

    center = None
    if with_center:
        center = functional(out[-batch:].unsqueeze(1))
    probs = level_probabilities(max_level).to(dtype=out.dtype, device=device)

    estimates: list[torch.Tensor] = []
    start = 0
    for idx, n in groups:
        block = out[start : start + idx.numel() * n].reshape(idx.numel(), n, *out.shape[1:])
        start += idx.numel() * n
        if estimator == "saa":
            estimates.append(functional(block))
            continue
        level = n.bit_length() - 1
        diff = _antithetic(functional, block)
        if control_variate and level == 0:
            assert center is not None
            c = center[idx]
            estimates.append(c + (diff - c) / probs[0])
        elif control_variate:
            estimates.append(center[idx] + diff / probs[level])  # type: ignore[index]
        else:
            estimates.append(diff / probs[level])
    order = torch.cat([idx for idx, _ in groups])
    per_point = torch.cat(estimates)[torch.argsort(order)]
    return MLMCEstimate(per_point, levels, int(z_all.shape[0]), center)


def entropic_risk(
    loss_fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *targets: torch.Tensor,
    radius: float | Sequence[float] | torch.Tensor,
    eta: float,
    norm: str = "linf",
    estimator: str = "rt-mlmc",
    max_level: int = 4,
    n_samples: int | None = None,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = None,
    control_variate: bool = False,
) -> EntropicRiskResult:
    r"""Estimate the entropic risk :math:`\eta \log E_{z\sim U(B_\rho(x))} \exp(\ell(z)/\eta)`.

    .. math::

        F(\theta) = \mathbb E_x\Big[\eta \log \mathbb E_{z \sim \mathcal U(B_\rho(x))}
        \exp\big(\ell(z;\theta)/\eta\big)\Big]

    ``η → 0`` tends to the worst case over the ball, ``η → ∞`` to the average (``η = inf`` allowed).

    :param loss_fn: ``loss_fn(z, *targets)`` with ``z`` of shape ``(N, *S)`` (all draws flattened)
        and every target gathered to match (row ``k`` belongs to the point that ``z[k]`` was drawn
        around); returns per-draw losses of shape ``(N,)``.
    :param x: data points, shape ``(B, *S)``.
    :param targets: per-point tensors with leading dimension ``B`` (labels, ...).
    :param radius: non-negative float or tensor broadcastable to ``S``.
    :param eta: regularisation strength ``η > 0``.
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` (default) or ``"saa"``.
    :param max_level: truncation level ``L``.
    :param n_samples: draws per point for ``"saa"`` (default ``2**max_level``).
    :param generator: optional :class:`torch.Generator` for reproducibility.
    :param clip: optional input box ``(low, high)`` the draws are clamped into (off by default).
    :param control_variate: ``"rt-mlmc"`` only; use the clean loss as a level-0 control variate
        (one extra evaluation per point, same expectation, lower variance).
    :return: :class:`EntropicRiskResult`.

    >>> x = torch.zeros(4, 2)
    >>> res = entropic_risk(lambda z: z.sum(dim=1), x, radius=0.1, eta=1.0, estimator="saa")
    >>> res.per_point.shape, res.n_evaluations
    (torch.Size([4]), 64)
    """
    check_eta(eta)
    check_points(x)
    for i, t in enumerate(targets):
        if not isinstance(t, torch.Tensor) or t.dim() < 1 or t.shape[0] != x.shape[0]:
            raise ValueError(
                f"targets[{i}] must be a tensor with leading dimension B={x.shape[0]}, got "
                f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}"
            )

    def evaluate(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        losses = loss_fn(z, *(t[index] for t in targets))
        if not isinstance(losses, torch.Tensor) or losses.shape != (z.shape[0],):
            shape = (
                tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
            )
            raise ValueError(
                f"loss_fn must return per-draw losses of shape ({z.shape[0]},), got {shape}"
            )
        return losses

    est = estimate_functional(
        evaluate,
        entropic_max(eta),
        x,
        radius=radius,
        norm=norm,
        estimator=estimator,
        max_level=max_level,
        n_samples=n_samples,
        generator=generator,
        clip=clip,
        control_variate=control_variate,
    )
    return EntropicRiskResult(
        est.per_point.mean(), est.per_point, est.levels, est.n_evaluations, est.center
    )
