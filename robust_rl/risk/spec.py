r"""One validated description of how an entropic functional over a perturbation set is estimated.

The robust agents, the supervised loss and trainer and :class:`~robust_rl.risk.FunctionalEstimator`
all take the same settings: the temperature ``η`` of the soft-max/min and how its
expectation is estimated. :class:`EstimatorSpec` holds them, checks them once (every error names
the argument and what is accepted) and builds the estimator; what is perturbed (a ball around
each point, a box of physics parameters) is given separately.

.. math::

    \text{soft-max}_\eta = \eta \log \mathbb E_z \exp(\ell(z)/\eta), \qquad
    \text{soft-min}_\eta = -\eta \log \mathbb E_z \exp(-V(z)/\eta)

estimated by ``"saa"`` (``2^L`` draws per point, or ``n_samples``; bias ``O(2^{-L})``) or
``"rt-mlmc"`` (one random level per point, unbiased for the level-``L`` objective at an expected
``(L+1)/(2-2^{-L})`` draws per point; see :mod:`robust_rl.risk.mlmc`).

>>> spec = EstimatorSpec(eta=0.5, estimator="saa", max_level=3)
>>> spec.draws_per_point, spec.uses_control_variate
(8.0, False)
>>> EstimatorSpec.from_dict({"eta": 2, "max_level": 2}).expected_draws_per_point
1.7142857142857142
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import (
    check_estimator,
    check_eta,
    check_level,
    check_positive_int,
    resolve_control_variate,
)
from robust_rl.risk.functionals import EntropicFunctional, entropic_max, entropic_min
from robust_rl.risk.levels import check_level_sampling, expected_evaluations

__all__ = ["EstimatorSpec", "check_memory", "check_sampling", "required_bytes"]


def check_sampling(
    estimator: str,
    max_level: int,
    n_samples: int | None,
    control_variate: bool | None,
    level_sampling: str,
) -> bool:
    """Check the estimator's sampling settings together; return the resolved control variate.

    The one place these settings are validated (:class:`EstimatorSpec` and
    :class:`~robust_rl.risk.FunctionalEstimator` both call it).
    """
    check_estimator(estimator)
    check_level(max_level)
    if n_samples is not None:
        if estimator != "saa":
            raise InvalidArgumentError(
                f"n_samples applies to estimator='saa' only, got estimator={estimator!r}"
            )
        check_positive_int(n_samples, "n_samples")
    resolved = resolve_control_variate(control_variate, estimator)
    check_level_sampling(level_sampling)
    check_memory(estimator, max_level, n_samples, points=1, point_size=1)
    return resolved


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover  (not POSIX)
        return None


def required_bytes(
    estimator: str,
    max_level: int,
    n_samples: int | None,
    points: int,
    point_size: int,
    width: int = 0,
) -> int:
    """Memory one estimate needs at least: RT-MLMC's level tables (three row patterns of
    ``2^L`` entries per level, int64, and a temporary of the same size) plus the draws, their
    values and ``width`` float32 numbers per draw that the functional holds at once (e.g. the
    widest hidden layer of the network evaluated on every draw in one pass; SAA: ``points × n``
    draws; RT-MLMC: the expected number)."""
    top = 2**max_level
    if estimator == "saa":
        draws = points * (n_samples if n_samples is not None else top)
        tables = 0
    else:
        draws = math.ceil(points * expected_evaluations(max_level))
        tables = 4 * (max_level + 1) * top * 8
    return tables + draws * (point_size + 1 + width) * 4


def check_memory(
    estimator: str,
    max_level: int,
    n_samples: int | None,
    points: int,
    point_size: int,
    width: int = 0,
) -> None:
    """Refuse settings whose estimate cannot fit in this machine's memory (before allocating)."""
    total = physical_memory()
    if total is None:
        return
    need = required_bytes(estimator, max_level, n_samples, points, point_size, width)
    if need > total:
        gib = 2**30
        raise InvalidArgumentError(
            f"max_level={max_level} with estimator={estimator!r} needs at least {need / gib:.1f} "
            f"GiB for {points} point(s) of size {point_size} (2**{max_level} draws at the top "
            f"level), more than this machine's {total / gib:.1f} GiB; lower max_level"
            + (" or n_samples" if estimator == "saa" else "")
        )


