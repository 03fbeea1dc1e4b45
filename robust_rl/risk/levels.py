"""Level distribution of randomised-truncation MLMC (Hu, Chen & He, 2021)."""

from __future__ import annotations

import torch

from robust_rl.risk._checks import check_level, check_positive_int

__all__ = ["expected_evaluations", "level_probabilities", "sample_levels"]


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


def sample_levels(
    n: int,
    max_level: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``n`` independent levels with :func:`level_probabilities` (one per data point).

    Inverse-CDF sampling from one uniform per point, so the frequencies follow ``p_ℓ`` exactly in
    law (not uniformly, a known pitfall of passing probabilities positionally to
    ``numpy.random.choice``).

    :return: int64 tensor of shape ``(n,)`` with values in ``0..max_level``.
    """
    check_positive_int(n, "n")
    probs = level_probabilities(max_level)
    cdf = torch.cumsum(probs, 0).to(device=device)
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return torch.searchsorted(cdf, u, right=True).clamp_(max=max_level)
