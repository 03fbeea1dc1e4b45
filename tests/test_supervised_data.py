"""IDX reader / writer, MNIST loader and the embedded digits."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from robust_rl.supervised import (
    MNIST_FILES,
    load_dataset,
    load_digits,
    load_mnist,
    read_idx,
    write_idx,
)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype, compress):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / "a.idx", arr, compress=compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_idx_header_bytes_match_the_mnist_format(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])  # magic 2049


def test_idx_reader_detects_gzip_by_content(tmp_path):
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 5])
    (tmp_path / "plain_name").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain_name"), [4, 5])


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match=r"announces shape \(5,\)"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        read_idx(tmp_path / "nope")
    with pytest.raises(ValueError, match="array dtype must be one of"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def test_write_idx_refuses_to_overwrite(tmp_path):
    write_idx(tmp_path / "a", np.zeros(2, dtype=np.uint8))
    with pytest.raises(FileExistsError, match="already exists"):
        write_idx(tmp_path / "a", np.zeros(2, dtype=np.uint8))


def _write_mnist(directory, n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for i, (key, arr) in enumerate(arrays.items()):
        name = MNIST_FILES[key] + (".gz" if i % 2 else "")  # mix raw and gzip
        write_idx(directory / name, arr, compress=bool(i % 2))
    return arrays


def test_load_mnist_from_tiny_idx_files(tmp_path):
    arrays = _write_mnist(tmp_path)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (3, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    np.testing.assert_allclose(data.x_train[:, 0].numpy(), arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test.numpy(), arrays["y_test"])
    assert data.input_shape == (1, 28, 28)
    assert load_dataset("mnist", tmp_path).x_test.shape == (3, 1, 28, 28)


def test_load_mnist_names_missing_files(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing .*: t10k-labels-idx1-ubyte\[\.gz\]"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path / "absent")


def test_load_mnist_rejects_mismatched_counts(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / (MNIST_FILES["y_train"] + ".gz")).unlink()
    write_idx(tmp_path / MNIST_FILES["y_train"], np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        load_mnist(tmp_path)


def test_digits_split_is_deterministic_stratified_and_scaled():
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1347, 1, 8, 8) and a.x_test.shape == (450, 1, 8, 8)
    torch.testing.assert_close(a.x_test, b.x_test)
    torch.testing.assert_close(a.y_train, b.y_train)
    assert float(a.x_train.min()) == 0.0 and float(a.x_train.max()) == 1.0
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 43 and int(counts.max()) <= 46  # 174 to 183 per class
    assert len(a.train_dataset()) == 1347 and len(a.test_dataset()) == 450


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'; expected one of \['digits'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="data_dir is required"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)