@dataclass(frozen=True)
class EstimatorSpec:
    """How the entropic functional over a perturbation set is estimated (checked on creation).

    :param eta: temperature ``η > 0`` of the soft-max/min (``math.inf``: the plain average).
    :param estimator: ``"rt-mlmc"`` (randomised multilevel Monte Carlo) or ``"saa"`` (sample
        average of ``2^max_level`` draws, or ``n_samples``).
    :param max_level: truncation level ``L`` (0..30).
    :param n_samples: ``"saa"`` only: draws per point instead of ``2^max_level``.
    :param control_variate: ``"rt-mlmc"`` only: the value at the unperturbed point as a level-0
        control variate; ``None`` (default): on for ``"rt-mlmc"``, off for ``"saa"``.
    :param level_sampling: ``"rt-mlmc"`` only: ``"independent"`` or ``"systematic"`` levels
        (:mod:`robust_rl.risk.levels`).
    """

    eta: float = 1.0
    estimator: str = "rt-mlmc"
    max_level: int = 4
    n_samples: int | None = None
    control_variate: bool | None = None
    level_sampling: str = "independent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", check_eta(self.eta))
        check_sampling(
            self.estimator,
            self.max_level,
            self.n_samples,
            self.control_variate,
            self.level_sampling,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatorSpec:
        """A spec from plain data (a config's keys); unknown keys are refused by name."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"an estimator spec must be a mapping of {cls.keys()}, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise InvalidArgumentError(
                f"unknown estimator setting(s) {unknown}; accepted: {list(cls.keys())}"
            )
        return cls(**dict(data))

    @classmethod
    def pick(cls, arguments: Mapping[str, Any]) -> EstimatorSpec:
        """The spec of the settings among a function's ``arguments`` (e.g. its ``locals()``),
        other names ignored and absent settings at their defaults.

        >>> EstimatorSpec.pick({"eta": 2.0, "max_level": 3, "lr": 0.1}).max_level
        3
        """
        return cls(**{k: arguments[k] for k in cls.keys() if k in arguments})

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The setting names, in order (the agents' and the supervised trainer's arguments)."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as :meth:`from_dict` reads it."""
        return asdict(self)

    def check_memory(self, points: int, point_size: int, width: int = 0) -> None:
        """Refuse the spec for batches of ``points`` points of ``point_size`` numbers each if
        one estimate cannot fit in this machine's memory (``width``: numbers per draw the
        functional holds at once, see :func:`required_bytes`)."""
        check_memory(self.estimator, self.max_level, self.n_samples, points, point_size, width)

    @property
    def uses_control_variate(self) -> bool:
        """Whether the unperturbed value is the level-0 control variate (``None`` resolved)."""
        return resolve_control_variate(self.control_variate, self.estimator)

    @property
    def draws_per_point(self) -> float:
        """Draws per point at the largest level: ``n_samples`` or ``2^L``."""
        if self.n_samples is not None:
            return float(self.n_samples)
        return float(2**self.max_level)

    @property
    def expected_draws_per_point(self) -> float:
        """Expected draws per point: :attr:`draws_per_point` for SAA, ``(L+1)/(2−2^-L)`` for
        RT-MLMC (without the centre row of the control variate)."""
        if self.estimator == "saa":
            return self.draws_per_point
        return expected_evaluations(self.max_level)

    def soft_max(self) -> EntropicFunctional:
        """``η log mean exp(ℓ/η)`` of the draws (a loss to maximise over the set)."""
        return entropic_max(self.eta)

    def soft_min(self) -> EntropicFunctional:
        """``−η log mean exp(−V/η)`` of the draws (a value to minimise over the set)."""
        return entropic_min(self.eta)

    @property
    def is_average(self) -> bool:
        """``η = ∞``: the functional is the plain average over the set."""
        return math.isinf(self.eta)
