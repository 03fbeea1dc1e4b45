"""Weights-only save / load of classifiers."""

from __future__ import annotations

import io

import pytest
import torch

import robust_rl
from robust_rl.supervised import (
    MLP,
    load_classifier,
    make_model,
    read_classifier_metadata,
    save_classifier,
)
from robust_rl.supervised.io import FORMAT


@pytest.mark.parametrize(
    "name,shape",
    [("small_cnn", (4, 1, 8, 8)), ("wrm_cnn", (2, 1, 28, 28)), ("mlp", (3, 1, 8, 8))],
)
def test_round_trip_gives_identical_logits(tmp_path, name, shape):
    model = make_model(name, seed=0)
    x = torch.rand(shape)
    path = save_classifier(model, tmp_path / "model.pt", metadata={"method": "erm", "seed": 3})
    loaded = load_classifier(path)
    assert type(loaded) is type(model) and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    meta = read_classifier_metadata(path)
    assert meta["arch"] == name and meta["method"] == "erm" and meta["seed"] == 3


def test_refuses_to_overwrite_unless_forced(tmp_path):
    path = tmp_path / "model.pt"
    save_classifier(MLP(hidden=0), path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        save_classifier(MLP(hidden=4), path)
    assert path.read_bytes() == before
    save_classifier(MLP(hidden=4), path, force=True)
    assert load_classifier(path).config()["hidden"] == 4


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier file not found"):
        load_classifier(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="not a readable robust_rl classifier file"):
        load_classifier(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robust_rl classifier file"):
        load_classifier(tmp_path / "other.pt")
    torch.save({"format": FORMAT, "arch": "resnet", "kwargs": {}, "state_dict": {}}, tmp_path / "a")
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        load_classifier(tmp_path / "a")
    good = MLP(hidden=3)
    payload = {"format": FORMAT, "arch": "mlp", "kwargs": {"hidden": 5}, "metadata": {}}
    payload["state_dict"] = good.state_dict()
    torch.save(payload, tmp_path / "b")
    with pytest.raises(ValueError, match="weights do not fit architecture 'mlp'"):
        load_classifier(tmp_path / "b")


class _Boom:
    def __reduce__(self):
        return (robust_rl.io.atomic_write_text, ("/dev/null/pwned", "x"))


def test_loading_never_runs_code_from_the_file(tmp_path):
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "payload": _Boom()}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not a readable robust_rl classifier file"):
        load_classifier(tmp_path / "evil.pt")


def test_only_registered_architectures_can_be_saved(tmp_path):
    with pytest.raises(ValueError, match="registered architectures"):
        save_classifier(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_model_shapes_and_factory_errors():
    assert make_model(input_size=28)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert make_model(input_size=8)(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    feats = make_model("wrm_cnn").features(torch.rand(1, 1, 28, 28))
    assert feats.shape == (1, 128, 1, 1)
    a, b = make_model("small_cnn", seed=1), make_model("small_cnn", seed=1)
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight)
    with pytest.raises(ValueError, match="unknown model name 'vgg'"):
        make_model("vgg")
    with pytest.raises(ValueError, match=r"input_size must be one of \[8, 28\]"):
        make_model(input_size=32)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        make_model("mlp", num_classes=0)
