"""The entropic classification loss against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from robust_rl.risk import sample_ball
from robust_rl.supervised import MLP, EntropicLoss, entropic_loss


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    model = MLP(in_features=64, hidden=8)
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    return model, x, y


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_saa_equals_direct_computation(setup, norm):
    model, x, y = setup
    radius, eta, level = 0.2, 0.05, 3
    value = entropic_loss(
        model,
        x,
        y,
        radius=radius,
        eta=eta,
        norm=norm,
        estimator="saa",
        max_level=level,
        generator=torch.Generator().manual_seed(7),
    )
    n = 2**level
    z = sample_ball(x, radius, n, norm=norm, generator=torch.Generator().manual_seed(7))
    losses = F.cross_entropy(
        model(z.reshape(-1, 1, 8, 8)), y.repeat_interleave(n), reduction="none"
    )
    per_point = eta * (torch.logsumexp(losses.view(6, n) / eta, dim=1) - math.log(n))
    torch.testing.assert_close(value, per_point.mean())
    # a soft maximum: between the mean and the max of the draws
    assert losses.view(6, n).mean() <= value <= losses.view(6, n).max(dim=1).values.mean()


def test_large_eta_gives_the_average_and_small_eta_the_max(setup):
    model, x, y = setup
    kw = dict(radius=0.3, estimator="saa", max_level=4)
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    z = sample_ball(x, 0.3, 16, generator=gen())
    losses = F.cross_entropy(
        model(z.reshape(-1, 1, 8, 8)), y.repeat_interleave(16), reduction="none"
    )
    losses = losses.view(6, 16)
    hot = entropic_loss(model, x, y, eta=1e4, generator=gen(), **kw)
    cold = entropic_loss(model, x, y, eta=1e-5, generator=gen(), **kw)
    torch.testing.assert_close(hot, losses.mean(), atol=1e-3, rtol=0)
    torch.testing.assert_close(cold, losses.max(dim=1).values.mean(), atol=1e-3, rtol=0)


def test_zero_radius_gives_the_clean_loss(setup):
    model, x, y = setup
    value = entropic_loss(model, x, y, radius=0.0, eta=0.1, estimator="saa", max_level=2)
    torch.testing.assert_close(value, F.cross_entropy(model(x), y))


@pytest.mark.parametrize("control_variate", [False, True])
def test_rt_mlmc_is_differentiable_and_reports_diagnostics(setup, control_variate):
    model, x, y = setup
    loss_mod = EntropicLoss(
        radius=0.1,
        eta=0.1,
        max_level=3,
        control_variate=control_variate,
        generator=torch.Generator().manual_seed(0),
    )
    value = loss_mod(model, x, y)
    value.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    res = loss_mod.last_result
    assert res.levels.shape == (6,) and int(res.levels.max()) <= 3
    expected = int((2**res.levels).sum()) + (6 if control_variate else 0)
    assert res.n_evaluations == expected
    assert "radius=0.1" in repr(loss_mod)


def test_clip_keeps_draws_in_the_box(setup):
    model, x, y = setup
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, z):
            seen.append(z.detach())
            return model(z)

    entropic_loss(Spy(), x, y, radius=0.5, eta=0.1, estimator="saa", max_level=2, clip=(0.0, 1.0))
    assert float(seen[0].min()) >= 0.0 and float(seen[0].max()) <= 1.0
    seen.clear()
    entropic_loss(Spy(), x, y, radius=0.5, eta=0.1, estimator="saa", max_level=2)
    assert float(seen[0].min()) < 0.0 or float(seen[0].max()) > 1.0


def test_bad_arguments_raise(setup):
    model, x, y = setup
    with pytest.raises(ValueError, match="eta"):
        entropic_loss(model, x, y, radius=0.1, eta=0.0)
    with pytest.raises(ValueError, match="norm"):
        entropic_loss(model, x, y, radius=0.1, eta=0.1, norm="l1")
    with pytest.raises(ValueError, match="estimator"):
        entropic_loss(model, x, y, radius=0.1, eta=0.1, estimator="mc")
    with pytest.raises(ValueError, match="clip must satisfy"):
        entropic_loss(model, x, y, radius=0.1, eta=0.1, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"inputs must lie in the box"):
        entropic_loss(model, x + 5, y, radius=0.1, eta=0.1, clip=(0.0, 1.0))
