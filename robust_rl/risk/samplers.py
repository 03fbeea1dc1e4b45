r"""Samplers of the core that are not a ball around the point: a box of parameters.

The estimators of :mod:`robust_rl.risk.mlmc` draw, for every data point, ``n`` perturbations and
evaluate a set functional of the values at them. By default a draw is uniform in a ball around
the point (:mod:`robust_rl.risk.ball`); a :class:`BoxSampler` instead draws each row
independently of its point, uniformly or log-uniformly in a box :math:`[\ell, h] \subset
\mathbb R^P`. The robust agents use it for the physics uncertainty set of a task: the point is
the nominal parameter vector, a draw is a physics parameter vector ``p ~ Q_P``, and the caller's
``evaluate`` re-simulates the transition under ``p``.

* ``"uniform"``: :math:`p_i = \ell_i + u_i (h_i - \ell_i)`, :math:`u_i \sim U[0, 1)`;
* ``"log-uniform"``: :math:`p_i = \ell_i \exp\big(u_i \log(h_i / \ell_i)\big)` (needs
  :math:`\ell_i > 0`).

A coordinate with :math:`\ell_i = h_i` is that value exactly (``u·0 = 0``, ``exp(0) = 1``), so a
one-point box reproduces the nominal point bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch

from robust_rl.errors import InvalidArgumentError

__all__ = ["BOX_DISTRIBUTIONS", "BoxSampler", "Sampler"]

#: Laws of :class:`BoxSampler`.
BOX_DISTRIBUTIONS: tuple[str, ...] = ("uniform", "log-uniform")


class Sampler(Protocol):
    """Fills rows with draws: ``sample_(rows, generator)`` overwrites ``rows`` ``(N, *S)`` in place.

    Each row holds a copy of the point it is drawn for when called; a sampler may use it (a ball
    around the point) or not (a box).
    """

    def sample_(self, rows: torch.Tensor, generator: torch.Generator | None) -> None: ...


class BoxSampler:
    """Independent draws uniform or log-uniform in the box ``[low, high]`` (shape ``(P,)``).

    :param low: ``(P,)`` lower bounds, finite.
    :param high: ``(P,)`` upper bounds, finite, ``>= low``.
    :param distribution: ``"uniform"`` or ``"log-uniform"`` (then ``low > 0``).

    >>> s = BoxSampler([1.0, 2.0], [1.0, 8.0], "log-uniform")
    >>> rows = torch.zeros(3, 2, dtype=torch.float64)
    >>> s.sample_(rows, torch.Generator().manual_seed(0))
    >>> bool((rows[:, 0] == 1.0).all()), bool(((rows[:, 1] >= 2) & (rows[:, 1] <= 8)).all())
    (True, True)
    """

    def __init__(
        self, low: Sequence[float], high: Sequence[float], distribution: str = "uniform"
    ) -> None:
        if distribution not in BOX_DISTRIBUTIONS:
            raise InvalidArgumentError(
                f"distribution must be one of {BOX_DISTRIBUTIONS}, got {distribution!r}"
            )
        lo = [float(v) for v in low]
        hi = [float(v) for v in high]
        if not lo or len(lo) != len(hi):
            raise InvalidArgumentError(
                f"low and high must be non-empty and of the same length, got {len(lo)} and {len(hi)}"
            )
        for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
            if not (math.isfinite(a) and math.isfinite(b) and a <= b):
                raise InvalidArgumentError(
                    f"box coordinate {i}: need finite low <= high, got ({a}, {b})"
                )
            if distribution == "log-uniform" and a <= 0:
                raise InvalidArgumentError(
                    f"box coordinate {i}: a log-uniform law needs low > 0, got {a}"
                )
        self.low = tuple(lo)
        self.high = tuple(hi)
        self.distribution = distribution
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def dim(self) -> int:
        """``P``, the number of coordinates."""
        return len(self.low)

    def _bounds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.device, like.dtype)
        cached = self._cache.get(key)
        if cached is None:
            low = torch.tensor(self.low, dtype=like.dtype, device=like.device)
            high = torch.tensor(self.high, dtype=like.dtype, device=like.device)
            span = torch.log(high / low) if self.distribution == "log-uniform" else high - low
            cached = self._cache[key] = (low, span)
        return cached

    def sample_(self, rows: torch.Tensor, generator: torch.Generator | None) -> None:
        """Overwrite ``rows`` ``(N, P)`` with ``N`` independent draws from the box."""
        if rows.dim() != 2 or rows.shape[1] != self.dim:
            raise InvalidArgumentError(
                f"rows must have shape (N, {self.dim}), got {tuple(rows.shape)}"
            )
        low, span = self._bounds(rows)
        u = torch.empty_like(rows).uniform_(0.0, 1.0, generator=generator)
        if self.distribution == "uniform":
            torch.addcmul(low, u, span, out=rows)
        else:
            torch.mul(low, torch.exp(u * span), out=rows)

    def __repr__(self) -> str:
        return f"BoxSampler(low={self.low}, high={self.high}, distribution={self.distribution!r})"
