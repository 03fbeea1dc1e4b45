"""Estimator core against closed forms (method.md §2), invariants and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robust_rl.risk import (
    FunctionalEstimator,
    entropic_max,
    entropic_min,
    entropic_risk,
    estimate_functional,
    expected_evaluations,
    level_probabilities,
    log_mean_exp,
    sample_ball,
    sample_levels,
    sample_worst_case,
    soft_min_of_max,
    soft_min_then_max,
    systematic_counts,
)
from robust_rl.risk.mlmc import _Layouts

DT = torch.float64


def closed_form_linear(w: torch.Tensor, x: torch.Tensor, rho: float, eta: float) -> float:
    """η log E exp(wᵀz/η) for z uniform on the ℓ∞ ball of radius ρ around x (method.md §2)."""
    a = rho * w / eta
    return float(w @ x + eta * torch.log(torch.sinh(a) / a).sum())


W = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=DT)
X0 = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=DT)
RHO, ETA = 0.5, 0.4


def linear_loss(z: torch.Tensor) -> torch.Tensor:
    return z @ W


def replicated(n: int) -> torch.Tensor:
    return X0.expand(n, -1).clone()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_risk(n: int, *, seed: int, **kwargs):
    """:func:`entropic_risk` of :func:`linear_loss` at ``n`` copies of X0, on the ball of radius
    RHO with ETA, drawing from ``gen(seed)``."""
    return entropic_risk(
        linear_loss, replicated(n), radius=RHO, eta=ETA, generator=gen(seed), **kwargs
    )


# --------------------------------------------------------------------------------- closed form
def test_saa_bias_decreases_toward_closed_form():
    exact = closed_form_linear(W, X0, RHO, ETA)
    n_rep = 4000
    biases, errs = [], []
    for level in range(0, 8):
        res = linear_risk(n_rep, seed=level, estimator="saa", max_level=level)
        biases.append(float(res.per_point.mean()) - exact)
        errs.append(float(res.per_point.std()) / math.sqrt(n_rep))
    # Jensen: F^L underestimates F; the bias shrinks like 2^-L.
    assert biases[0] < -10 * errs[0]
    for lo, hi in zip(biases[:-2], biases[2:], strict=True):
        assert abs(hi) < abs(lo)
    assert abs(biases[-1]) < 0.05 * abs(biases[0])
    assert abs(biases[-1]) < 4 * errs[-1] + 0.02 * abs(biases[0])


@pytest.mark.parametrize(
    ("control_variate", "level_sampling"),
    [(False, "independent"), (True, "independent"), (False, "systematic"), (True, "systematic")],
)
def test_rt_mlmc_is_unbiased_for_saa_at_same_level(control_variate, level_sampling):
    level, n_rep = 4, 60_000
    rt = linear_risk(
        n_rep,
        seed=1,
        estimator="rt-mlmc",
        max_level=level,
        control_variate=control_variate,
        level_sampling=level_sampling,
    ).per_point
    saa = linear_risk(n_rep // 4, seed=2, estimator="saa", max_level=level).per_point
    se = math.sqrt(rt.var() / rt.numel() + saa.var() / saa.numel())
    assert abs(float(rt.mean() - saa.mean())) < 4.5 * se
    # and it is not trivially matching: F^4 differs from F^0 by many standard errors
    saa0 = linear_risk(n_rep // 4, seed=3, estimator="saa", max_level=0).per_point
    assert float(saa.mean() - saa0.mean()) > 10 * se


def test_control_variate_reduces_variance_for_large_offsets():
    x = replicated(20_000) + 50.0  # large values, small spread over the ball
    kwargs = dict(radius=RHO, eta=ETA, max_level=4)
    plain = entropic_risk(linear_loss, x, generator=gen(4), control_variate=False, **kwargs)
    cv = entropic_risk(linear_loss, x, generator=gen(4), control_variate=True, **kwargs)
    assert cv.per_point.var() < 0.01 * plain.per_point.var()
    assert cv.n_evaluations == plain.n_evaluations + x.shape[0]
    torch.testing.assert_close(cv.center, linear_loss(x))


@pytest.mark.parametrize("max_level", [0, 1, 3, 6])
def test_level_frequencies_and_expected_cost(max_level):
    """Levels drawn by the estimator itself follow p_ℓ; the public sampler is the same code."""
    n = 50_000
    p = level_probabilities(max_level)
    assert float(p.sum()) == pytest.approx(1.0)
    assert p.tolist() == pytest.approx(
        [2.0**-k / (2 - 2.0**-max_level) for k in range(max_level + 1)]
    )
    res = linear_risk(n, seed=5, max_level=max_level, control_variate=False)
    freq = torch.bincount(res.levels, minlength=max_level + 1).to(DT) / n
    tol = 5 * torch.sqrt(p * (1 - p) / n) + 1e-12
    assert bool(((freq - p).abs() <= tol).all()), (freq, p)
    assert torch.equal(res.levels, sample_levels(n, max_level, generator=gen(5)))
    # expected number of evaluations (L+1)/(2-2^-L), measured through the estimator
    assert expected_evaluations(max_level) == pytest.approx((max_level + 1) / (2 - 2.0**-max_level))
    per_point = res.n_evaluations / n
    sd = math.sqrt(
        float((p * 4.0 ** torch.arange(max_level + 1)).sum()) - expected_evaluations(max_level) ** 2
    )
    assert abs(per_point - expected_evaluations(max_level)) < 5 * sd / math.sqrt(n) + 1e-12
    assert res.levels.shape == (n,)
    assert res.n_evaluations == int((2**res.levels).sum())


@pytest.mark.parametrize("max_level", [1, 4])
def test_systematic_levels_have_the_exact_law_and_nearly_fixed_counts(max_level):
    """Each point's level has law p_ℓ (over batches); each batch's counts are n·p_ℓ rounded."""
    n, batches = 10, 3_000
    p = level_probabilities(max_level)
    est = FunctionalEstimator(
        entropic_max(ETA), radius=RHO, max_level=max_level, level_sampling="systematic"
    )
    g = gen(24)
    per_point = torch.zeros(n, max_level + 1, dtype=DT)
    for _ in range(batches):
        res = est(linear_loss_2, replicated(n), generator=g)
        counts = torch.bincount(res.levels, minlength=max_level + 1)
        assert bool(((counts - n * p).abs() < 1).all()), counts
        per_point[torch.arange(n), res.levels] += 1
    freq = per_point / batches  # every point separately
    tol = 5 * torch.sqrt(p * (1 - p) / batches) + 1e-12
    assert bool(((freq - p).abs() <= tol).all()), (freq, p)
    # the public sampler is the estimator's
    a = est(linear_loss_2, replicated(n), generator=gen(25)).levels
    b = sample_levels(n, max_level, generator=gen(25), level_sampling="systematic")
    assert torch.equal(a, b)


def linear_loss_2(z: torch.Tensor, _index: torch.Tensor) -> torch.Tensor:
    return z @ W


@pytest.mark.parametrize("level_sampling", ["independent", "systematic"])
def test_rt_mlmc_is_unbiased_per_point_for_distinct_points(level_sampling):
    """Each point gets its own level and draws: per-point means match SAA point by point (a
    mix-up of points between slots would pass a test on identical points, not this one)."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    net = net.double()
    torch.manual_seed(28)
    points = torch.randn(8, 4, dtype=DT) * 2.0
    x = points.repeat(1000, 1)  # row k is point k % 8
    kw = dict(radius=0.5, max_level=3, generator=gen(29))
    with torch.no_grad():
        rt = torch.cat(
            [
                estimate_functional(
                    lambda z, _i: net(z),
                    soft_min_then_max(0.3),
                    x,
                    level_sampling=level_sampling,
                    **kw,
                ).per_point.view(1000, 8)
                for _ in range(4)
            ]
        )
        saa = estimate_functional(
            lambda z, _i: net(z), soft_min_then_max(0.3), x, estimator="saa", **kw
        ).per_point.view(1000, 8)
    se = (rt.var(dim=0) / rt.shape[0] + saa.var(dim=0) / saa.shape[0]).sqrt()
    z = (rt.mean(dim=0) - saa.mean(dim=0)) / se
    assert bool((z.abs() < 4.5).all()), z
    spread = saa.mean(dim=0).max() - saa.mean(dim=0).min()
    assert float(spread) > 20 * float(se.max())  # the points are told apart


