"""EstimatorSpec: one checked description of the estimator, shared by the core, the agents and
the supervised trainer."""

from __future__ import annotations

import math

import pytest
import torch

from robust_rl import RobustDQN, RobustSAC
from robust_rl.risk import EstimatorSpec, FunctionalEstimator, entropic_min
from robust_rl.supervised import EntropicLoss, fit


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eta": 0.0}, "eta must be a positive number"),
        ({"eta": float("nan")}, "eta must be a positive number"),
        ({"eta": "x"}, "eta must be a positive number"),
        ({"estimator": "mc"}, "estimator must be one of"),
        ({"max_level": -1}, "max_level must be a non-negative integer"),
        ({"max_level": 2.0}, "max_level must be a non-negative integer"),
        ({"max_level": 31}, "max_level must be at most 30"),
        ({"n_samples": 8}, "n_samples applies to estimator='saa' only"),
        ({"estimator": "saa", "n_samples": 0}, "n_samples must be a positive integer"),
        ({"estimator": "saa", "control_variate": True}, "control_variate applies to"),
        ({"control_variate": "yes"}, "control_variate must be True, False or None"),
        ({"level_sampling": "stratified"}, "level_sampling must be one of"),
    ],
)
def test_every_bad_setting_is_refused_by_name(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EstimatorSpec(**kwargs)


def test_round_trip_derived_quantities_and_unknown_keys() -> None:
    spec = EstimatorSpec(eta=3, estimator="saa", max_level=3, n_samples=5)
    assert spec.eta == 3.0 and isinstance(spec.eta, float)
    assert EstimatorSpec.from_dict(spec.to_dict()) == spec
    assert spec.draws_per_point == spec.expected_draws_per_point == 5.0
    assert not spec.uses_control_variate
    rt = EstimatorSpec(max_level=2)
    assert rt.uses_control_variate and rt.draws_per_point == 4.0
    assert rt.expected_draws_per_point == pytest.approx(3 / 1.75)  # (L+1)/(2-2^-L)
    assert EstimatorSpec(eta=math.inf).is_average
    with pytest.raises(ValueError, match=r"unknown estimator setting\(s\) \['radius'\]"):
        EstimatorSpec.from_dict({"eta": 1.0, "radius": 0.1})
    with pytest.raises(ValueError, match="must be a mapping"):
        EstimatorSpec.from_dict([("eta", 1.0)])  # type: ignore[arg-type]
    values = torch.tensor([[1.0, 3.0]])
    assert float(spec.soft_min()(values)) < 2.0 < float(spec.soft_max()(values))


@pytest.mark.parametrize("estimator", ["rt-mlmc", "saa"])
def test_estimator_from_spec_is_the_flat_estimator(estimator: str) -> None:
    spec = EstimatorSpec(eta=0.5, estimator=estimator, max_level=3)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))

    def evaluate(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return (z**2).sum(dim=1)

    built = FunctionalEstimator.from_spec(spec, spec.soft_min(), radius=0.2, with_center=True)
    flat = FunctionalEstimator(
        entropic_min(0.5), radius=0.2, estimator=estimator, max_level=3, with_center=True
    )
    a = built(evaluate, x, generator=torch.Generator().manual_seed(1))
    b = flat(evaluate, x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.per_point, b.per_point) and torch.equal(a.levels, b.levels)


def test_agents_hold_their_spec_through_save_and_load(tmp_path) -> None:
    model = RobustDQN(
        "MlpPolicy", "CartPole-v1", eta=2.0, estimator="saa", max_level=2, n_samples=3, seed=0
    )
    assert model.estimator_spec == EstimatorSpec(eta=2.0, estimator="saa", max_level=2, n_samples=3)
    model.save(tmp_path / "m.zip")
    assert RobustDQN.load(tmp_path / "m.zip").estimator_spec == model.estimator_spec
    with pytest.raises(ValueError, match="level_sampling must be one of"):
        RobustSAC("MlpPolicy", "Pendulum-v1", level_sampling="stratified")
    with pytest.raises(ValueError, match="eta must be a positive number"):
        RobustSAC("MlpPolicy", "Pendulum-v1", eta=-1.0)


def test_supervised_loss_and_fit_check_the_spec_first_and_take_eta_inf() -> None:
    with pytest.raises(ValueError, match="estimator must be one of"):
        EntropicLoss(radius=0.1, eta=1.0, estimator="mc")
    with pytest.raises(ValueError, match="n_samples applies to estimator='saa' only"):
        fit(
            torch.nn.Linear(2, 2),
            (torch.rand(4, 2), torch.zeros(4, dtype=torch.long)),
            method="entropic",
            n_samples=4,
            epochs=0,
        )
    loss = EntropicLoss(radius=0.1, eta=math.inf, estimator="saa", max_level=2)
    assert loss.eta == math.inf and loss.spec.draws_per_point == 4.0
    model = torch.nn.Linear(2, 3)
    x = torch.rand(5, 2)
    y = torch.tensor([0, 1, 2, 0, 1])
    value = loss(model, x, y)
    # eta = inf: the mean cross-entropy over the draws, finite and differentiable
    assert torch.isfinite(value) and value.requires_grad
    result = fit(model, (x, y), method="entropic", eta=math.inf, epochs=1, batch_size=5)
    assert math.isfinite(result.history[-1].loss)


def test_settings_that_cannot_fit_in_memory_are_refused_before_allocating() -> None:
    import time

    from robust_rl.risk.spec import physical_memory, required_bytes

    total = physical_memory()
    if total is None:
        pytest.skip("the OS does not report its physical memory")
    # the smallest level whose RT-MLMC tables exceed this machine's memory
    level = next(L for L in range(31) if required_bytes("rt-mlmc", L, None, 1, 1) > total)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"max_level={level} .* GiB .*lower max_level"):
        EstimatorSpec(max_level=level)
    with pytest.raises(ValueError, match=r"max_level=30 .*lower max_level or n_samples"):
        RobustDQN("MlpPolicy", "CartPole-v1", estimator="saa", max_level=30)
    assert time.perf_counter() - start < 5
    # SAA with 2^20 draws per point fits one point but not a replay batch of 10^4 points
    EstimatorSpec(estimator="saa", max_level=20)
    points = 1 + total // required_bytes("saa", 20, None, 1, 4)
    with pytest.raises(ValueError, match=rf"for {points} point\(s\) of size 4"):
        EstimatorSpec(estimator="saa", max_level=20).check_memory(points, 4)


def test_the_memory_check_counts_the_network_evaluated_on_every_draw() -> None:
    """SAA evaluates the target network on every draw in one pass: its hidden activations count
    (max_level 26 with a CartPole batch of 16 passed the check without them and was killed by
    the OOM killer at 23 GiB)."""
    from robust_rl.risk.spec import physical_memory, required_bytes

    total = physical_memory()
    if total is None:
        pytest.skip("the OS does not report its physical memory")
    assert (
        required_bytes("saa", 20, None, 16, 4, width=256)
        == required_bytes("saa", 20, None, 16, 4) + 16 * 2**20 * 256 * 4
    )
    # the largest level whose draws alone fit, but not with a 256-wide network on each
    level = max(L for L in range(34) if required_bytes("saa", L, None, 16, 4) <= total)
    if required_bytes("saa", level, None, 16, 4, width=256) <= total:
        pytest.skip("this machine's memory is too large for the case")
    with pytest.raises(ValueError, match=rf"max_level={level} .*lower max_level or n_samples"):
        RobustDQN(
            "MlpPolicy",
            "CartPole-v1",
            estimator="saa",
            max_level=level,
            batch_size=16,
            policy_kwargs={"net_arch": [256, 256]},
        )
