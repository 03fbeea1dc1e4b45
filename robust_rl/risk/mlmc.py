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
  the estimate ``A^ℓ / p_ℓ``: unbiased for ``F^L`` at expected cost ``(L+1)/(2−2^-L)``. By
  default the value ``c`` at the unperturbed point is a level-0 control variate:
  ``c + (A^ℓ − c·[ℓ=0]) / p_ℓ``, with the same expectation.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import (
    as_radius,
    check_clip,
    check_eta,
    check_norm,
    check_points,
)
from robust_rl.risk.ball import sample_ball, unit_ball_noise
from robust_rl.risk.functionals import EntropicFunctional, SetFunctional, entropic_max
from robust_rl.risk.levels import LevelSampler
from robust_rl.risk.samplers import Sampler
from robust_rl.risk.spec import EstimatorSpec, check_sampling

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
    :ivar center: ``(B,)`` loss at the unperturbed points when the control variate is on, else None.
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

    RT-MLMC hot path: the levels are drawn on the CPU (:class:`~robust_rl.risk.LevelSampler`),
    points are grouped by level, and the index bookkeeping (which row belongs to which point and
    to which of its sets, the coefficients) depends only on the level counts: it is built from
    per-level tables once per count vector, copied to the device at once and reused. With
    ``level_sampling="systematic"`` the counts take a handful of values, so every step after the
    first few reuses a plan. An :class:`~robust_rl.risk.functionals.EntropicFunctional` (every
    functional the library ships) evaluates all sets by segment reductions over the evaluated
    rows; any other functional sees every set tiled to a common length.

    :param functional: ``(b, n, *O) -> (b,)``, e.g. :func:`~robust_rl.risk.functionals.entropic_max`.
        It must be a function of the empirical distribution of the ``n`` draws (invariant to
        their order and to repeating every draw equally often), as every plug-in estimator
        ``U`` is: RT-MLMC evaluates sets of different sizes in one call by tiling them to a
        common length. It may receive a non-contiguous view (reduce along ``dim=1``; do not
        ``.view`` it).
    :param radius: ball radius, a float or a tensor broadcastable to the point shape ``S``
        (required unless ``sampler`` is given).
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` or ``"saa"``.
    :param max_level: truncation level ``L`` (``"saa"`` uses ``2^L`` draws unless ``n_samples``).
    :param n_samples: ``"saa"`` only: draws per point, overriding ``2^max_level``.
    :param clip: optional box the draws are clamped into (changes the distribution).
    :param with_center: also evaluate the unperturbed points (one extra row per point) and return
        the functional there as :attr:`MLMCEstimate.center`.
    :param control_variate: ``"rt-mlmc"`` only (implies ``with_center``): use the centre value
        ``c`` as a control variate for level 0, ``c + (A^ℓ − c·[ℓ=0]) / p_ℓ``. Still unbiased for
        ``F^L``; the level-0 term's second moment falls from ``E[U(z)²]/p_0`` to
        ``E[(U(z) − c)²]/p_0``, which matters when values are large compared with their spread
        over the ball. ``None`` (default): on for ``"rt-mlmc"``, off for ``"saa"`` (which has no
        level 0 to correct); ``True`` with ``"saa"`` is an error.
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` (default; one level per point,
        independently) or ``"systematic"`` (the same law for every point, nearly constant level
        counts per batch, lower variance of the batch mean; see :mod:`robust_rl.risk.levels`).
    :param sampler: draw the perturbations with this :class:`~robust_rl.risk.samplers.Sampler`
        instead of a ball around each point (e.g. a
        :class:`~robust_rl.risk.samplers.BoxSampler` of physics parameters); then ``radius``,
        ``norm`` and ``clip`` do not apply and must be left at their defaults. Level law,
        antithetic differences, control variate and batching are the same.
    """

    def __init__(
        self,
        functional: SetFunctional,
        *,
        radius: float | Sequence[float] | torch.Tensor | None = None,
        norm: str = "linf",
        estimator: str = "rt-mlmc",
        max_level: int = 4,
        n_samples: int | None = None,
        clip: tuple[float, float] | None = None,
        with_center: bool = False,
        control_variate: bool | None = None,
        level_sampling: str = "independent",
        sampler: Sampler | None = None,
    ) -> None:
        self.functional = functional
        if sampler is not None and (radius is not None or clip is not None or norm != "linf"):
            raise InvalidArgumentError(
                "radius, norm and clip describe the ball; leave them unset when a sampler is given"
            )
        if sampler is None and radius is None:
            raise InvalidArgumentError("radius is required unless a sampler is given")
        self.sampler = sampler
        self.norm = check_norm(norm)
        self.control_variate = check_sampling(
            estimator, max_level, n_samples, control_variate, level_sampling
        )
        self.estimator = estimator
        self.max_level = max_level
        self.n_samples = n_samples
        self.level_sampling = level_sampling
        self.clip = check_clip(clip)
        self.with_center = bool(with_center) or self.control_variate
        self.radius = 0.0 if radius is None else radius
        as_radius(
            self.radius,
            torch.Size([]) if _is_scalar(self.radius) else torch.Size(_shape(self.radius)),
            torch.zeros(()),
        )
        self._radius_cache: dict[tuple[torch.Size, torch.device, torch.dtype], torch.Tensor] = {}
        self._level_sampler = LevelSampler(self.max_level, self.level_sampling)
        self._layouts = _Layouts(
            1.0 / self._level_sampler.probabilities, self.with_center, self.control_variate
        )
        # the functionals the library ships evaluate their sets by segment reductions; any other
        # set functional sees every set tiled to a common length
        self._segments = isinstance(functional, EntropicFunctional)
        self._plans: OrderedDict[tuple[tuple[int, ...], torch.device, torch.dtype], _Plan] = (
            OrderedDict()
        )

    @classmethod
    def from_spec(
        cls,
        spec: EstimatorSpec,
        functional: SetFunctional,
        *,
        radius: float | Sequence[float] | torch.Tensor | None = None,
        norm: str = "linf",
        clip: tuple[float, float] | None = None,
        with_center: bool = False,
        sampler: Sampler | None = None,
    ) -> FunctionalEstimator:
        """The estimator a :class:`~robust_rl.risk.EstimatorSpec` describes, for ``functional``
        (usually ``spec.soft_max()`` or ``spec.soft_min()``) over the ball or ``sampler``."""
        return cls(
            functional,
            radius=radius,
            norm=norm,
            estimator=spec.estimator,
            max_level=spec.max_level,
            n_samples=spec.n_samples,
            clip=clip,
            with_center=with_center,
            control_variate=spec.control_variate,
            level_sampling=spec.level_sampling,
            sampler=sampler,
        )

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
        level_generator: torch.Generator | None = None,
    ) -> MLMCEstimate:
        """Estimate for every point of ``x`` (shape ``(B, *S)``).

        :param evaluate: ``(z (N, *S), index (N,)) -> (N, *O)``; ``index[k]`` is the point row
            ``k`` was drawn around (use it to gather targets).
        :param generator: optional generator (on ``x``'s device) for reproducible draws; a CPU
            generator also draws the levels.
        :param level_generator: optional CPU generator for the RT-MLMC levels; default:
            ``generator`` if it is a CPU generator, else torch's default CPU generator. Levels are
            always drawn on the CPU, so no step waits for the device.
        """
        check_points(x)
        r = self._radius_for(x)
        if self.estimator == "saa":
            return self._saa(evaluate, x, r, generator)
        return self._rt_mlmc(evaluate, x, r, generator, level_generator)

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
        rows = torch.arange(batch, device=x.device)
        if self.sampler is None:
            z = sample_ball(x, r, n, norm=self.norm, generator=generator, clip=self.clip)
            z = z.reshape(-1, *event)
        else:
            z = x.repeat_interleave(n, dim=0)
            self.sampler.sample_(z, generator)
        chunks, owners = [z], [rows.repeat_interleave(n)]
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
        level_generator: torch.Generator | None,
    ) -> MLMCEstimate:
        batch, event = x.shape[0], x.shape[1:]
        device = x.device
        draw = self._level_sampler.draw(batch, _levels_generator(generator, level_generator))
        plan = self._plan_for(draw.counts, device, x.dtype)
        inverse = np.empty(batch, dtype=np.int64)
        inverse[draw.order] = np.arange(batch)
        if device.type == "cpu":
            order, slot_of = torch.from_numpy(draw.order), torch.from_numpy(inverse)
            levels = torch.from_numpy(draw.levels)
        else:  # one host-to-device copy: slot -> point, point -> slot, level of each point
            packed = _to_device(np.concatenate([draw.order, inverse, draw.levels]), device)
            order, slot_of, levels = packed.view(3, batch).unbind(0)

        owner = order.index_select(0, plan.row_slot)
        z = x.index_select(0, owner)
        draws = z.narrow(0, 0, plan.n_draws)
        if self.sampler is not None:
            self.sampler.sample_(draws, generator)
        else:
            if self.norm == "linf":
                noise = torch.empty_like(draws).uniform_(-1.0, 1.0, generator=generator)
            else:
                noise = unit_ball_noise((plan.n_draws,), event, self.norm, generator, x)
            draws.addcmul_(noise, r)
            if self.clip is not None:
                draws.clamp_(self.clip[0], self.clip[1])
        out = _checked(evaluate(z, owner), plan.n_rows)

        if plan.tiles is None:
            values = self.functional.segment_values(  # type: ignore[attr-defined]
                out, plan.member_row, plan.member_set, plan.inv_set_size
            )
        else:
            values = self.functional(_tiled_sets(out, plan.tiles, plan.width))
        values = values.view(-1, batch)  # full sets, first halves, second halves[, centres]
        per_point = (values * plan.coef).sum(dim=0).index_select(0, slot_of)
        center = values[3].index_select(0, slot_of) if self.with_center else None
        return MLMCEstimate(per_point, levels, plan.n_rows, center)

    def _plan_for(self, counts: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> _Plan:
        key = (counts, device, dtype)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        lay = self._layouts(counts, tiled=not self._segments)
        sets = (lay.member_row, lay.member_set) if lay.tiles is None else (lay.tiles.reshape(-1),)
        n_rows = lay.row_slot.shape[0]
        # one host-to-device copy for the integers, one for the weights
        ints = _to_device(np.concatenate([lay.row_slot, *sets]), device)
        floats = _to_device(np.concatenate([lay.coef, lay.inv_set_size]), device).to(dtype)
        row_slot, set_index = ints.split([n_rows, ints.shape[0] - n_rows])
        coef, inv_set_size = floats.split(lay.coef.shape[0])
        member_row, member_set = set_index.chunk(2) if lay.tiles is None else (None, None)
        plan = _Plan(
            row_slot=row_slot,
            n_draws=lay.n_draws,
            n_rows=n_rows,
            coef=coef,
            member_row=member_row,
            member_set=member_set,
            inv_set_size=inv_set_size.reshape(-1),
            tiles=None if lay.tiles is None else set_index,
            width=0 if lay.tiles is None else int(lay.tiles.shape[1]),
        )
        self._plans[key] = plan
        if len(self._plans) > _PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan


#: plans kept per estimator (least recently used dropped): systematic sampling needs a handful,
#: independent sampling rarely repeats a count vector and rebuilds (tens of microseconds).
_PLAN_CACHE_SIZE = 64


def _tiled_sets(out: torch.Tensor, tiles: torch.Tensor, width: int) -> torch.Tensor:
    """Every set's rows of ``out``, tiled to ``width``: ``(n_sets, width, *O)``.

    A set functional is a function of the empirical measure of its draws, so tiling leaves its
    value unchanged, and one call serves every set of every level. The gather puts the draws
    innermost in memory so the functional's reductions run contiguously.
    """
    if out.dim() == 1:
        return out.index_select(0, tiles).view(-1, width)
    flat = out.flatten(1).t()
    sets = flat.index_select(1, tiles).view(flat.shape[0], -1, width).permute(1, 2, 0)
    return sets.unflatten(2, out.shape[1:]) if out.dim() > 2 else sets


@dataclass(frozen=True)
class RTLayout:
    """Rows and sets of RT-MLMC for given level counts (host arrays, see :class:`_Layouts`).

    Points are laid out in *slots* sorted by level (``counts[0]`` level-0 slots first). Slot
    ``k`` owns ``2^ℓ_k`` consecutive draw rows; the centres (if any) follow all draws, one per
    slot. Sets are laid out as ``[full sets (B), first halves (B), second halves (B)[,
    centres (B)]]``. A slot's first half is its first ``2^(ℓ-1)`` draws; at level 0 it is the one
    draw and the second half is empty (both weighted zero).

    :ivar levels: ``(B,)`` level of each slot.
    :ivar row_slot: ``(N [+ B],)`` slot of each evaluated row.
    :ivar n_draws: ``N``, the rows before the centres.
    :ivar member_row: ``(M,)`` row of each (row, set) membership (segment form, else None).
    :ivar member_set: ``(M,)`` set of each membership (segment form, else None).
    :ivar tiles: ``(n_sets, width)`` rows of each set tiled to the largest size (tiled form,
        else None).
    :ivar coef: ``(3 or 4, B)`` weights of full set, halves[, centre] in each slot's estimate.
    :ivar inv_set_size: ``(3 or 4, B)`` one over each set's size (1 for an empty set).
    """

    levels: np.ndarray
    row_slot: np.ndarray
    n_draws: int
    member_row: np.ndarray | None
    member_set: np.ndarray | None
    tiles: np.ndarray | None
    coef: np.ndarray
    inv_set_size: np.ndarray


@dataclass(frozen=True)
class _Plan:
    """An :class:`RTLayout` on a device, as the hot path uses it."""

    row_slot: torch.Tensor
    n_draws: int
    n_rows: int
    coef: torch.Tensor  # (3 or 4, B)
    member_row: torch.Tensor | None
    member_set: torch.Tensor | None
    inv_set_size: torch.Tensor
    tiles: torch.Tensor | None  # flattened (n_sets * width,)
    width: int


class _Layouts:
    """Builds the :class:`RTLayout` of given levels in a dozen array operations.

    Everything that depends only on the level (set sizes, the rows of each set relative to the
    slot's first row, the coefficients) is tabulated once; a layout is then a lookup by each
    slot's level plus its first row.

    :param inv_probs: ``1 / p_ℓ`` for ``ℓ = 0..L``.
    :param with_center: evaluate the unperturbed points (centre sets after the halves).
    :param control_variate: weight the centre as the level-0 control variate (else weight 0).
    """

    def __init__(self, inv_probs: np.ndarray, with_center: bool, control_variate: bool) -> None:
        self.by_level = by_level = np.arange(len(inv_probs))
        self.sizes = np.left_shift(1, by_level)
        half = np.right_shift(self.sizes, 1)
        self.first_half = np.maximum(half, 1)
        j = np.arange(int(self.sizes[-1]))[None, :]
        # rows of the full set, first half and second half, relative to the slot's first row
        self.patterns = np.stack(
            [
                j % self.sizes[:, None],
                j % self.first_half[:, None],
                half[:, None] + j % self.first_half[:, None],
            ]
        )
        # estimate = w A^l (+ c (1 - w [l = 0]) with the control variate), A^l = F - (H1 + H2)/2
        w = inv_probs
        hw = np.where(by_level > 0, -0.5 * w, 0.0)
        coef, sizes = [w, hw, hw], [self.sizes, self.first_half, half]
        if with_center:
            coef.append(1.0 - np.where(by_level == 0, w, 0.0) if control_variate else 0.0 * w)
            sizes.append(np.ones_like(half))
        self.coef = np.stack(coef)  # (sets per point, L + 1)
        self.inv_set_size = 1.0 / np.maximum(np.stack(sizes), 1)
        self.with_center = with_center

    def __call__(self, counts: Sequence[int], tiled: bool = False) -> RTLayout:
        """The layout of ``counts[ℓ]`` slots at level ``ℓ``: segment form, or tiled form."""
        levels = np.repeat(self.by_level, counts)
        batch = levels.shape[0]
        slots = np.arange(batch)
        sizes = self.sizes[levels]
        ends = np.cumsum(sizes)
        starts = ends - sizes
        n_draws = int(ends[-1])
        row_slot = np.repeat(slots, sizes)
        centres = n_draws + slots
        member_row = member_set = tiles = None
        if tiled:
            width = int(sizes.max())
            tiles = (self.patterns[:, levels, :width] + starts[None, :, None]).reshape(-1, width)
            if self.with_center:
                tiles = np.concatenate([tiles, np.repeat(centres[:, None], width, axis=1)])
        else:
            rows = np.arange(n_draws)
            second = (rows - starts[row_slot]) >= self.first_half[levels][row_slot]
            row_parts = [rows, rows]
            set_parts = [row_slot, row_slot + batch * (1 + second)]
            if self.with_center:
                row_parts.append(centres)
                set_parts.append(3 * batch + slots)
            member_row, member_set = np.concatenate(row_parts), np.concatenate(set_parts)
        if self.with_center:
            row_slot = np.concatenate([row_slot, slots])
        return RTLayout(
            levels,
            row_slot,
            n_draws,
            member_row,
            member_set,
            tiles,
            self.coef[:, levels],
            self.inv_set_size[:, levels],
        )


def _levels_generator(
    generator: torch.Generator | None, level_generator: torch.Generator | None
) -> torch.Generator | None:
    """The CPU generator the levels come from (None: torch's default CPU generator).

    A device generator cannot draw on the CPU: a CPU generator is seeded from its state (seed and
    offset, held on the host, so reading them does not wait for the device). The offset advances
    with every draw on the device, so successive calls get fresh, reproducible levels.
    """
    if level_generator is not None or generator is None:
        return level_generator
    if generator.device.type == "cpu":
        return generator
    digest = hashlib.blake2b(generator.get_state().numpy().tobytes(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host array to ``device`` without a device synchronisation (pinned, non-blocking on CUDA)."""
    t = torch.from_numpy(array)
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


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
    control_variate: bool | None = None,
    level_sampling: str = "independent",
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
        level_sampling=level_sampling,
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
    control_variate: bool | None = None,
    level_sampling: str = "independent",
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
    :param control_variate: use the clean loss as a level-0 control variate (one extra evaluation
        per point, same expectation, lower variance). ``None`` (default): on for ``"rt-mlmc"``,
        off for ``"saa"``; ``True`` with ``"saa"`` is an error.
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` (default) or ``"systematic"``
        levels (see :class:`FunctionalEstimator`).
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
        if not torch.isfinite(losses).all():
            bad = int((~torch.isfinite(losses)).sum())
            raise InvalidArgumentError(
                f"loss_fn returned {bad} NaN or infinite loss(es) of {losses.shape[0]}; the "
                "entropic risk needs finite losses"
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
        level_sampling=level_sampling,
    )
    return EntropicRiskResult(
        est.per_point.mean(), est.per_point, est.levels, est.n_evaluations, est.center
    )
