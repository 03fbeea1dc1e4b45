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

import numpy as np
import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import (
    as_radius,
    check_clip,
    check_estimator,
    check_eta,
    check_level,
    check_norm,
    check_points,
    check_positive_int,
)
from robust_rl.risk.ball import sample_ball, unit_ball_noise
from robust_rl.risk.functionals import SetFunctional, entropic_max
from robust_rl.risk.levels import level_probabilities

__all__ = [
    "EntropicRiskResult",
    "FunctionalEstimator",
    "MLMCEstimate",
    "entropic_risk",
    "estimate_functional",
]

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


class FunctionalEstimator:
    r"""A validated, reusable estimator of ``F^L(x_i) = E[U(z_1..z_{2^L})]`` for every point.

    Arguments are checked once here; calling the estimator runs the hot path only, so an agent
    can call it at every gradient step. All draws of all points and levels (and the centres) are
    concatenated into a single call of ``evaluate``: a neural network sees one forward pass.

    :param functional: ``(b, n, *O) -> (b,)``, e.g. :func:`~robust_rl.risk.functionals.entropic_max`.
        It must be a function of the empirical distribution of the ``n`` draws (invariant to
        their order and to repeating every draw equally often), as every plug-in estimator
        ``U`` is: RT-MLMC evaluates sets of different sizes in one call by tiling them to a
        common length.
    :param radius: ball radius, a float or a tensor broadcastable to the point shape ``S``.
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` or ``"saa"``.
    :param max_level: truncation level ``L`` (``"saa"`` uses ``2^L`` draws unless ``n_samples``).
    :param n_samples: ``"saa"`` only: draws per point, overriding ``2^max_level``.
    :param clip: optional box the draws are clamped into (changes the distribution).
    :param with_center: also evaluate the unperturbed points (one extra row per point) and return
        the functional there as :attr:`MLMCEstimate.center`.
    :param control_variate: ``"rt-mlmc"`` only (implies ``with_center``): use the centre value
        ``c`` as a control variate for level 0, ``c + (A^ℓ − c·[ℓ=0]) / p_ℓ``. Still unbiased for
        ``F^L``; the level-0 term's variance falls from ``Var U(z)/p_0`` to ``Var(U(z) − c)/p_0``,
        which matters when values are large compared with their spread over the ball.
    """

    def __init__(
        self,
        functional: SetFunctional,
        *,
        radius: float | Sequence[float] | torch.Tensor,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        clip: tuple[float, float] | None = None,
        with_center: bool = False,
        control_variate: bool = False,
    ) -> None:
        self.functional = functional
        self.norm = check_norm(norm)
        self.estimator = check_estimator(estimator)
        self.max_level = check_level(max_level)
        if n_samples is not None:
            if estimator != "saa":
                raise InvalidArgumentError(
                    f"n_samples applies to estimator='saa' only, got estimator={estimator!r}"
                )
            check_positive_int(n_samples, "n_samples")
        self.n_samples = n_samples
        if control_variate and estimator != "rt-mlmc":
            raise InvalidArgumentError("control_variate applies to estimator='rt-mlmc' only")
        self.clip = check_clip(clip)
        self.control_variate = bool(control_variate)
        self.with_center = bool(with_center) or self.control_variate
        self.radius = radius
        as_radius(
            radius,
            torch.Size([]) if _is_scalar(radius) else torch.Size(_shape(radius)),
            torch.zeros(()),
        )
        self._radius_cache: dict[tuple[torch.Size, torch.device, torch.dtype], torch.Tensor] = {}
        probs = level_probabilities(self.max_level).numpy()
        self._cdf = np.cumsum(probs)
        self._inv_probs_np = 1.0 / probs

    def _radius_for(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[1:], x.device, x.dtype)
        r = self._radius_cache.get(key)
        if r is None:
            r = as_radius(self.radius, x.shape[1:], x)
            self._radius_cache[key] = r
        return r

    def __call__(
        self,
        evaluate: Evaluator,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> MLMCEstimate:
        """Estimate for every point of ``x`` (shape ``(B, *S)``).

        :param evaluate: ``(z (N, *S), index (N,)) -> (N, *O)``; ``index[k]`` is the point row
            ``k`` was drawn around (use it to gather targets).
        :param generator: optional generator for reproducible levels and draws.
        """
        check_points(x)
        r = self._radius_for(x)
        if self.estimator == "saa":
            return self._saa(evaluate, x, r, generator)
        return self._rt_mlmc(evaluate, x, r, generator)

    # -------------------------------------------------------------------------------- SAA
    def _saa(
        self,
        evaluate: Evaluator,
        x: torch.Tensor,
        r: torch.Tensor,
        generator: torch.Generator | None,
    ) -> MLMCEstimate:
        batch, event = x.shape[0], x.shape[1:]
        n = self.n_samples if self.n_samples is not None else 2**self.max_level
        z = sample_ball(x, r, n, norm=self.norm, generator=generator, clip=self.clip)
        rows = torch.arange(batch, device=x.device)
        chunks, owners = [z.reshape(-1, *event)], [rows.repeat_interleave(n)]
        if self.with_center:
            chunks.append(x)
            owners.append(rows)
        z_all, owner = torch.cat(chunks), torch.cat(owners)
        out = _checked(evaluate(z_all, owner), z_all.shape[0])
        per_point = self.functional(out[: batch * n].reshape(batch, n, *out.shape[1:]))
        center = self.functional(out[batch * n :].unsqueeze(1)) if self.with_center else None
        levels = torch.full((batch,), self.max_level, dtype=torch.long, device=x.device)
        return MLMCEstimate(per_point, levels, int(z_all.shape[0]), center)

    # ---------------------------------------------------------------------------- RT-MLMC
    def _rt_mlmc(
        self,
        evaluate: Evaluator,
        x: torch.Tensor,
        r: torch.Tensor,
        generator: torch.Generator | None,
    ) -> MLMCEstimate:
        batch, event = x.shape[0], x.shape[1:]
        device = x.device
        # float64 uniforms for the level draw (MPS has no float64: float32 is ample there)
        udtype = torch.float32 if device.type == "mps" else torch.float64
        u = torch.rand(batch, generator=generator, device=device, dtype=udtype)
        plan = _rt_plan(
            u.cpu().numpy(), self._cdf, self._inv_probs_np, self.with_center, self.control_variate
        )

        owner = torch.from_numpy(plan.owner).to(device)
        z = unit_ball_noise((plan.n_draws,), event, self.norm, generator, x).mul_(r)
        z += x[owner[: plan.n_draws]]
        if self.clip is not None:
            z = z.clamp(self.clip[0], self.clip[1])
        if self.with_center:
            z = torch.cat([z, x])
        out = _checked(evaluate(z, owner), z.shape[0])

        # Every set (each point's full set, its two halves, its centre) is tiled to a common
        # length: the functional is a function of the empirical measure of its draws, so tiling
        # leaves its value unchanged, and one call serves every set of every level.
        tiles = torch.from_numpy(plan.tiles).to(device)
        sets = out.index_select(0, tiles.view(-1)).view(*tiles.shape, *out.shape[1:])
        values = self.functional(sets)
        values = values.view(-1, batch)  # rows: full set, first half, second half[, centre]
        coef = torch.from_numpy(plan.coef).to(device=device, dtype=values.dtype)
        per_point = (values * coef).sum(dim=0)
        center = values[3] if self.with_center else None
        levels = torch.from_numpy(plan.levels).to(device)
        return MLMCEstimate(per_point, levels, int(z.shape[0]), center)


@dataclass(frozen=True)
class _Plan:
    """Integer bookkeeping of one RT-MLMC call (numpy: cheap for small index arrays).

    Sets are laid out as ``[full sets (B), first halves (B), second halves (B), centres (B)]``;
    a level-0 point's "halves" are its single draw with coefficient zero.
    """

    levels: np.ndarray  # (B,) level per point
    owner: np.ndarray  # (N [+ B],) point of each evaluated row
    n_draws: int  # N, rows before the centres
    tiles: np.ndarray  # (n_sets, M) rows of each set, tiled to length M
    coef: np.ndarray  # (3 or 4, B) weights of full set, halves[, centre] in the estimate


def _rt_plan(
    u: np.ndarray, cdf: np.ndarray, inv_probs: np.ndarray, with_center: bool, control_variate: bool
) -> _Plan:
    batch = u.shape[0]
    levels = np.minimum(np.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)
    sizes = np.left_shift(1, levels)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    n_draws = int(ends[-1])
    points = np.arange(batch)
    owner = np.repeat(points, sizes)
    half = np.right_shift(sizes, 1)
    half_size = np.maximum(half, 1)
    set_start = [starts, starts, starts + half]
    set_size = [sizes, half_size, half_size]
    if with_center:
        owner = np.concatenate([owner, points])
        set_start.append(n_draws + points)
        set_size.append(np.ones_like(sizes))
    width = int(sizes.max())
    tiles = np.concatenate(set_start)[:, None] + (
        np.arange(width)[None, :] % np.concatenate(set_size)[:, None]
    )
    # estimate = w A^l (+ c (1 - w [l = 0]) with the control variate), A^l = F - (H1 + H2)/2
    w = inv_probs[levels]
    hw = np.where(levels > 0, -0.5 * w, 0.0)
    rows = [w, hw, hw]
    if with_center:
        rows.append(1.0 - np.where(levels == 0, w, 0.0) if control_variate else np.zeros(batch))
    return _Plan(levels, owner, n_draws, tiles, np.stack(rows))


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
    """One-shot form of :class:`FunctionalEstimator`: ``FunctionalEstimator(...)(evaluate, x)``.

    See :class:`FunctionalEstimator` for the arguments.
    """
    est = FunctionalEstimator(
        functional,
        radius=radius,
        norm=norm,
        estimator=estimator,
        max_level=max_level,
        n_samples=n_samples,
        clip=clip,
        with_center=with_center,
        control_variate=control_variate,
    )
    return est(evaluate, x, generator=generator)


def _checked(out: torch.Tensor, n_rows: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != n_rows:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidArgumentError(
            f"evaluate/loss_fn must return a tensor with one row per draw, shape ({n_rows}, ...), "
            f"got {shape}"
        )
    return out


def _is_scalar(radius: object) -> bool:
    return isinstance(radius, int | float) or (
        isinstance(radius, torch.Tensor) and radius.dim() == 0
    )


def _shape(radius: object) -> tuple[int, ...]:
    try:
        return tuple(torch.as_tensor(radius).shape)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidArgumentError(
            f"radius must be a non-negative float or a tensor/sequence broadcastable to the point "
            f"shape, got {radius!r}"
        ) from None


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
            raise InvalidArgumentError(
                f"targets[{i}] must be a tensor with leading dimension B={x.shape[0]}, got "
                f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}"
            )

    def evaluate(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        losses = loss_fn(z, *(t[index] for t in targets))
        if not isinstance(losses, torch.Tensor) or losses.shape != (z.shape[0],):
            shape = (
                tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
            )
            raise InvalidArgumentError(
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