def test_systematic_counts_exact():
    # positions (k + u)/n = 0.02, 0.12, ..., 0.92 against the CDF 0.5, 0.75, 1
    assert systematic_counts(10, [0.5, 0.75, 1.0], 0.2) == (5, 3, 2)
    assert systematic_counts(10, [0.5, 0.75, 1.0], 0.0) == (5, 3, 2)
    assert systematic_counts(4, [0.3, 0.9, 1.0], 0.99) == (1, 2, 1)  # 0.2475, 0.4975, ...
    assert systematic_counts(1, [0.6, 1.0], 0.7) == (0, 1)
    assert systematic_counts(1, [0.6, 1.0], 0.5) == (1, 0)


def test_rt_layout_exact_for_fixed_counts():
    """The RT-MLMC bookkeeping for level counts (2, 1, 1), L = 2, centres and control variate:
    slots sorted by level (0, 0, 1, 2), each slot's draws consecutive, centres after all draws."""
    inv_probs = 1.0 / level_probabilities(2).numpy()  # 7/4, 7/2, 7
    layouts = _Layouts(inv_probs, with_center=True, control_variate=True)
    seg = layouts((2, 1, 1))
    np.testing.assert_array_equal(seg.levels, [0, 0, 1, 2])
    assert seg.n_draws == 8  # 1 + 1 + 2 + 4
    np.testing.assert_array_equal(seg.row_slot, [0, 1, 2, 2, 3, 3, 3, 3, 0, 1, 2, 3])
    # sets: full 0-3, first halves 4-7, second halves 8-11, centres 12-15
    np.testing.assert_array_equal(seg.member_row, [*range(8), *range(8), 8, 9, 10, 11])
    np.testing.assert_array_equal(
        seg.member_set,
        [*[0, 1, 2, 2, 3, 3, 3, 3], *[4, 5, 6, 10, 7, 7, 11, 11], *[12, 13, 14, 15]],
    )
    np.testing.assert_allclose(
        seg.coef,
        [
            [7 / 4, 7 / 4, 7 / 2, 7],  # 1/p_ℓ on the full set
            [0, 0, -7 / 4, -7 / 2],  # -1/(2 p_ℓ) on each half (none at level 0)
            [0, 0, -7 / 4, -7 / 2],
            [-3 / 4, -3 / 4, 1, 1],  # the centre: 1 - [ℓ = 0]/p_0
        ],
        rtol=1e-15,
    )
    # a level-0 slot's second half is empty: size 1 stands in (its sum is 0, its weight 0)
    np.testing.assert_array_equal(
        1.0 / seg.inv_set_size, [[1, 1, 2, 4], [1, 1, 1, 2], [1, 1, 1, 2], [1, 1, 1, 1]]
    )
    tiled = layouts((2, 1, 1), tiled=True)
    full = [[0, 0, 0, 0], [1, 1, 1, 1], [2, 3, 2, 3], [4, 5, 6, 7]]
    first = [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [4, 5, 4, 5]]
    second = [[0, 0, 0, 0], [1, 1, 1, 1], [3, 3, 3, 3], [6, 7, 6, 7]]
    centres = [[8] * 4, [9] * 4, [10] * 4, [11] * 4]
    np.testing.assert_array_equal(tiled.tiles, full + first + second + centres)
    assert tiled.member_row is None and seg.tiles is None
    plain = _Layouts(inv_probs, with_center=False, control_variate=False)((2, 1, 1))
    np.testing.assert_array_equal(plain.row_slot, [0, 1, 2, 2, 3, 3, 3, 3])
    np.testing.assert_array_equal(plain.member_set, seg.member_set[:16])
    np.testing.assert_allclose(plain.coef, seg.coef[:3], rtol=1e-15)


