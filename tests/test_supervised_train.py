"""fit() for each method, and evaluate_robustness()."""

from __future__ import annotations

import math

import pytest
import torch

from robust_rl.supervised import (
    KINDS,
    METHODS,
    RobustnessTable,
    evaluate_robustness,
    fit,
    load_digits,
    make_model,
)


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    return d.x_train[:256], d.y_train[:256], d.x_test[:60], d.y_test[:60]


@pytest.mark.parametrize("method", METHODS)
def test_one_epoch_reduces_the_loss(data, method):
    x, y, _, _ = data
    model = make_model("small_cnn", seed=0)
    res = fit(
        model,
        (x, y),
        method=method,
        radius=0.05,
        eta=0.1,
        max_level=2,
        ifgm_steps=3,
        epochs=1,
        batch_size=32,
        lr=3e-3,
        seed=0,
    )
    assert res.method == method and len(res.history) == 1
    h = res.history[0]
    assert h.clean_loss < res.initial_clean_loss - 0.3
    assert math.isfinite(h.loss) and h.train_time_s > 0
    expected_evals = {"erm": 256, "fgm": 512, "ifgm": 4 * 256}
    if method in expected_evals:
        assert h.loss_evaluations == expected_evals[method]
    else:  # RT-MLMC, L=2: (L+1)/(2-2^-L) = 12/7 draws per point in expectation, plus the clean
        # loss of the control variate (on by default)
        assert 2 * 256 <= h.loss_evaluations <= 5 * 256
        assert abs(h.loss_evaluations / 256 - 12 / 7 - 1) < 0.35
    assert not model.training
    assert res.to_dict()["config"]["method"] == method


def test_fit_is_deterministic_for_a_seed(data):
    x, y, _, _ = data
    runs = []
    for _ in range(2):
        model = make_model("mlp", seed=0)
        runs.append(fit(model, (x, y), method="entropic", epochs=2, seed=5, eval_clean=False))
    assert runs[0].losses == runs[1].losses
    assert all(math.isnan(h.clean_loss) for h in runs[0].history)


def test_callback_can_stop_training(data):
    x, y, _, _ = data
    seen = []
    res = fit(
        make_model("mlp", seed=0), (x, y), epochs=5, callback=lambda s: seen.append(s) or False
    )
    assert len(res.history) == 1 and seen[0].epoch == 1


def test_fit_rejects_bad_inputs(data):
    x, y, _, _ = data
    model = make_model("mlp", seed=0)
    with pytest.raises(
        ValueError, match=r"method must be one of \['erm', 'fgm', 'ifgm', 'entropic'\]"
    ):
        fit(model, (x, y), method="wrm")
    bad_y = y.clone()
    bad_y[0] = 10
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        fit(model, (x, bad_y), epochs=1)
    with pytest.raises(ValueError, match=r"inputs must lie in the box \[0.0, 1.0\]"):
        fit(model, (x * 255, y), epochs=1)
    with pytest.raises(ValueError, match="y must be an integer"):
        fit(model, (x, y.float()), epochs=1)
    with pytest.raises(ValueError, match="radius must be"):
        fit(model, (x, y), method="fgm", radius=-1.0)
    with pytest.raises(ValueError, match="eta must be"):
        fit(model, (x, y), method="entropic", eta=-1.0)
    with pytest.raises(ValueError, match="estimator must be one of"):
        fit(model, (x, y), method="entropic", estimator="v-mlmc")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        fit(model, (x, y), batch_size=0)
    with pytest.raises(ValueError, match="train_data must be"):
        fit(model, x)


def test_evaluate_robustness_table(data, tmp_path):
    x, y, xt, yt = data
    model = make_model("mlp", seed=0)
    fit(model, (x, y), epochs=3, lr=1e-2)
    grids = {
        "linf_noise": [0.0, 0.5],
        "l2_noise": [0.0, 3.0],
        "linf_pgd": [0.0, 0.3],
        "l2_pgd": [0.0, 2.0],
    }
    table = evaluate_robustness(model, xt, yt, grids, pgd_steps=5)
    assert table.kinds == list(KINDS) and table.n == 60
    with torch.no_grad():
        clean = float((model(xt).argmax(1) != yt).float().mean())
    for kind in KINDS:
        assert table.error(kind, 0.0) == pytest.approx(clean)
    assert table.error("linf_pgd", 0.3) > clean + 0.3
    assert table.error("linf_pgd", 0.3) >= table.error("linf_noise", 0.5) - 0.05
    csv_text = table.to_csv(tmp_path / "t.csv")
    assert csv_text.splitlines()[0] == "kind,magnitude,error,n"
    assert len(csv_text.splitlines()) == 9
    md = table.to_markdown()
    assert "| perturbation | 0 | 0.5 |" in md and "| linf_pgd |" in md
    with pytest.raises(FileExistsError):
        table.to_csv(tmp_path / "t.csv")
    # same seed, same noise
    again = evaluate_robustness(model, xt, yt, grids, pgd_steps=5)
    assert again.rows == table.rows
    with pytest.raises(KeyError):
        table.error("linf_noise", 0.25)


def test_evaluate_robustness_rejects_bad_arguments(data):
    _, _, xt, yt = data
    model = make_model("mlp", seed=0)
    with pytest.raises(ValueError, match="kinds must be a subset of"):
        evaluate_robustness(model, xt, yt, [0.1], kinds=["linf_fgsm"])
    with pytest.raises(ValueError, match="magnitudes must be"):
        evaluate_robustness(model, xt, yt, [-0.1])
    with pytest.raises(ValueError, match="magnitudes has no grid"):
        evaluate_robustness(model, xt, yt, {"linf_noise": [0.1]})


def test_table_markdown_groups_grids():
    t = RobustnessTable(rows=[("a", 0.0, 0.1), ("a", 1.0, 0.2), ("b", 0.0, 0.1)], n=10)
    md = t.to_markdown()
    assert "| a | 0.100 | 0.200 |" in md and "| b | 0.100 |" in md
