"""Test-time perturbations: FGM, PGD / IFGM attacks and uniform random noise in a norm ball.

Every function takes a batch ``x`` of shape ``(B, *S)`` and returns a perturbed batch of the same
shape that lies in the ball of the given ``radius`` around ``x`` (ℓ∞ or ℓ2 norm, per data point)
and, when ``clip=(low, high)`` is given, in that box (pixels in ``[0, 1]`` by default). Clipping to
the box after the ball step keeps the point in the ball: the box contains ``x``.

FGM and PGD are the library's one ascent core (:func:`robust_rl.risk.ball_ascent`, shared with
the observation attacks of :mod:`robust_rl.evaluation.attacks`), which runs the model in eval
mode without parameter gradients and restores the model's train/eval mode and every parameter's
``requires_grad`` flag afterwards; parameter ``.grad`` fields are never written. The thin
classes :class:`FGM`, :class:`PGD` and :class:`RandomNoise` bind the hyperparameters, in the
style of torchattacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk import ball_ascent, sample_ball
from robust_rl.supervised._checks import (
    check_clip,
    check_inputs,
    check_norm,
    check_positive,
    check_radius,
)

__all__ = ["FGM", "PGD", "RandomNoise", "fgm", "pgd", "random_noise"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _default_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="sum")


def _ascend(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    start: torch.Tensor,
    radius: float,
    steps: int,
    step_size: float,
    norm: str,
    box: tuple[float, float] | None,
    loss_fn: LossFn | None,
) -> torch.Tensor:
    """The shared ascent core (:func:`robust_rl.risk.ball_ascent`) on ``loss_fn(model(z), y)``."""
    loss = loss_fn or _default_loss
    bounds = None if box is None else [torch.full_like(x[:1], b) for b in box]
    return ball_ascent(
        lambda z: loss(model(z), y),
        x.detach(),
        torch.tensor(radius, dtype=x.dtype, device=x.device),
        steps=steps,
        step_size=torch.tensor(step_size, dtype=x.dtype, device=x.device),
        norm="l2" if norm == "l2" else "linf",
        low=None if bounds is None else bounds[0],
        high=None if bounds is None else bounds[1],
        start=start,
        modules=[model],
    )


def _common_checks(
    x: torch.Tensor,
    y: torch.Tensor | None,
    radius: float,
    norm: str,
    clip: Sequence[float] | None,
) -> tuple[float, tuple[float, float] | None]:
    r = check_radius(radius)
    check_norm(norm)
    box = check_clip(clip)
    check_inputs(x, y, box=box)
    return r, box


def _check_steps(steps: Any, step_size: Any) -> None:
    """:func:`pgd`'s own settings: ``steps`` an integer >= 1, ``step_size`` None or > 0."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidArgumentError(f"steps must be an integer >= 1, got {steps!r}")
    if step_size is not None:
        check_positive(step_size, "step_size")