def test_estimator_follows_the_plan_per_point():
    """End to end on a fixed input: each point's estimate is its own draws' antithetic
    difference, whatever slot its level puts it in (levels and draws read back from the call)."""
    x = torch.arange(12, dtype=DT).reshape(6, 2) * 10.0
    seen = {}

    def evaluate(z, index):
        seen["z"], seen["index"] = z, index
        return z.sum(dim=1)

    res = entropic_risk(
        lambda z: evaluate(z, None), x, radius=0.5, eta=0.7, max_level=3, generator=gen(26)
    )
    est = estimate_functional(
        evaluate, entropic_max(0.7), x, radius=0.5, max_level=3, generator=gen(26)
    )
    torch.testing.assert_close(est.per_point, res.per_point, rtol=0, atol=0)
    z, index = seen["z"], seen["index"]
    p = level_probabilities(3)
    n_draws = int((2**est.levels).sum())
    assert z.shape[0] == n_draws + 6
    # the centres, one per point, unperturbed
    torch.testing.assert_close(index[n_draws:].sort().values, torch.arange(6))
    torch.testing.assert_close(z[n_draws:], x[index[n_draws:]], rtol=0, atol=0)
    for i in range(6):
        rows = (index[:n_draws] == i).nonzero().squeeze(1)
        level = int(est.levels[i])
        assert rows.numel() == 2**level
        assert bool(((z[rows] - x[i]).abs() <= 0.5).all())
        v = z[rows].sum(dim=1)
        u = lambda t: 0.7 * torch.log(torch.exp(t / 0.7).mean())  # noqa: E731
        c = float(x[i].sum())
        if level == 0:
            expected = c + (float(v[0]) - c) / float(p[0])
        else:
            h = 2 ** (level - 1)
            diff = u(v) - 0.5 * u(v[:h]) - 0.5 * u(v[h:])
            expected = c + float(diff) / float(p[level])
        assert float(est.per_point[i]) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_control_variate_default_is_on_for_rt_mlmc_and_off_for_saa():
    x = replicated(16)
    rt = entropic_risk(linear_loss, x, radius=RHO, eta=ETA, max_level=3, generator=gen(27))
    assert rt.center is not None
    assert rt.n_evaluations == int((2**rt.levels).sum()) + 16
    explicit = entropic_risk(
        linear_loss, x, radius=RHO, eta=ETA, max_level=3, generator=gen(27), control_variate=True
    )
    torch.testing.assert_close(rt.per_point, explicit.per_point, rtol=0, atol=0)
    saa = entropic_risk(linear_loss, x, radius=RHO, eta=ETA, max_level=3, estimator="saa")
    assert saa.center is None and saa.n_evaluations == 16 * 8
    assert FunctionalEstimator(entropic_max(1.0), radius=0.1).control_variate is True
    assert FunctionalEstimator(entropic_max(1.0), radius=0.1, estimator="saa").control_variate is (
        False
    )
    with pytest.raises(ValueError, match="control_variate applies to estimator='rt-mlmc' only"):
        entropic_risk(linear_loss, x, radius=RHO, eta=ETA, estimator="saa", control_variate=True)


