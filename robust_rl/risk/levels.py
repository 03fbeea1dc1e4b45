r"""Level distribution of randomised-truncation MLMC (Hu, Chen & He, 2021) and its one sampler.

:func:`sample_levels` and the RT-MLMC estimator (:class:`~robust_rl.risk.FunctionalEstimator`)
draw levels through the same :class:`LevelSampler`, so a test of one is a test of the other.
Levels are always drawn on the CPU (a CPU generator): the estimator needs the level counts on
the host to size its tensors, and drawing them there costs no device synchronisation.

Two schemes, both with the exact marginal :math:`P(\ell_i = \ell) = p_\ell` for every point:

* ``"independent"``: one uniform per point, inverse CDF.
* ``"systematic"``: the ``n`` positions ``(k + u)/n``, ``k = 0..n-1``, one shared
  ``u ~ U(0, 1)``, mapped through the inverse CDF and handed to the points in a uniformly random
  order (the ranks of ``n`` further uniforms). Each point's position is uniform on ``(0, 1)``,
  so each point's level (and its estimate) has the same law as under ``"independent"``, but the
  count of each level in a batch is
  ``n p_ℓ`` rounded up or down: the number of draws is nearly constant and the batch mean has
  less variance. Levels of different points are no longer independent, so anything nonlinear in
  the whole batch (gradient-norm clipping, Adam's normalisation) sees a different joint law: in a
  10-seed CartPole check RobustDQN solved the nominal MDP in 6/10 seeds with systematic levels and
  10/10 with independent ones, which stay the default everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import check_level, check_positive_int

__all__ = [
    "LEVEL_SAMPLING",
    "LevelDraw",
    "LevelSampler",
    "expected_evaluations",
    "level_probabilities",
    "sample_levels",
    "systematic_counts",
]

#: level sampling schemes of :class:`LevelSampler`
LEVEL_SAMPLING: tuple[str, ...] = ("independent", "systematic")


def level_probabilities(max_level: int) -> torch.Tensor:
    r"""Probabilities :math:`p_\ell = 2^{-\ell} / (2 - 2^{-L})` for :math:`\ell = 0..L`.

    :param max_level: the truncation level ``L >= 0``.
    :return: float64 tensor of shape ``(L + 1,)`` summing to one.

    >>> level_probabilities(2).tolist()
    [0.5714285714285714, 0.2857142857142857, 0.14285714285714285]
    """
    check_level(max_level)
    weights = torch.pow(2.0, -torch.arange(max_level + 1, dtype=torch.float64))
    return weights / (2.0 - 2.0**-max_level)


def expected_evaluations(max_level: int) -> float:
    r"""Expected draws per point of RT-MLMC: :math:`\sum_\ell p_\ell 2^\ell = (L+1)/(2-2^{-L})`."""
    check_level(max_level)
    return (max_level + 1) / (2.0 - 2.0**-max_level)


def check_level_sampling(level_sampling: str) -> str:
    """Validate a level sampling scheme name (one of :data:`LEVEL_SAMPLING`)."""
    if level_sampling not in LEVEL_SAMPLING:
        raise InvalidArgumentError(
            f"level_sampling must be one of {LEVEL_SAMPLING}, got {level_sampling!r}"
        )
    return level_sampling


def systematic_counts(n: int, cdf: Sequence[float], u: float) -> tuple[int, ...]:
    r"""Level counts of systematic sampling: how many positions ``(k + u)/n`` fall in each level.

    The positions below :math:`c_\ell` (the CDF of level ``ℓ``) number
    :math:`\lceil n c_\ell - u\rceil`, so level ``ℓ`` gets the difference of two such counts:
    ``n p_ℓ`` rounded up or down.

    :param n: number of points.
    :param cdf: ``L + 1`` cumulative level probabilities (the last one is taken as 1).
    :param u: the shared uniform in ``[0, 1)``.
    :return: ``L + 1`` counts summing to ``n``.

    >>> systematic_counts(10, [0.5, 0.75, 1.0], 0.2)
    (5, 3, 2)
    """
    counts, previous = [], 0
    for c in cdf[:-1]:  # plain Python: a handful of levels, called at every step
        below = min(n, max(0, math.ceil(n * c - u)))
        counts.append(below - previous)
        previous = below
    counts.append(n - previous)
    return tuple(counts)


@dataclass(frozen=True)
class LevelDraw:
    """Levels of ``n`` points, with the grouping the estimator batches by.

    :ivar levels: ``(n,)`` int64, the level of each point.
    :ivar counts: number of points at each level ``0..L``.
    :ivar order: ``(n,)`` int64, the points sorted by level (``order[k]`` is the point in slot
        ``k``; slots hold ``counts[0]`` level-0 points, then ``counts[1]`` level-1 points, ...).
    """

    levels: np.ndarray
    counts: tuple[int, ...]
    order: np.ndarray


class LevelSampler:
    """Draws RT-MLMC levels on the CPU (see the module docstring for the two schemes).

    :param max_level: truncation level ``L``.
    :param level_sampling: ``"independent"`` or ``"systematic"``.
    """

    def __init__(self, max_level: int, level_sampling: str = "independent") -> None:
        self.max_level = check_level(max_level)
        self.level_sampling = check_level_sampling(level_sampling)
        self.probabilities = level_probabilities(max_level).numpy()
        self._cdf = np.cumsum(self.probabilities)
        self._cdf[-1] = 1.0
        self._cdf_list = self._cdf.tolist()
        self._slot_levels: dict[tuple[int, ...], np.ndarray] = {}

    def draw(self, n: int, generator: torch.Generator | None = None) -> LevelDraw:
        """Levels of ``n`` points.

        :param n: number of points (``>= 1``).
        :param generator: a CPU :class:`torch.Generator`, or None for torch's default CPU one.
        """
        if self.level_sampling == "independent":
            u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
            levels = np.searchsorted(self._cdf, u, side="right")
            np.minimum(levels, self.max_level, out=levels)
            counts = np.bincount(levels, minlength=self.max_level + 1)
            order = np.argsort(levels, kind="stable")
            return LevelDraw(levels, tuple(counts.tolist()), order)
        # one call: n uniforms whose ranks give a uniformly random order, and the shared offset
        u = torch.rand(n + 1, generator=generator, dtype=torch.float64).numpy()
        order = np.argsort(u[:n])
        counts_t = systematic_counts(n, self._cdf_list, float(u[n]))
        slot_levels = self._slot_levels.get(counts_t)
        if slot_levels is None:
            slot_levels = np.repeat(np.arange(self.max_level + 1), counts_t)
            self._slot_levels[counts_t] = slot_levels
        levels = np.empty(n, dtype=np.int64)
        levels[order] = slot_levels
        return LevelDraw(levels, counts_t, order)


def sample_levels(
    n: int,
    max_level: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    level_sampling: str = "independent",
) -> torch.Tensor:
    """Draw the levels of ``n`` data points with :func:`level_probabilities` (one per point).

    Inverse-CDF sampling, so the frequencies follow ``p_ℓ`` exactly in law (not uniformly, a
    known pitfall of passing probabilities positionally to ``numpy.random.choice``). The
    RT-MLMC estimator draws its levels through the same :class:`LevelSampler`: with the same CPU
    generator state it gets the same levels.

    :param n: number of points.
    :param max_level: truncation level ``L``.
    :param generator: optional CPU :class:`torch.Generator` (levels are drawn on the CPU).
    :param device: device of the returned tensor.
    :param level_sampling: ``"independent"`` (default) or ``"systematic"`` (see the module doc).
    :return: int64 tensor of shape ``(n,)`` with values in ``0..max_level``.
    """
    check_positive_int(n, "n")
    levels = LevelSampler(max_level, level_sampling).draw(n, generator).levels
    return torch.from_numpy(levels).to(device=device)
