"""End-to-end test of ``robust-rl classify`` with a tiny budget."""

from __future__ import annotations

import csv
import json

import pytest

from robust_rl.cli import main
from robust_rl.supervised import load_classifier

FAST = [
    "--epochs",
    "1",
    "--batch-size",
    "128",
    "--no-progress",
    "--pgd-steps",
    "2",
    "--linf-noise",
    "0,0.3",
    "--l2-noise",
    "0,1",
    "--linf-pgd",
    "0,0.1",
    "--l2-pgd",
    "0,1",
]


@pytest.mark.parametrize(
    "method,extra", [("erm", []), ("entropic", []), ("entropic", ["--estimator", "saa"])]
)
def test_classify_end_to_end(tmp_path, capsys, method, extra):
    out = tmp_path / "run"
    code = main(
        [
            "classify",
            "--method",
            method,
            "--dataset",
            "digits",
            "--seed",
            "0",
            "--max-level",
            "2",
            "--out",
            str(out),
            *FAST,
            *extra,
        ]
    )
    assert code == 0
    for name in ("model.pt", "robustness.csv", "robustness.md", "history.csv", "config.json"):
        assert (out / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    model = load_classifier(out / "model.pt")
    assert model.arch_name == "small_cnn"
    rows = list(csv.DictReader((out / "robustness.csv").open()))
    assert {r["kind"] for r in rows} == {"linf_noise", "l2_noise", "linf_pgd", "l2_pgd"}
    assert len(rows) == 8 and all(0.0 <= float(r["error"]) <= 1.0 for r in rows)
    assert "Command:" in (out / "robustness.md").read_text()
    assert "clean error" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["fit"]["method"] == method
    if method == "entropic":  # the control variate is on by default, RT-MLMC only
        assert config["fit"]["control_variate"] is (not extra)


def test_classify_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["classify", "--method", "erm", "--out", str(out), *FAST]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert main([*args, "--force"]) == 0


def test_classify_user_errors_exit_2(tmp_path, capsys):
    mnist = ["classify", "--method", "erm", "--dataset", "mnist"]
    assert main([*mnist, "--out", str(tmp_path / "a"), *FAST]) == 2
    assert "--data-dir is required" in capsys.readouterr().err
    assert main([*mnist, "--data-dir", str(tmp_path), "--out", str(tmp_path / "b"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and len(err.strip().splitlines()) == 1
    assert (
        main(["classify", "--method", "fgm", "--radius", "-1", "--out", str(tmp_path / "c"), *FAST])
        == 2
    )
    assert "radius must be" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects unknown choices itself
        main(["classify", "--method", "wrm", "--out", str(tmp_path / "d")])
    assert exc.value.code == 2


def test_classify_reads_mnist_idx_files(tmp_path):
    import numpy as np

    from robust_rl.supervised import MNIST_FILES, write_idx

    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 8)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(tmp_path / f"{MNIST_FILES['x_' + split]}.gz", images, compress=True)
        write_idx(tmp_path / MNIST_FILES["y_" + split], (np.arange(n) % 10).astype(np.uint8))
    out = tmp_path / "run"
    code = main(
        [
            "classify",
            "--method",
            "fgm",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == 0
    assert load_classifier(out / "model.pt").arch_name == "wrm_cnn"
    rows = list(csv.DictReader((out / "robustness.csv").open()))
    assert {r["n"] for r in rows} == {"8"}


def test_classify_shows_progress_unless_asked_not_to(tmp_path, capsys):
    """A bar for the training and one for the robustness table on stderr; none with
    --no-progress."""
    base = ["classify", "--method", "erm", "--dataset", "digits", "--out"]
    shown = [a for a in FAST if a != "--no-progress"]
    assert main([*base, str(tmp_path / "a"), *shown]) == 0
    err = capsys.readouterr().err
    assert "fit[erm]" in err and "robustness" in err and "batch" in err
    assert main([*base, str(tmp_path / "b"), *FAST]) == 0
    assert capsys.readouterr().err == ""
