"""Supervised classification with entropic regularisation (the paper's §5 use of the core).

- :mod:`~robust_rl.supervised.losses`: :func:`entropic_loss` / :class:`EntropicLoss` for any
  training loop, estimated by :func:`robust_rl.risk.entropic_risk`;
- :mod:`~robust_rl.supervised.attacks`: :func:`fgm`, :func:`pgd` (IFGM), :func:`random_noise`;
- :mod:`~robust_rl.supervised.models`: the paper's CNN for 28×28 inputs and a small CNN for 8×8;
- :mod:`~robust_rl.supervised.data`: scikit-learn digits (embedded) and MNIST from IDX files;
- :mod:`~robust_rl.supervised.io`: weights-only save / load;
- :mod:`~robust_rl.supervised.train`: :func:`fit` (ERM, FGM, IFGM, entropic) and
  :func:`evaluate_robustness`.
"""

from __future__ import annotations

from robust_rl.supervised.attacks import FGM, PGD, RandomNoise, fgm, pgd, random_noise
from robust_rl.supervised.data import (
    DATASETS,
    MNIST_FILES,
    ClassificationData,
    load_dataset,
    load_digits,
    load_mnist,
    read_idx,
    write_idx,
)
from robust_rl.supervised.io import load_classifier, read_classifier_metadata, save_classifier
from robust_rl.supervised.losses import EntropicLoss, entropic_loss, entropic_loss_result
from robust_rl.supervised.models import MLP, MODELS, WRMCNN, SmallCNN, make_model
from robust_rl.supervised.train import (
    DEFAULT_MAGNITUDES,
    KINDS,
    METHODS,
    EpochStats,
    FitResult,
    RobustnessTable,
    evaluate_robustness,
    fit,
)

__all__ = [
    "DATASETS",
    "DEFAULT_MAGNITUDES",
    "FGM",
    "KINDS",
    "METHODS",
    "MLP",
    "MNIST_FILES",
    "MODELS",
    "PGD",
    "WRMCNN",
    "ClassificationData",
    "EntropicLoss",
    "EpochStats",
    "FitResult",
    "RandomNoise",
    "RobustnessTable",
    "SmallCNN",
    "entropic_loss",
    "entropic_loss_result",
    "evaluate_robustness",
    "fgm",
    "fit",
    "load_classifier",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "make_model",
    "pgd",
    "random_noise",
    "read_classifier_metadata",
    "read_idx",
    "save_classifier",
    "write_idx",
]
