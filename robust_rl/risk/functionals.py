r"""Set functionals: maps from the values at ``n`` draws of one point to one number.

Each functional takes values of shape ``(b, n, *O)`` (``n`` draws for each of ``b`` points) and
returns ``(b,)``. They are what the multilevel estimators in :mod:`robust_rl.risk.mlmc` average.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.risk._checks import check_eta

__all__ = [
    "EntropicFunctional",
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


@dataclass(frozen=True)
class EntropicFunctional:
    r"""``sign·η log mean_j exp(sign·v_j/η)`` of per-draw values, with an optional max over actions.

    Every functional this library ships is one of these: the soft-max (``sign = 1``) or soft-min
    (``sign = -1``) over the draws of a scalar value, or of per-action values followed by a max
    over actions (``action_max="after"``), or of the per-draw max over actions
    (``action_max="before"``). Callable as any :data:`SetFunctional` (``(b, n, *O) -> (b,)``);
    the RT-MLMC estimator recognises the type and evaluates its sets by segment reductions over
    the evaluated rows (:meth:`segment_values`) instead of tiling them.

    :ivar eta: temperature ``η > 0`` (``math.inf``: the mean).
    :ivar sign: ``1.0`` (soft-max) or ``-1.0`` (soft-min).
    :ivar action_max: ``"none"`` (one value per draw, ``(b, n)``), ``"after"`` or ``"before"``
        (per-action values, ``(b, n, A)``).
    :ivar shape_error: message for a wrongly shaped input, with ``{shape}`` (the input's shape)
        and ``{per_draw}`` (its shape after the first two axes) filled in.
    """

    eta: float
    sign: float
    action_max: str = "none"
    shape_error: str = "expected one value per draw, shape (b, n), got {shape}"

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        expected = 2 if self.action_max == "none" else 3
        if values.dim() != expected:
            raise InvalidArgumentError(
                self.shape_error.format(shape=tuple(values.shape), per_draw=tuple(values.shape[2:]))
            )
        v = values.amax(dim=-1) if self.action_max == "before" else values
        if math.isinf(self.eta):
            soft = v.mean(dim=1)
        else:
            soft = _signed_log_mean_exp(v, self.eta, self.sign, 1)
        return soft.amax(dim=-1) if self.action_max == "after" else soft

    def segment_values(
        self,
        rows: torch.Tensor,
        member_row: torch.Tensor,
        member_set: torch.Tensor,
        inv_size: torch.Tensor,
    ) -> torch.Tensor:
        r"""The functional of many sets of evaluated rows at once, without tiling them.

        Set ``s`` holds the rows ``member_row[k]`` for every ``k`` with ``member_set[k] = s``
        (a row may belong to several sets). Same computation as :meth:`__call__` per set,
        shifted by each set's own extreme value, so it never overflows and equal values come
        back exactly. A set with no member gets 0. On CUDA the sums accumulate in an unspecified
        order (last-bit differences between runs) unless ``torch.use_deterministic_algorithms(True)``.

        :param rows: ``(N, *O)`` values of the evaluated rows (differentiable).
        :param member_row: ``(M,)`` int64 row of each membership.
        :param member_set: ``(M,)`` int64 set of each membership, in ``0..S-1``.
        :param inv_size: ``(S,)`` one over each set's size (any value for an empty set).
        :return: ``(S,)``.
        """
        v = rows.amax(dim=-1) if self.action_max == "before" else rows
        src = v.index_select(0, member_row)
        src = src.reshape(src.shape[0], -1)
        n_sets, width = inv_size.shape[0], src.shape[1]
        inv = inv_size.unsqueeze(1)
        if math.isinf(self.eta):
            soft = src.new_zeros(n_sets, width).index_add_(0, member_set, src).mul_(inv)
        else:
            into = member_set.unsqueeze(1).expand(-1, width)
            m = src.new_zeros(n_sets, width).scatter_reduce_(
                0, into, src.detach(), "amax" if self.sign > 0 else "amin", include_self=False
            )
            m.nan_to_num_(0.0, posinf=0.0, neginf=0.0)
            terms = torch.sub(src, m.index_select(0, member_set)).mul_(self.sign / self.eta)
            sums = src.new_zeros(n_sets, width).index_add_(0, member_set, terms.expm1_())
            soft = torch.log1p(sums.mul_(inv)).mul_(self.sign * self.eta).add_(m)
        soft = soft.view(n_sets, *v.shape[1:])
        return soft.amax(dim=-1) if self.action_max == "after" else soft


def entropic_max(eta: float) -> EntropicFunctional:
    """Functional for scalar losses: ``(b, n) -> (b,)``, the entropic soft-max over draws."""
    return EntropicFunctional(
        check_eta(eta),
        1.0,
        shape_error="loss_fn must return one loss per draw (shape (N,)); got per-draw shape {per_draw}",
    )


def entropic_min(eta: float) -> EntropicFunctional:
    r"""Soft-min of scalar values over draws: ``(b, n) -> (b,)``, :math:`-\eta \log \tfrac1n
    \sum_j \exp(-v_j/\eta)` (the robust target of a state value, e.g. for actor-critic agents).

    Shifted by the minimum in value units: exactly ``v`` when every draw has the same value.
    """
    return EntropicFunctional(check_eta(eta), -1.0)


def soft_min_then_max(eta: float) -> EntropicFunctional:
    r"""Robust Q-target functional (method.md §4, the talk's form): ``(b, n, A) -> (b,)``.

    .. math:: \max_a \left[-\eta \log \tfrac1n \textstyle\sum_j \exp(-Q(z_j, a)/\eta)\right]

    Soft-min over the perturbed next states for each action, then max over actions.
    """
    return EntropicFunctional(check_eta(eta), -1.0, "after", _Q_SHAPE_ERROR)


def soft_min_of_max(eta: float) -> EntropicFunctional:
    r"""Variant robust target: soft-min over draws of the state value ``max_a Q(z, a)``.

    .. math:: -\eta \log \tfrac1n \textstyle\sum_j \exp(-\max_a Q(z_j, a)/\eta)

    ``(b, n, A) -> (b,)``. Never smaller than :func:`soft_min_then_max` (minimax inequality).
    """
    return EntropicFunctional(check_eta(eta), -1.0, "before", _Q_SHAPE_ERROR)


_Q_SHAPE_ERROR = "expected Q-values of shape (b, n, A), got {shape}"
