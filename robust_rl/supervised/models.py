"""Classifiers used by the supervised experiments.

Every model maps images in ``[0, 1]`` of shape ``(N, C, H, W)`` to logits of shape
``(N, num_classes)``, and knows how to describe itself (:meth:`config`) so that
:mod:`robust_rl.supervised.io` can rebuild it from a weights-only file.

- :class:`WRMCNN`: the network of the paper (after Sinha, Namkoong & Duchi, "Certifying Some
  Distributional Robustness with Principled Adversarial Training", ICLR 2018) for 28×28 inputs:
  conv 64@8×8 stride 2 (padding 3) → ELU → conv 128@6×6 stride 2 → ELU → conv 128@5×5 → ELU →
  linear 10. On 28×28 inputs the feature maps are 14×14, 5×5 and 1×1.
- :class:`SmallCNN`: for the 8×8 scikit-learn digits: conv 32@3×3 (padding 1) → ELU →
  conv 64@3×3 stride 2 (padding 1) → ELU → linear 10 (feature maps 8×8, 4×4).
- :class:`MLP`: a one-hidden-layer perceptron, handy for tests and for the regularisation study.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from robust_rl.errors import InvalidArgumentError

__all__ = ["MLP", "MODELS", "WRMCNN", "SmallCNN", "make_model"]


class _Classifier(nn.Module):
    """Base class: a registered architecture name plus the keyword arguments that rebuild it."""

    #: name under which the architecture is registered in :data:`MODELS`
    arch_name: ClassVar[str] = ""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self._config = dict(config)

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (plain Python values) that rebuild this architecture."""
        return dict(self._config)


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")


class WRMCNN(_Classifier):
    """The ELU CNN of the paper for 28×28 single-channel images (MNIST).

    :param num_classes: number of output logits.
    :param in_channels: number of input channels.
    """

    arch_name: ClassVar[str] = "wrm_cnn"

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=8, stride=2, padding=3),  # 28 -> 14
            nn.ELU(),
            nn.Conv2d(64, 128, kernel_size=6, stride=2),  # 14 -> 5
            nn.ELU(),
            nn.Conv2d(128, 128, kernel_size=5),  # 5 -> 1
            nn.ELU(),
        )
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: images, shape ``(N, in_channels, 28, 28)``. :returns: logits ``(N, K)``."""
        return self.classifier(torch.flatten(self.features(x), 1))


class SmallCNN(_Classifier):
    """A small ELU CNN for 8×8 single-channel images (scikit-learn digits).

    :param num_classes: number of output logits.
    :param in_channels: number of input channels.
    :param image_size: side of the (square) input image; must be even.
    """

    arch_name: ClassVar[str] = "small_cnn"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 8) -> None:
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("image_size", image_size)
        if image_size % 2:
            raise InvalidArgumentError(f"image_size must be even, got {image_size}")
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ELU(),
            nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.ELU(),
        )
        self.classifier = nn.Linear(64 * (image_size // 2) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: images ``(N, in_channels, image_size, image_size)``. :returns: ``(N, K)``."""
        return self.classifier(torch.flatten(self.features(x), 1))


class MLP(_Classifier):
    """Flatten → linear → ELU → linear; ``hidden=0`` gives multinomial logistic regression.

    :param in_features: number of input features (e.g. 64 for 8×8 images).
    :param hidden: width of the hidden layer (0: no hidden layer).
    :param num_classes: number of output logits.
    """

    arch_name: ClassVar[str] = "mlp"

    def __init__(self, in_features: int = 64, hidden: int = 64, num_classes: int = 10) -> None:
        _check_positive_int("in_features", in_features)
        _check_positive_int("num_classes", num_classes)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
            raise InvalidArgumentError(f"hidden must be a non-negative integer, got {hidden!r}")
        super().__init__(in_features=in_features, hidden=hidden, num_classes=num_classes)
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_features, hidden), nn.ELU(), nn.Linear(hidden, num_classes)
            )
        else:
            self.net = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: inputs ``(N, *S)`` with ``prod(S) == in_features``. :returns: ``(N, K)``."""
        return self.net(torch.flatten(x, 1))


#: architecture name -> class
MODELS: dict[str, type[_Classifier]] = {cls.arch_name: cls for cls in (WRMCNN, SmallCNN, MLP)}

_BY_SIZE = {28: "wrm_cnn", 8: "small_cnn"}


def make_model(
    name: str | None = None,
    *,
    input_size: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> _Classifier:
    """Build a classifier by name, or pick the default architecture for an input size.

    :param name: one of :data:`MODELS` (``"wrm_cnn"``, ``"small_cnn"``, ``"mlp"``); or ``None``
        to choose by ``input_size``.
    :param input_size: side of the square input image: 28 → ``"wrm_cnn"``, 8 → ``"small_cnn"``.
    :param seed: if given, the parameters are initialised from ``torch.manual_seed(seed)`` in a
        forked RNG state (the global RNG is left untouched).
    :param kwargs: passed to the architecture's constructor.
    :raises ValueError: on an unknown name or an input size without a default architecture.
    """
    if name is None:
        if input_size not in _BY_SIZE:
            raise InvalidArgumentError(
                f"input_size must be one of {sorted(_BY_SIZE)} when name is None, got {input_size!r}"
            )
        name = _BY_SIZE[input_size]
    if name not in MODELS:
        raise InvalidArgumentError(f"unknown model name {name!r}; expected one of {sorted(MODELS)}")
    cls = MODELS[name]
    if name == "small_cnn" and input_size is not None and "image_size" not in kwargs:
        kwargs["image_size"] = input_size
    if seed is None:
        return cls(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs)
