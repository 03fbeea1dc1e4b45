"""compare_means: the permutation test and the bootstrap interval used by the reproductions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation.stats import compare_means


def brute_force_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact permutation p-value by looping over every ordering of the pooled values."""
    pooled, k = a + b, len(a)
    observed = abs(np.mean(a) - np.mean(b))
    hits = total = 0
    for perm in itertools.permutations(pooled):
        total += 1
        hits += abs(np.mean(perm[:k]) - np.mean(perm[k:])) >= observed - 1e-12
    return hits / total


def test_smallest_case_by_hand() -> None:
    # 6 ways to split {0, 1, 2, 3} in two pairs; |difference| >= 2 only for {0,1}|{2,3} and its mirror
    c = compare_means([0.0, 1.0], [2.0, 3.0])
    assert c.exact and c.p_value == pytest.approx(2 / 6)
    assert c.difference == -2.0 and (c.mean_a, c.mean_b) == (0.5, 2.5)


@pytest.mark.parametrize("b", [[3.0, 5.5, 4.0], [1.0, 2.5, 0.5, 9.0]])
def test_exact_p_value_matches_brute_force(b: list[float]) -> None:
    a = [1.0, 2.0, 0.0]
    assert compare_means(a, b).p_value == pytest.approx(brute_force_p(a, b))


def test_exact_p_value_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    # equal sizes: the relabelled differences are symmetric, so scipy's two-sided p (twice the
    # smaller tail) and ours (|difference| at least the observed one) are the same number
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 5), rng.normal(1, 1, 5)
    ref = stats.permutation_test(
        (a, b),
        lambda x, y: np.mean(x) - np.mean(y),
        permutation_type="independent",
        alternative="two-sided",
        n_resamples=np.inf,
    )
    assert compare_means(a, b).p_value == pytest.approx(ref.pvalue)


def test_monte_carlo_p_value_is_close_to_exact() -> None:
    a, b = [0.1, 0.5, 0.9, 1.3, 0.2], [0.8, 1.5, 1.1, 0.4, 1.9]
    exact = compare_means(a, b)  # C(10, 5) = 252 relabellings: enumerated
    sampled = compare_means(a, b, n_resamples=250, seed=1)  # 250 < 252: sampled
    assert exact.exact and not sampled.exact
    assert 0.05 < exact.p_value < 0.5
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.08)


def test_separates_a_real_difference_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 1.0, 10), rng.normal(0.0, 1.0, 10)
    c = compare_means(a, b)
    assert not c.exact and c.separated() and c.p_value < 1e-3
    assert c.ci_low > 1.0 and c.ci_low < c.difference < c.ci_high < 5.0
    same = compare_means(rng.normal(0.0, 1.0, 10), rng.normal(0.0, 1.0, 10))
    assert not same.separated() and same.ci_low < 0.0 < same.ci_high


def test_deterministic_for_a_seed() -> None:
    a, b = list(np.linspace(0, 1, 10)), list(np.linspace(0.3, 1.5, 10))
    assert compare_means(a, b, seed=4) == compare_means(a, b, seed=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": [1.0]}, "a: expected at least 2 numbers"),
        ({"b": [1.0, float("nan")]}, "b: every value must be finite"),
        ({"confidence": 1.0}, "confidence: expected a number in (0, 1)"),
        ({"n_resamples": 10}, "n_resamples: expected an integer >= 100"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, message: str) -> None:
    args = {"a": [1.0, 2.0], "b": [3.0, 4.0], **kwargs}
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare_means(args.pop("a"), args.pop("b"), **args)