def test_levels_are_not_uniform():
    """Guards against the positional ``numpy.random.choice`` pitfall (uniform levels)."""
    levels = sample_levels(100_000, 4, generator=gen(7))
    freq = torch.bincount(levels, minlength=5).double() / 1e5
    assert freq[0] > 0.5 and freq[4] < 0.05


# ----------------------------------------------------------------------------- ball sampling
def test_l2_draws_are_uniform_in_the_ball():
    d, n = 3, 40_000
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=DT)
    z = sample_ball(x, 0.7, n, norm="l2", generator=gen(8))
    assert z.shape == (1, n, d)
    r = (z - x.unsqueeze(1)).norm(dim=-1).squeeze(0) / 0.7
    assert float(r.max()) <= 1.0 + 1e-12
    # radial law of the uniform ball: P(r <= t) = t^d (not the sphere: r would be 1)
    for t in (0.3, 0.5, 0.7, 0.9):
        emp = float((r <= t).double().mean())
        assert emp == pytest.approx(t**d, abs=5 * math.sqrt(t**d * (1 - t**d) / n) + 1e-3)
    # directions isotropic: mean close to the centre
    torch.testing.assert_close(z.mean(dim=1), x, atol=0.02, rtol=0)


def test_linf_draws_inside_box_with_uniform_marginals_and_per_coordinate_radius():
    radius = torch.tensor([0.1, 0.0, 2.0], dtype=DT)
    x = torch.zeros(2, 3, dtype=DT)
    z = sample_ball(x, radius, 30_000, generator=gen(9))
    dev = (z - x.unsqueeze(1)).abs()
    assert bool((dev <= radius).all())
    assert float(dev[..., 1].max()) == 0.0
    var = z.reshape(-1, 3).var(dim=0)
    torch.testing.assert_close(var, radius**2 / 3, rtol=0.03, atol=1e-12)


