"""Data sets for the supervised experiments: scikit-learn's 8×8 digits and MNIST from IDX files.

Images are returned as ``float32`` tensors in ``[0, 1]`` of shape ``(N, 1, H, W)``, labels as
``int64`` tensors of shape ``(N,)``.

- ``digits``: the 1,797 8×8 handwritten digits that ship with scikit-learn (no download), pixels
  divided by 16, split into train/test by a fixed stratified split (deterministic for a given
  ``split_seed``).
- ``mnist``: read from the four standard IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each raw
  or gzip-compressed (``.gz``), in a directory the user gives. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from robust_rl.errors import InvalidArgumentError, MissingFileError
from robust_rl.io import atomic_write_bytes

__all__ = [
    "DATASETS",
    "MNIST_FILES",
    "ClassificationData",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "read_idx",
    "write_idx",
]

#: data set names accepted by :func:`load_dataset`
DATASETS = ("digits", "mnist")

#: the IDX files :func:`load_mnist` expects (each may also carry a ``.gz`` suffix)
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# IDX type byte -> big-endian numpy dtype
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ClassificationData:
    """A train/test split of an image classification data set.

    :param x_train: training images, ``float32`` ``(N, C, H, W)`` in ``[0, 1]``.
    :param y_train: training labels, ``int64`` ``(N,)`` in ``[0, num_classes)``.
    :param x_test: test images, ``(M, C, H, W)``.
    :param y_test: test labels, ``(M,)``.
    :param name: data set name.
    :param num_classes: number of classes.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])

    def train_dataset(self) -> TensorDataset:
        """The training split as a :class:`~torch.utils.data.TensorDataset`."""
        return TensorDataset(self.x_train, self.y_train)

    def test_dataset(self) -> TensorDataset:
        """The test split as a :class:`~torch.utils.data.TensorDataset`."""
        return TensorDataset(self.x_test, self.y_test)


def load_digits(test_fraction: float = 0.25, split_seed: int = 0) -> ClassificationData:
    """scikit-learn's 8×8 handwritten digits, scaled to ``[0, 1]``, with a stratified split.

    :param test_fraction: fraction of the 1,797 images held out for testing, in ``(0, 1)``.
    :param split_seed: seed of the (deterministic) stratified split.
    :returns: ``x`` of shape ``(N, 1, 8, 8)``; with the defaults 1,347 train and 450 test images.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InvalidArgumentError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed
    )
    return ClassificationData(
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        name="digits",
        num_classes=10,
    )


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InvalidArgumentError(f"{path}: corrupt gzip data ({exc})") from exc
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    The header is two zero bytes, a type byte (``0x08`` unsigned byte, ``0x09`` signed byte,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions,
    then one big-endian ``uint32`` per dimension; the data follow in C order.

    :param path: the file; compression is detected from its content, not its name.
    :returns: an array of the stored dtype (native byte order) and shape.
    :raises FileNotFoundError: if the file does not exist.
    :raises ValueError: on a bad magic number or a size that does not match the header.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"IDX file not found: {p}")
    data = _read_bytes(p)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise InvalidArgumentError(
            f"{p}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; expected "
            f"00 00 <type in {[hex(t) for t in _IDX_DTYPES]}> <ndim>)"
        )
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InvalidArgumentError(
            f"{p}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise InvalidArgumentError(
            f"{p}: IDX header announces shape {shape} ({expected} data bytes) but the file holds "
            f"{len(data) - header}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False, force: bool = False
) -> Path:
    """Write ``array`` as an IDX file (atomically; the inverse of :func:`read_idx`).

    :param path: destination file.
    :param array: array of dtype uint8, int8, int16, int32, float32 or float64, at most 255 dims.
    :param compress: gzip the file.
    :param force: overwrite an existing file.
    """
    arr = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    key = arr.dtype.newbyteorder("=")
    if key not in codes:
        raise InvalidArgumentError(
            f"array dtype must be one of {[str(d) for d in codes]}, got {arr.dtype}"
        )
    buf = io.BytesIO()
    buf.write(bytes([0, 0, codes[key], arr.ndim]))
    buf.write(np.asarray(arr.shape, dtype=">u4").tobytes())
    buf.write(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder(">")).tobytes())
    data = buf.getvalue()
    if compress:
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data, force=force)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(data_dir: str | os.PathLike[str]) -> ClassificationData:
    """MNIST from the four standard IDX files in ``data_dir`` (raw or ``.gz``).

    :param data_dir: directory holding :data:`MNIST_FILES`.
    :returns: images scaled to ``[0, 1]`` (pixel / 255), shape ``(N, 1, 28, 28)``.
    :raises FileNotFoundError: naming every expected file that is missing.
    :raises ValueError: if a file is not a valid IDX image/label file or counts disagree.
    """
    directory = Path(data_dir)
    if not directory.is_dir():
        raise MissingFileError(
            f"MNIST directory {directory} does not exist; it must hold "
            + ", ".join(f"{s}[.gz]" for s in MNIST_FILES.values())
        )
    found = {key: _find(directory, stem) for key, stem in MNIST_FILES.items()}
    missing = [f"{MNIST_FILES[k]}[.gz]" for k, v in found.items() if v is None]
    if missing:
        raise MissingFileError(
            f"MNIST files missing in {directory}: {', '.join(missing)} (expected the four IDX "
            "files " + ", ".join(MNIST_FILES.values()) + ", each raw or .gz)"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, path in found.items():
        assert path is not None
        arr = read_idx(path)
        if key.startswith("x") and (arr.ndim != 3 or arr.dtype != np.uint8):
            raise InvalidArgumentError(
                f"{path}: expected uint8 images of shape (N, H, W), got {arr.dtype} {arr.shape}"
            )
        if key.startswith("y") and (arr.ndim != 1 or arr.dtype != np.uint8):
            raise InvalidArgumentError(
                f"{path}: expected uint8 labels of shape (N,), got {arr.dtype} {arr.shape}"
            )
        arrays[key] = arr
    for split in ("train", "test"):
        nx, ny = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if nx != ny:
            raise InvalidArgumentError(f"MNIST {split} split: {nx} images but {ny} labels")
        if arrays[f"y_{split}"].size and arrays[f"y_{split}"].max() > 9:
            raise InvalidArgumentError(f"MNIST {split} labels must be in 0..9")

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return ClassificationData(
        x_train=images(arrays["x_train"]),
        y_train=labels(arrays["y_train"]),
        x_test=images(arrays["x_test"]),
        y_test=labels(arrays["y_test"]),
        name="mnist",
        num_classes=10,
    )


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> ClassificationData:
    """Load a data set by name.

    :param name: ``"digits"`` (embedded, no files needed) or ``"mnist"`` (needs ``data_dir``).
    :param data_dir: directory of the MNIST IDX files.
    :raises ValueError: on an unknown name, or ``"mnist"`` without ``data_dir``.
    """
    if name == "digits":
        return load_digits()
    if name == "mnist":
        if data_dir is None:
            raise InvalidArgumentError(
                "data_dir is required for dataset 'mnist' (CLI: --data-dir DIR)"
            )
        return load_mnist(data_dir)
    raise InvalidArgumentError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
