r"""Projected gradient ascent in ℓ∞ and ℓ2 balls: the one core of every gradient attack.

.. math::
    z_{k+1} = \Pi_{B(x, \rho)\,\cap\,\text{box}}\big(z_k + \alpha\, d(\nabla_z f(z_k))\big),
    \qquad d(g) = \operatorname{sign}(g)\ (\ell_\infty), \quad d(g) = g / \lVert g\rVert_2\ (\ell_2)

Each row ``i`` of the batch has its own radius ``ρ_i`` and step ``α_i`` (for ℓ∞ also one per
coordinate), so one call serves many radii at once: the observation attacks of a robustness
report (radii × episodes in one batch) and the supervised FGM/PGD use it alike.

The projection onto the ℓ∞ ball intersected with the box is the coordinate-wise clamp to
``[max(x − ρ, low), min(x + ρ, high)]``; for ℓ2 the step is projected radially onto the ball,
then clamped to the box (which keeps it in the ball, the box containing ``x``). A point that lies
outside the box is never moved further out: the box is widened to contain it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import check_norm, check_positive_int

__all__ = ["attack_mode", "ball_ascent"]

_TINY = 1e-12


@contextlib.contextmanager
def attack_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Eval mode and frozen parameters for ``modules`` and their children inside the block.

    Every module's train/eval mode and every parameter's ``requires_grad`` flag are restored on
    exit; no parameter's ``.grad`` is written by an ascent run inside.
    """
    saved_modes = [(m, m.training) for top in modules for m in top.modules()]
    saved_flags = [(p, p.requires_grad) for top in modules for p in top.parameters()]
    try:
        for top in modules:
            top.eval()
        for p, _ in saved_flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in saved_flags:
            p.requires_grad_(flag)
        for m, mode in saved_modes:
            m.training = mode


def _row_shape(x: Tensor) -> tuple[int, ...]:
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def _norms(v: Tensor) -> Tensor:
    return v.flatten(1).norm(dim=1).view(_row_shape(v))


def _box(x: Tensor, low: Tensor | None, high: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Box bounds widened to contain ``x``; non-finite bounds ignored."""
    lo = (
        None if low is None else torch.minimum(torch.where(torch.isfinite(low), low, -torch.inf), x)
    )
    hi = (
        None
        if high is None
        else torch.maximum(torch.where(torch.isfinite(high), high, torch.inf), x)
    )
    return lo, hi


def _clamp(z: Tensor, lo: Tensor | None, hi: Tensor | None) -> Tensor:
    if lo is not None:
        z = torch.maximum(z, lo)
    if hi is not None:
        z = torch.minimum(z, hi)
    return z


def _gradient(objective: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(objective(z).sum(), z)
    return grad


def _values(objective: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    with torch.no_grad():
        v = objective(z)
    if v.shape != (z.shape[0],):
        raise InvalidArgumentError(
            f"objective must return one value per sample, shape ({z.shape[0]},), got "
            f"{tuple(v.shape)}"
        )
    return v


def ball_ascent(
    objective: Callable[[Tensor], Tensor],
    x: Tensor,
    radius: Tensor,
    *,
    steps: int,
    step_size: Tensor,
    norm: Literal["linf", "l2"] = "linf",
    low: Tensor | None = None,
    high: Tensor | None = None,
    start: Tensor | None = None,
    keep_best: bool = False,
    modules: Sequence[nn.Module] = (),
) -> Tensor:
    """Maximise ``objective`` by ``steps`` projected ascent steps in the ball around each row.

    :param objective: maps a batch ``(B, *S)`` to per-row values ``(B,)`` (the gradient of their
        sum is taken, so rows must not interact); a scalar is accepted when ``keep_best`` is
        false.
    :param x: centres ``(B, *S)``.
    :param radius: ``ρ >= 0`` broadcastable to ``x``: one per row (``(B, 1, ...)``), per
        coordinate (``S``) or both (``(B, *S)``); for ℓ2 one value per row (size 1 in every
        dimension of ``S``).
    :param steps: ascent steps ``T >= 1``.
    :param step_size: ``α``, broadcastable to ``x`` like ``radius``.
    :param norm: ``"linf"`` or ``"l2"``.
    :param low: lower bounds broadcastable to ``x`` (non-finite entries ignored), or None.
    :param high: upper bounds, or None.
    :param start: first iterate (in the ball; e.g. a random draw in it), default ``x``.
    :param keep_best: return, per row, the iterate with the largest objective over the start
        and every step (one more forward per step) instead of the last one.
    :param modules: networks used by ``objective``, held in :func:`attack_mode` during the ascent.
    :return: detached ``(B, *S)``, in the ball around ``x`` and in the (widened) box.

    >>> x = torch.zeros(2, 3)
    >>> z = ball_ascent(lambda z: z.sum(dim=1), x, torch.tensor([[0.5], [1.0]]), steps=2,
    ...                 step_size=torch.tensor([[0.5], [1.0]]))
    >>> z.tolist()
    [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]]
    """
    check_norm(norm)
    check_positive_int(steps, "steps")
    s = x.detach()
    r = torch.as_tensor(radius, dtype=s.dtype, device=s.device)
    alpha = torch.as_tensor(step_size, dtype=s.dtype, device=s.device)
    for name, t in (("radius", r), ("step_size", alpha)):
        if torch.broadcast_shapes(t.shape, s.shape) != s.shape:
            raise InvalidArgumentError(
                f"{name} of shape {tuple(t.shape)} does not broadcast to the batch {tuple(s.shape)}"
            )
    if norm == "l2" and any(n != 1 for n in r.shape[max(0, r.dim() - s.dim() + 1) :]):
        raise InvalidArgumentError(
            f"an l2 radius must be one value per row (shape ({s.shape[0]}, 1, ...)), got "
            f"shape {tuple(r.shape)}"
        )
    box_lo, box_hi = _box(s, low, high)
    if norm == "linf":
        lo = s - r if box_lo is None else torch.maximum(s - r, box_lo)
        hi = s + r if box_hi is None else torch.minimum(s + r, box_hi)
    z = s.clone() if start is None else start.detach()
    if norm == "linf":
        z = torch.clamp(z, lo, hi)
    with attack_mode(modules):
        if keep_best:
            best, best_val = z.clone(), _values(objective, z)
        for _ in range(steps):
            grad = _gradient(objective, z)
            if norm == "linf":
                z = torch.clamp(z + alpha * grad.sign(), lo, hi)
            else:
                step = z + alpha * grad / _norms(grad).clamp_min(_TINY) - s
                step = step * (r / _norms(step).clamp_min(_TINY)).clamp(max=1.0)
                z = _clamp(s + step, box_lo, box_hi)
            if keep_best:
                new_val = _values(objective, z)
                better = (new_val > best_val).view(_row_shape(z))
                best = torch.where(better, z, best)
                best_val = torch.where(better.view(-1), new_val, best_val)
    return (best if keep_best else z).detach()