def fgm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    norm: str = "linf",
    clip: Sequence[float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Fast gradient method: one step of length ``radius`` along the steepest ascent direction.

    .. math:: z = \\Pi_{\\text{box}}\\big(x + \\rho\\, d(\\nabla_x \\ell(x, y))\\big),\\qquad
        d(g) = \\operatorname{sign}(g)\\ (\\ell_\\infty), \\quad d(g) = g / \\|g\\|_2\\ (\\ell_2)

    :param model: classifier mapping ``(B, *S)`` to logits ``(B, K)``.
    :param x: clean inputs ``(B, *S)``, inside ``clip``.
    :param y: labels ``(B,)``.
    :param radius: ball radius ρ ≥ 0.
    :param norm: ``"linf"`` or ``"l2"``.
    :param clip: box ``(low, high)`` the result is clamped to, or ``None``.
    :param loss_fn: ``loss_fn(logits, y)`` to ascend; default summed cross-entropy.
    :returns: adversarial inputs ``(B, *S)``, detached.
    """
    r, box = _common_checks(x, y, radius, norm, clip)
    if r == 0.0:
        return x.detach().clone()
    return _ascend(model, x, y, x.detach(), r, 1, r, norm, box, loss_fn)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "linf",
    clip: Sequence[float] | None = (0.0, 1.0),
    random_start: bool = False,
    generator: torch.Generator | None = None,
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Projected gradient ascent in the ball (IFGM with the default step ``radius / steps``).

    Each step moves by ``step_size`` along the steepest ascent direction (sign of the gradient for
    ℓ∞, normalised gradient for ℓ2), projects back onto the ball around ``x`` and clamps to the box.

    :param model: classifier mapping ``(B, *S)`` to logits ``(B, K)``.
    :param x: clean inputs ``(B, *S)``, inside ``clip``.
    :param y: labels ``(B,)``.
    :param radius: ball radius ρ ≥ 0.
    :param steps: number of gradient steps T ≥ 1.
    :param step_size: length of each step; default ``radius / steps`` (iterated FGM).
    :param norm: ``"linf"`` or ``"l2"``.
    :param clip: box ``(low, high)`` the iterates are clamped to, or ``None``.
    :param random_start: start from a uniform draw in the ball instead of ``x``.
    :param generator: random generator for the random start.
    :param loss_fn: ``loss_fn(logits, y)`` to ascend; default summed cross-entropy.
    :returns: adversarial inputs ``(B, *S)``, detached.
    """
    r, box = _common_checks(x, y, radius, norm, clip)
    _check_steps(steps, step_size)
    alpha = r / steps if step_size is None else float(step_size)
    if r == 0.0:
        return x.detach().clone()
    x = x.detach()
    start = x
    if random_start:
        start = sample_ball(x, r, 1, norm=norm, generator=generator, clip=box).squeeze(1)
    return _ascend(model, x, y, start, r, steps, alpha, norm, box, loss_fn)


def random_noise(
    x: torch.Tensor,
    radius: float,
    norm: str = "linf",
    clip: Sequence[float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One uniform draw from the ball of radius ``radius`` around each point, clamped to ``clip``.

    :param x: inputs ``(B, *S)``, inside ``clip``.
    :param radius: ball radius ρ ≥ 0.
    :param norm: ``"linf"`` or ``"l2"``.
    :param clip: box ``(low, high)`` the draws are clamped to, or ``None``.
    :param generator: random generator.
    :returns: perturbed inputs ``(B, *S)``.
    """
    r, box = _common_checks(x, None, radius, norm, clip)
    if r == 0.0:
        return x.detach().clone()
    return sample_ball(x.detach(), r, 1, norm=norm, generator=generator, clip=box).squeeze(1)


class FGM:
    """Callable form of :func:`fgm`: ``FGM(model, radius, norm)(x, y)``."""

    def __init__(
        self,
        model: nn.Module,
        radius: float,
        norm: str = "linf",
        clip: Sequence[float] | None = (0.0, 1.0),
        loss_fn: LossFn | None = None,
    ) -> None:
        self.radius = check_radius(radius)
        self.norm = check_norm(norm)
        self.clip = check_clip(clip)
        self.model = model
        self.loss_fn = loss_fn

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return fgm(self.model, x, y, self.radius, self.norm, self.clip, self.loss_fn)


class PGD:
    """Callable form of :func:`pgd`: ``PGD(model, radius, steps=10)(x, y)``."""

    def __init__(
        self,
        model: nn.Module,
        radius: float,
        steps: int = 10,
        step_size: float | None = None,
        norm: str = "linf",
        clip: Sequence[float] | None = (0.0, 1.0),
        random_start: bool = False,
        generator: torch.Generator | None = None,
        loss_fn: LossFn | None = None,
    ) -> None:
        check_radius(radius)
        check_norm(norm)
        check_clip(clip)
        _check_steps(steps, step_size)
        self.model = model
        self.options = {k: v for k, v in locals().items() if k not in ("self", "model")}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(self.model, x, y, **self.options)


class RandomNoise:
    """Callable form of :func:`random_noise`: ``RandomNoise(radius, norm)(x)``."""

    def __init__(
        self,
        radius: float,
        norm: str = "linf",
        clip: Sequence[float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        self.radius = check_radius(radius)
        self.norm = check_norm(norm)
        self.clip = check_clip(clip)
        self.generator = generator

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return random_noise(x, self.radius, self.norm, self.clip, self.generator)