def test_l2_per_coordinate_radius_is_an_ellipsoid():
    radius = torch.tensor([0.1, 1.0], dtype=DT)
    z = sample_ball(torch.zeros(1, 2, dtype=DT), radius, 5000, norm="l2", generator=gen(10))
    assert float((z / radius).norm(dim=-1).max()) <= 1.0 + 1e-12
    assert float(z[..., 0].abs().max()) <= 0.1 + 1e-12


def test_clip_is_optional_and_keeps_draws_in_the_box():
    x = torch.full((4, 5), 0.95)
    z = sample_ball(x, 0.2, 100, generator=gen(11))
    assert float(z.max()) > 1.0  # no silent clipping by default
    zc = sample_ball(x, 0.2, 100, generator=gen(11), clip=(0.0, 1.0))
    assert float(zc.max()) <= 1.0 and float(zc.min()) >= 0.75


def test_images_keep_their_shape():
    x = torch.rand(3, 1, 8, 8)
    for norm in ("linf", "l2"):
        z = sample_ball(x, 0.3, 5, norm=norm, generator=gen(12))
        assert z.shape == (3, 5, 1, 8, 8)
        flat = (z - x.unsqueeze(1)).reshape(3, 5, -1)
        size = flat.abs().amax(-1) if norm == "linf" else flat.norm(dim=-1)
        assert float(size.max()) <= 0.3 + 1e-6


# ------------------------------------------------------------------------- limits in eta
def _saa_draw_losses(seed: int, n: int) -> torch.Tensor:
    z = sample_ball(X0.unsqueeze(0), RHO, n, generator=gen(seed))
    return linear_loss(z.reshape(n, -1))


def test_small_eta_tends_to_max_and_large_eta_to_mean():
    losses = _saa_draw_losses(13, 64)
    for eta, expected in ((1e-4, losses.max()), (1e6, losses.mean()), (math.inf, losses.mean())):
        res = entropic_risk(
            linear_loss,
            X0.unsqueeze(0),
            radius=RHO,
            eta=eta,
            estimator="saa",
            max_level=6,
            generator=gen(13),
        )
        tol = eta * math.log(64) if eta < 1 else 1e-6
        assert float(res.value) == pytest.approx(float(expected), abs=tol + 1e-9)


def test_log_mean_exp_is_stable():
    v = torch.tensor([[1e7, 0.0, -1e7]])
    out = log_mean_exp(v, eta=1.0)
    assert torch.isfinite(out).all()
    assert float(out) == pytest.approx(1e7 - math.log(3), rel=1e-6)
    big = torch.tensor([[1.0, 2.0, 3.0]], dtype=DT)
    assert float(log_mean_exp(big, eta=1e9)) == pytest.approx(2.0, abs=1e-8)
    assert float(log_mean_exp(big, eta=1.0)) == pytest.approx(
        math.log((math.e + math.e**2 + math.e**3) / 3), rel=1e-12
    )


def test_entropic_risk_finite_for_huge_loss_over_eta():
    res = entropic_risk(
        lambda z: 1e7 * z.sum(dim=1),
        torch.zeros(8, 2),
        radius=1.0,
        eta=1.0,
        estimator="saa",
        max_level=3,
        generator=gen(14),
    )
    assert torch.isfinite(res.per_point).all()


