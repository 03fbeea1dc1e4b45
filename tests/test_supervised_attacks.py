"""Invariants of the supervised attacks: ball, box, model state, and that they hurt a trained model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robust_rl.supervised import FGM, MLP, PGD, RandomNoise, fgm, load_digits, pgd, random_noise


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Logistic regression on 200 digits, 60 full-batch Adam steps (well under a second)."""
    torch.manual_seed(0)
    data = load_digits()
    x, y = data.x_train[:200], data.y_train[:200]
    model = MLP(in_features=64, hidden=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model, data.x_test[:100], data.y_test[:100]


def _dist(z: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (z - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


ATTACKS = {
    "fgm": lambda m, x, y, r, n: fgm(m, x, y, r, norm=n),
    "pgd": lambda m, x, y, r, n: pgd(m, x, y, r, steps=5, step_size=r / 2, norm=n),
    "pgd_random_start": lambda m, x, y, r, n: pgd(
        m, x, y, r, steps=3, norm=n, random_start=True, generator=torch.Generator().manual_seed(0)
    ),
    "noise": lambda m, x, y, r, n: random_noise(
        x, r, n, generator=torch.Generator().manual_seed(1)
    ),
}


@pytest.mark.parametrize("norm,radius", [("linf", 0.2), ("l2", 1.5)])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_result_in_ball_and_box(trained, name, norm, radius):
    model, x, y = trained
    z = ATTACKS[name](model, x, y, radius, norm)
    assert z.shape == x.shape
    assert not z.requires_grad
    assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    assert float(_dist(z, x, norm).max()) <= radius * (1 + 1e-5)
    # the perturbation is not trivial
    assert float(_dist(z, x, norm).mean()) > 0.1 * radius


def test_fgm_linf_without_box_moves_every_pixel_by_radius(trained):
    model, x, y = trained
    z = fgm(model, x, y, 0.1, norm="linf", clip=None)
    torch.testing.assert_close((z - x).abs(), torch.full_like(x, 0.1))


def test_fgm_l2_without_box_has_norm_radius(trained):
    model, x, y = trained
    z = fgm(model, x, y, 0.7, norm="l2", clip=None)
    torch.testing.assert_close(_dist(z, x, "l2"), torch.full((len(x),), 0.7))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_step_pgd_equals_fgm(trained, norm):
    model, x, y = trained
    torch.testing.assert_close(
        pgd(model, x, y, 0.3, steps=1, norm=norm), fgm(model, x, y, 0.3, norm=norm)
    )


@pytest.mark.parametrize("norm,radius", [("linf", 0.1), ("l2", 1.0)])
def test_attacks_raise_the_loss_of_a_trained_model(trained, norm, radius):
    model, x, y = trained
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y).item()
        noisy = F.cross_entropy(model(random_noise(x, radius, norm)), y).item()
        loss_fgm = F.cross_entropy(model(fgm(model, x, y, radius, norm)), y).item()
        loss_pgd = F.cross_entropy(model(pgd(model, x, y, radius, 10, norm=norm)), y).item()
        err_clean = (model(x).argmax(1) != y).float().mean().item()
        err_pgd = (model(pgd(model, x, y, radius, 10, norm=norm)).argmax(1) != y).float().mean()
    assert loss_fgm > clean + 0.5
    assert loss_pgd >= loss_fgm - 1e-3
    assert loss_pgd > noisy
    assert err_pgd.item() > err_clean + 0.2


@pytest.mark.parametrize("training", [True, False])
def test_model_state_is_restored_and_no_parameter_grads(trained, training):
    model, x, y = trained
    model.train(training)
    first = next(model.parameters())
    first.requires_grad_(False)  # a mixed state must come back as it was
    try:
        fgm(model, x, y, 0.1)
        pgd(model, x, y, 0.1, steps=3)
        assert model.training is training
        flags = [p.requires_grad for p in model.parameters()]
        assert flags == [False] + [True] * (len(flags) - 1)
        assert all(p.grad is None for p in model.parameters())
    finally:
        first.requires_grad_(True)
        model.eval()


def test_random_noise_is_seeded_and_fills_the_ball():
    x = torch.full((500, 1, 8, 8), 0.5)
    a = random_noise(x, 0.3, "linf", generator=torch.Generator().manual_seed(3))
    b = random_noise(x, 0.3, "linf", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    d = (a - x).flatten()
    # uniform on [-0.3, 0.3]: mean 0, variance 0.3^2 / 3
    assert abs(float(d.mean())) < 0.005
    assert abs(float(d.var()) - 0.03) < 0.002
    z = random_noise(x, 2.0, "l2", clip=None, generator=torch.Generator().manual_seed(4))
    r = _dist(z, x, "l2")
    # radius of a uniform point in the 64-dim ball: r = R v^(1/64), so E[r] = R * 64/65
    assert float(r.max()) <= 2.0 + 1e-5
    assert abs(float(r.mean()) - 2.0 * 64 / 65) < 0.01


def test_zero_radius_returns_the_input(trained):
    model, x, y = trained
    for z in (fgm(model, x, y, 0.0), pgd(model, x, y, 0.0), random_noise(x, 0.0)):
        torch.testing.assert_close(z, x)


def test_callable_classes_match_functions(trained):
    model, x, y = trained
    torch.testing.assert_close(FGM(model, 0.1)(x, y), fgm(model, x, y, 0.1))
    torch.testing.assert_close(PGD(model, 0.1, steps=4)(x, y), pgd(model, x, y, 0.1, 4))
    z = RandomNoise(0.1, generator=torch.Generator().manual_seed(0))(x)
    torch.testing.assert_close(z, random_noise(x, 0.1, generator=torch.Generator().manual_seed(0)))


def test_bad_arguments_raise(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="radius must be"):
        fgm(model, x, y, -0.1)
    with pytest.raises(ValueError, match=r"norm must be one of \['linf', 'l2'\]"):
        pgd(model, x, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="step_size must be"):
        pgd(model, x, y, 0.1, step_size=-1.0)
    with pytest.raises(ValueError, match="clip must satisfy low < high"):
        random_noise(x, 0.1, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"inputs must lie in the box \[0.0, 1.0\]"):
        fgm(model, x + 2.0, y, 0.1)
    with pytest.raises(ValueError, match="y must have shape"):
        fgm(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="steps must be"):
        PGD(model, 0.1, steps=0)
