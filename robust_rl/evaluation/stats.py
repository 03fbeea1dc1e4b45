"""Can two agents be told apart? A permutation test and a bootstrap interval over seeds.

A results table gives mean ± std over training seeds; whether a difference between two columns
is more than seed-to-seed spread is a separate question. :func:`compare_means` answers it for
one number per training seed and agent (e.g. each seed's grid worst case), without assuming
normality:

* the two-sided **permutation test** of equal means: the p-value is the share of relabellings
  of the pooled values whose difference of means is at least as large in magnitude as the one
  observed; exact (every relabelling enumerated) when there are at most ``n_resamples`` of them,
  else Monte Carlo with ``n_resamples`` random relabellings and the ``(k + 1) / (n + 1)``
  estimate, which never reports p = 0;
* a **percentile bootstrap** interval for the difference of means (each agent's seeds resampled
  with replacement, independently).

Training seeds of different agents are independent runs, so the samples are unpaired.

.. code-block:: python

    from robust_rl.evaluation.stats import compare_means

    c = compare_means(robust_worst_per_seed, dqn_worst_per_seed)
    print(f"{c.difference:+.1f} [{c.ci_low:+.1f}, {c.ci_high:+.1f}], p = {c.p_value:.3f}")
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robust_rl.errors import InvalidArgumentError

__all__ = ["Comparison", "compare_means"]


@dataclass(frozen=True)
class Comparison:
    """Difference of the means of two samples ``a - b``, with its interval and p-value.

    :param mean_a: mean of ``a``.
    :param mean_b: mean of ``b``.
    :param difference: ``mean_a - mean_b``.
    :param ci_low: lower end of the bootstrap interval of ``difference``.
    :param ci_high: upper end.
    :param confidence: the interval's level (e.g. 0.95).
    :param p_value: two-sided permutation p-value of equal means.
    :param exact: whether every relabelling was enumerated.
    :param n_a: size of ``a``.
    :param n_b: size of ``b``.
    """

    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    exact: bool
    n_a: int
    n_b: int

    def separated(self, alpha: float = 0.05) -> bool:
        """Whether equal means are rejected at level ``alpha``."""
        return self.p_value < alpha


def _sample(name: str, values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise InvalidArgumentError(f"{name}: expected at least 2 numbers, got {values!r}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError(f"{name}: every value must be finite, got {values!r}")
    return x


def compare_means(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 20_000,
    seed: int = 0,
) -> Comparison:
    """Compare the means of two independent samples (one value per training seed).

    :param a: first sample (at least 2 finite values).
    :param b: second sample.
    :param confidence: level of the bootstrap interval, in (0, 1).
    :param n_resamples: bootstrap resamples, and the largest number of relabellings that is
        enumerated exactly (more are sampled).
    :param seed: seed of the resampling (the result is deterministic).
    :return: the :class:`Comparison` of ``a - b``.
    :raises InvalidArgumentError: on fewer than 2 or non-finite values, ``confidence`` outside
        (0, 1) or ``n_resamples < 100``.
    """
    x, y = _sample("a", a), _sample("b", b)
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    if not isinstance(n_resamples, int) or n_resamples < 100:
        raise InvalidArgumentError(f"n_resamples: expected an integer >= 100, got {n_resamples!r}")
    rng = np.random.default_rng(seed)
    observed = x.mean() - y.mean()
    pooled = np.concatenate([x, y])
    n, k = pooled.size, x.size
    tol = 1e-12 * max(1.0, float(np.abs(pooled).max()))
    exact = math.comb(n, k) <= n_resamples
    if exact:
        idx = np.array(list(itertools.combinations(range(n), k)))
        in_a = np.zeros((len(idx), n), dtype=bool)
        in_a[np.arange(len(idx))[:, None], idx] = True
    else:
        order = np.argsort(rng.random((n_resamples, n)), axis=1)
        in_a = np.zeros((n_resamples, n), dtype=bool)
        np.put_along_axis(in_a, order[:, :k], True, axis=1)
    sum_a = in_a.astype(np.float64) @ pooled
    diffs = sum_a / k - (pooled.sum() - sum_a) / (n - k)
    extreme = int(np.count_nonzero(np.abs(diffs) >= abs(observed) - tol))
    p = extreme / len(diffs) if exact else (extreme + 1) / (n_resamples + 1)

    boot = x[rng.integers(0, x.size, (n_resamples, x.size))].mean(axis=1) - y[
        rng.integers(0, y.size, (n_resamples, y.size))
    ].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return Comparison(
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        difference=float(observed),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        p_value=float(min(1.0, p)),
        exact=exact,
        n_a=int(x.size),
        n_b=int(y.size),
    )
