r"""Set functionals: maps from the values at ``n`` draws of one point to one number.

Each functional takes values of shape ``(b, n, *O)`` (``n`` draws for each of ``b`` points) and
returns ``(b,)``. They are what the multilevel estimators in :mod:`robust_rl.risk.mlmc` average.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import check_eta

__all__ = [
    "SetFunctional",
    "entropic_max",
    "entropic_min",
    "log_mean_exp",
    "soft_min_of_max",
    "soft_min_then_max",
]

#: ``(b, n, *O) -> (b,)``
SetFunctional = Callable[[torch.Tensor], torch.Tensor]


def log_mean_exp(values: torch.Tensor, eta: float, dim: int = 1) -> torch.Tensor:
    r"""Entropic soft-max :math:`\eta \log \frac1n \sum_j \exp(v_j/\eta)` along ``dim``, stably.

    Computed as :math:`m + \eta\,\mathrm{log1p}(\frac1n\sum_j \mathrm{expm1}((v_j - m)/\eta))` with
    :math:`m = \max_j v_j` (detached), which never overflows (``v/η = 1e7`` is fine) and keeps full
    precision when ``η`` is large (no ``log n`` cancellation). ``η = inf`` gives the mean. The
    gradient with respect to ``v_j`` is ``softmax(v/η)_j``.

    :param values: any shape; reduced along ``dim``.
    :param eta: temperature ``η > 0`` (``math.inf`` allowed).
    :param dim: the draws' dimension.

    >>> log_mean_exp(torch.tensor([[0.0, 1e7]]), eta=1.0)
    tensor([9999999.])
    >>> log_mean_exp(torch.tensor([[1.0, 3.0]], dtype=torch.float64), eta=math.inf)
    tensor([2.], dtype=torch.float64)
    """
    eta = check_eta(eta)
    if math.isinf(eta):
        return values.mean(dim=dim)
    return _signed_log_mean_exp(values, eta, 1.0, dim)


def _signed_log_mean_exp(values: torch.Tensor, eta: float, sign: float, dim: int) -> torch.Tensor:
    r"""``sign · η log mean_j exp(sign · v_j / η)`` along ``dim`` (finite ``η``), stably.

    ``sign = 1``: the soft-max, shifted by the max; ``sign = -1``: the soft-min, shifted by the
    min. The shift stays in value units, so equal values come back exactly; the steps run in
    place where autograd allows (fewer eager operations on the hot path).
    """
    u = values.detach()
    m = (u.amax(dim=dim, keepdim=True) if sign > 0 else u.amin(dim=dim, keepdim=True)).nan_to_num_(
        0.0, posinf=0.0, neginf=0.0
    )
    inner = torch.sub(values, m).mul_(sign / eta).expm1_().mean(dim=dim)
    return torch.log1p(inner).mul_(sign * eta).add_(m.squeeze(dim))


def entropic_max(eta: float) -> SetFunctional:
    """Functional for scalar losses: ``(b, n) -> (b,)``, the entropic soft-max over draws."""
    eta = check_eta(eta)

    def functional(values: torch.Tensor) -> torch.Tensor:
        if values.dim() != 2:
            raise InvalidArgumentError(
                f"loss_fn must return one loss per draw (shape (N,)); got per-draw shape "
                f"{tuple(values.shape[2:])}"
            )
        return log_mean_exp(values, eta, dim=1)

    return functional


def entropic_min(eta: float) -> SetFunctional:
    r"""Soft-min of scalar values over draws: ``(b, n) -> (b,)``, :math:`-\eta \log \tfrac1n
    \sum_j \exp(-v_j/\eta)` (the robust target of a state value, e.g. for actor-critic agents).

    Shifted by the minimum in value units: exactly ``v`` when every draw has the same value.
    """
    eta = check_eta(eta)

    def functional(values: torch.Tensor) -> torch.Tensor:
        if values.dim() != 2:
            raise InvalidArgumentError(
                f"expected one value per draw, shape (b, n), got {tuple(values.shape)}"
            )
        if math.isinf(eta):
            return values.mean(dim=1)
        return _signed_log_mean_exp(values, eta, -1.0, 1)

    return functional


def soft_min_then_max(eta: float) -> SetFunctional:
    r"""Robust Q-target functional (method.md §4, the talk's form): ``(b, n, A) -> (b,)``.

    .. math:: \max_a \left[-\eta \log \tfrac1n \textstyle\sum_j \exp(-Q(z_j, a)/\eta)\right]

    Soft-min over the perturbed next states for each action, then max over actions.
    """
    eta = check_eta(eta)

    def functional(q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 3:
            raise InvalidArgumentError(
                f"expected Q-values of shape (b, n, A), got {tuple(q.shape)}"
            )
        if math.isinf(eta):
            return q.mean(dim=1).amax(dim=-1)
        return _signed_log_mean_exp(q, eta, -1.0, 1).amax(dim=-1)

    return functional


def soft_min_of_max(eta: float) -> SetFunctional:
    r"""Variant robust target: soft-min over draws of the state value ``max_a Q(z, a)``.

    .. math:: -\eta \log \tfrac1n \textstyle\sum_j \exp(-\max_a Q(z_j, a)/\eta)

    ``(b, n, A) -> (b,)``. Never smaller than :func:`soft_min_then_max` (minimax inequality).
    """
    eta = check_eta(eta)

    def functional(q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 3:
            raise InvalidArgumentError(
                f"expected Q-values of shape (b, n, A), got {tuple(q.shape)}"
            )
        v = q.amax(dim=-1)
        if math.isinf(eta):
            return v.mean(dim=1)
        return _signed_log_mean_exp(v, eta, -1.0, 1)

    return functional