# ---------------------------------------------------------------------------- gradients
def test_gradient_equals_softmax_weighted_gradient():
    theta = torch.tensor([0.3, -1.0, 2.0, 0.1], dtype=DT, requires_grad=True)
    x = torch.randn(5, 4, dtype=DT, generator=gen(15))
    eta = 0.3
    res = entropic_risk(
        lambda z: z @ theta, x, radius=0.4, eta=eta, estimator="saa", max_level=5, generator=gen(16)
    )
    res.value.backward()
    z = sample_ball(x, 0.4, 32, generator=gen(16))  # the same draws
    weights = torch.softmax((z @ theta.detach()) / eta, dim=1)
    expected = (weights.unsqueeze(-1) * z).sum(dim=1).mean(dim=0)
    torch.testing.assert_close(theta.grad, expected)


def test_gradient_of_rt_mlmc_flows_and_is_deterministic():
    theta = torch.ones(4, dtype=DT, requires_grad=True)
    grads = []
    for _ in range(2):
        theta.grad = None
        res = entropic_risk(
            lambda z: torch.sin(z @ theta),
            replicated(64),
            radius=RHO,
            eta=ETA,
            max_level=5,
            generator=gen(17),
        )
        res.value.backward()
        grads.append(theta.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    assert float(grads[0].abs().sum()) > 0


def test_targets_are_gathered_per_draw():
    x = torch.zeros(3, 2)
    y = torch.tensor([0.0, 10.0, 20.0])
    res = entropic_risk(
        lambda z, t: t + 0.0 * z.sum(1), x, y, radius=0.1, eta=1.0, estimator="saa", max_level=2
    )
    torch.testing.assert_close(res.per_point, y)
    rt = entropic_risk(
        lambda z, t: t + 0.0 * z.sum(1),
        x,
        y,
        radius=0.1,
        eta=1.0,
        max_level=3,
        generator=gen(18),
        control_variate=False,
    )
    # constant losses: the antithetic differences vanish, level 0 carries the value / p_0
    p0 = float(level_probabilities(3)[0])
    expected = torch.where(rt.levels == 0, y / p0, torch.zeros_like(y))
    torch.testing.assert_close(rt.per_point, expected)
    # with the control variate (the default) the level-0 correction vanishes too
    cv = entropic_risk(
        lambda z, t: t + 0.0 * z.sum(1), x, y, radius=0.1, eta=1.0, max_level=3, generator=gen(18)
    )
    torch.testing.assert_close(cv.per_point, y)


def test_seeded_generator_is_deterministic():
    a, b, c = (linear_risk(100, seed=seed, max_level=6) for seed in (19, 19, 20))
    torch.testing.assert_close(a.per_point, b.per_point, rtol=0, atol=0)
    assert torch.equal(a.levels, b.levels)
    assert not torch.equal(a.per_point, c.per_point)


# ---------------------------------------------------------------- Q-learning functionals
def test_q_functionals_exact_values():
    # one point, 2 draws, 2 actions
    q = torch.tensor([[[1.0, 5.0], [3.0, 0.0]]], dtype=DT)
    eta = 0.5
    softmin_a = -eta * torch.log(torch.exp(-q / eta).mean(dim=1))  # per action
    torch.testing.assert_close(soft_min_then_max(eta)(q), softmin_a.amax(-1))
    v = q.amax(-1)
    torch.testing.assert_close(
        soft_min_of_max(eta)(q), -eta * torch.log(torch.exp(-v / eta).mean(1))
    )
    # tiny eta: min over draws per action (1, 0) then max -> 1; state-value form: min(5, 3) = 3
    assert float(soft_min_then_max(1e-6)(q)) == pytest.approx(1.0, abs=1e-5)
    assert float(soft_min_of_max(1e-6)(q)) == pytest.approx(3.0, abs=1e-5)


def test_estimate_functional_batches_one_forward_pass_for_q_targets():
    calls = []
    net = torch.nn.Linear(4, 2).double()

    def evaluate(z, index):
        calls.append(z.shape[0])
        return net(z)

    x = torch.randn(32, 4, dtype=DT, generator=gen(21))
    est = estimate_functional(
        evaluate,
        soft_min_then_max(0.1),
        x,
        radius=0.05,
        max_level=4,
        generator=gen(22),
        with_center=True,
    )
    assert len(calls) == 1 and calls[0] == est.n_evaluations
    assert est.n_evaluations == int((2**est.levels).sum()) + 32
    torch.testing.assert_close(est.center, net(x).amax(-1))
    saa = estimate_functional(
        evaluate,
        soft_min_then_max(0.1),
        x,
        radius=0.05,
        estimator="saa",
        n_samples=16,
        generator=gen(23),
    )
    z = sample_ball(x, 0.05, 16, generator=gen(23))
    torch.testing.assert_close(saa.per_point, soft_min_then_max(0.1)(net(z)))


def test_entropic_min_exact_values_and_limits():
    v = torch.tensor([[1.0, 3.0], [2.0, 2.0]], dtype=DT)
    eta = 0.5
    expected = -eta * torch.log(torch.exp(-v / eta).mean(dim=1))
    torch.testing.assert_close(entropic_min(eta)(v), expected)
    assert float(entropic_min(eta)(v)[1]) == 2.0  # equal draws come back exactly
    assert float(entropic_min(1e-6)(v)[0]) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(entropic_min(math.inf)(v), v.mean(dim=1))
    with pytest.raises(ValueError, match=r"expected one value per draw, shape \(b, n\)"):
        entropic_min(eta)(v.unsqueeze(-1))


# --------------------------------------------------------------------------- worst case
def test_worst_case_sampler_matches_gibbs_mean():
    # 1-D loss w z on [-ρ, ρ]: Gibbs density ∝ exp(λz), λ = w/η, mean ρ coth(λρ) − 1/λ
    w, rho, eta = 2.0, 1.0, 0.5
    lam = w / eta
    out = sample_worst_case(
        lambda z: w * z[:, 0],
        torch.zeros(1, 1, dtype=DT),
        radius=rho,
        eta=eta,
        n_candidates=200_000,
        n_out=50_000,
        generator=gen(24),
    )
    expected = rho / math.tanh(lam * rho) - 1 / lam
    assert float(out.samples.mean()) == pytest.approx(expected, abs=0.01)
    assert float((out.candidates.abs() <= rho).all()) == 1.0
    torch.testing.assert_close(out.weights.sum(dim=1), torch.ones(1, dtype=DT))
    weighted = float((out.weights * out.candidates[..., 0]).sum())
    assert weighted == pytest.approx(expected, abs=0.01)
    assert out.samples.shape == (1, 50_000, 1)


def test_worst_case_sampler_limits():
    x = torch.zeros(2, 3, dtype=DT)
    flat = sample_worst_case(
        lambda z: z.sum(1), x, radius=0.1, eta=1e9, n_candidates=100, generator=gen(25)
    )
    torch.testing.assert_close(flat.effective_sample_size, torch.full((2,), 100.0, dtype=DT))
    sharp = sample_worst_case(
        lambda z: z.sum(1), x, radius=0.1, eta=1e-9, n_candidates=100, n_out=7, generator=gen(25)
    )
    best = sharp.candidates.sum(-1).argmax(dim=1)
    for b in range(2):
        torch.testing.assert_close(sharp.samples[b], sharp.candidates[b, best[b]].expand(7, 3))


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(eta=0.0), "eta must be a positive"),
        (dict(eta=-1.0), "eta must be a positive"),
        (dict(eta=float("nan")), "eta must be a positive"),
        (dict(radius=-0.1), "radius must be finite and non-negative"),
        (dict(radius=[0.1, 0.2, 0.3]), r"radius of shape \(3,\) does not broadcast"),
        (dict(radius="big"), "radius must be a non-negative float"),
        (dict(norm="l1"), "norm must be one of"),
        (dict(estimator="mc"), "estimator must be one of"),
        (dict(max_level=-1), "max_level must be a non-negative integer"),
        (dict(max_level=2.5), "max_level must be a non-negative integer"),
        (dict(max_level=True), "max_level must be a non-negative integer"),
        (dict(n_samples=0, estimator="saa"), "n_samples must be a positive integer"),
        (dict(n_samples=8), "n_samples applies to estimator='saa' only"),
        (dict(clip=(1.0, 0.0)), "clip must satisfy low < high"),
        (dict(control_variate=True, estimator="saa"), "control_variate applies"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, match):
    base = dict(radius=0.1, eta=1.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        entropic_risk(lambda z: z.sum(1), torch.zeros(4, 2), **base)


def test_loss_fn_with_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"loss_fn must return per-draw losses of shape"):
        entropic_risk(lambda z: z, torch.zeros(4, 2), radius=0.1, eta=1.0)
    with pytest.raises(ValueError, match=r"loss_fn must return per-draw losses of shape"):
        entropic_risk(lambda z: z.sum(), torch.zeros(4, 2), radius=0.1, eta=1.0)


def test_bad_points_and_targets_are_rejected():
    with pytest.raises(ValueError, match="x must have shape"):
        entropic_risk(lambda z: z, torch.zeros(0, 2), radius=0.1, eta=1.0)
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        sample_ball(torch.zeros(2, 2, dtype=torch.long), 0.1, 2)
    with pytest.raises(ValueError, match=r"targets\[0\] must be a tensor with leading dimension"):
        entropic_risk(lambda z, y: z.sum(1), torch.zeros(4, 2), torch.zeros(3), radius=0.1, eta=1.0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_ball(torch.zeros(2, 2), 0.1, 0)
    with pytest.raises(ValueError, match="loss_fn must return one loss per draw"):
        entropic_max(1.0)(torch.zeros(2, 3, 4))


SHIPPED_FUNCTIONALS = [
    ("entropic_max", entropic_max, 1),
    ("entropic_min", entropic_min, 1),
    ("soft_min_then_max", soft_min_then_max, 3),
    ("soft_min_of_max", soft_min_of_max, 3),
]


@pytest.mark.parametrize(("name", "make", "n_out"), SHIPPED_FUNCTIONALS)
@pytest.mark.parametrize("eta", [0.01, 0.7, math.inf])
@pytest.mark.parametrize("control_variate", [True, False])
@pytest.mark.parametrize(
    ("batch", "max_level", "level_sampling"),
    [(40, 4, "independent"), (40, 4, "systematic"), (1, 3, "independent"), (5, 0, "independent")],
)
def test_segment_sets_equal_tiled_sets(
    name, make, n_out, eta, control_variate, batch, max_level, level_sampling
):
    """The shipped functionals evaluate their sets by segment reductions; wrapped in a plain
    function they go through the generic tiled path. Same draws, same estimates and gradients,
    also when values spread over 10^4 units at η = 0.01 (no underflow to -inf)."""
    x = torch.randn(batch, 3, dtype=DT, generator=gen(40))
    weights = torch.randn(3, n_out, dtype=DT, generator=gen(41)) * 1e3
    shipped = make(eta)
    results = []
    for functional in (shipped, lambda v: shipped(v)):
        out_seen = []

        def evaluate(z, index, out_seen=out_seen):
            out = (z @ weights).squeeze(-1).requires_grad_()
            out_seen.append(out)
            return out

        est = FunctionalEstimator(
            functional,
            radius=0.5,
            max_level=max_level,
            control_variate=control_variate,
            level_sampling=level_sampling,
        )(evaluate, x, generator=gen(42))
        (grad,) = torch.autograd.grad(est.per_point.sum(), out_seen[0])
        results.append((est, grad))
    (seg, seg_grad), (tiled, tiled_grad) = results
    assert torch.isfinite(seg.per_point).all(), name
    torch.testing.assert_close(seg.per_point, tiled.per_point, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(seg_grad, tiled_grad, rtol=1e-12, atol=1e-12)
    if control_variate:
        torch.testing.assert_close(seg.center, tiled.center, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(seg.levels, tiled.levels, rtol=0, atol=0)


def test_segment_values_exact_on_a_small_case():
    """Two sets sharing a row, one empty: soft-min of (1, 3), of (3,), and 0 for the empty set."""
    rows = torch.tensor([1.0, 3.0], dtype=DT)
    values = entropic_min(0.5).segment_values(
        rows,
        member_row=torch.tensor([0, 1, 1]),
        member_set=torch.tensor([0, 0, 1]),
        inv_size=torch.tensor([0.5, 1.0, 1.0], dtype=DT),
    )
    expected = -0.5 * math.log((math.exp(-2.0) + math.exp(-6.0)) / 2)
    assert float(values[0]) == pytest.approx(expected, rel=1e-14)
    assert float(values[1]) == 3.0 and float(values[2]) == 0.0
