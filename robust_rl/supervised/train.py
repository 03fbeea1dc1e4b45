"""Training (ERM, FGM / IFGM adversarial training, entropic training) and robustness evaluation.

:func:`fit` trains a classifier with Adam under one of four objectives, all evaluated on
mini-batches of the training set:

- ``"erm"``: cross-entropy on the clean inputs;
- ``"fgm"``: cross-entropy on FGM adversarial examples of radius ρ (adversarial examples only);
- ``"ifgm"``: cross-entropy on IFGM examples (``ifgm_steps`` steps of size ρ/T, projected);
- ``"entropic"``: the entropic loss :func:`~robust_rl.supervised.losses.entropic_loss`, estimated
  by the shared core (RT-MLMC by default).

:func:`evaluate_robustness` measures the misclassification error under random ℓ∞ / ℓ2 noise and
ℓ∞ / ℓ2 PGD attacks over a grid of magnitudes and returns a :class:`RobustnessTable`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from robust_rl._progress import Progress
from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.io import atomic_write_text
from robust_rl.risk import EstimatorSpec
from robust_rl.supervised._checks import (
    check_clip,
    check_inputs,
    check_norm,
    check_positive,
    check_radius,
)
from robust_rl.supervised.attacks import fgm, pgd, random_noise
from robust_rl.supervised.data import ClassificationData
from robust_rl.supervised.losses import spec_loss_result

__all__ = [
    "DEFAULT_MAGNITUDES",
    "KINDS",
    "METHODS",
    "EpochStats",
    "FitResult",
    "RobustnessTable",
    "evaluate_robustness",
    "fit",
]

#: training objectives accepted by :func:`fit`
METHODS = ("erm", "fgm", "ifgm", "entropic")
#: perturbation kinds accepted by :func:`evaluate_robustness`
KINDS = ("linf_noise", "l2_noise", "linf_pgd", "l2_pgd")

#: per data set: default evaluation grids (kind -> magnitudes). Digits pixels lie in [0, 1] on an
#: 8×8 grid: random noise only degrades ERM noticeably above ℓ∞ 0.3 / ℓ2 1.5, while PGD saturates
#: (error near 1) by ℓ∞ 0.15 / ℓ2 1.2, hence different ranges for noise and attacks.
DEFAULT_MAGNITUDES: dict[str, dict[str, list[float]]] = {
    "digits": {
        "linf_noise": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "l2_noise": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        "linf_pgd": [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12],
        "l2_pgd": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2],
    },
    "mnist": {
        "linf_noise": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "l2_noise": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "linf_pgd": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
        "l2_pgd": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    },
}

TrainData = ClassificationData | TensorDataset | tuple[torch.Tensor, torch.Tensor]


@dataclass
class EpochStats:
    """Statistics of one training epoch.

    :param epoch: epoch index, starting at 1.
    :param loss: mean training objective over the epoch's mini-batches.
    :param clean_loss: cross-entropy on the (clean) training set after the epoch (NaN if skipped).
    :param clean_error: misclassification error on the training set after the epoch (NaN if
        skipped).
    :param train_time_s: wall time of the epoch's optimisation steps (evaluation excluded).
    :param loss_evaluations: forward evaluations of the per-example loss during the epoch
        (gradient steps of attacks included), a hardware-independent cost measure.
    """

    epoch: int
    loss: float
    clean_loss: float
    clean_error: float
    train_time_s: float
    loss_evaluations: int


@dataclass
class FitResult:
    """What :func:`fit` returns.

    :param method: the training objective.
    :param config: the hyperparameters used.
    :param history: one :class:`EpochStats` per epoch.
    :param initial_clean_loss: training-set cross-entropy before training.
    :param total_time_s: wall time of the whole call.
    """

    method: str
    config: dict[str, Any]
    history: list[EpochStats] = field(default_factory=list)
    initial_clean_loss: float = math.nan
    total_time_s: float = 0.0

    @property
    def losses(self) -> list[float]:
        """Mean training objective per epoch."""
        return [h.loss for h in self.history]

    @property
    def epoch_times(self) -> list[float]:
        """Training wall time per epoch, in seconds."""
        return [h.train_time_s for h in self.history]

    @property
    def mean_epoch_time_s(self) -> float:
        """Mean training wall time of an epoch, in seconds."""
        return sum(self.epoch_times) / max(len(self.history), 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (JSON-serialisable)."""
        return {
            "method": self.method,
            "config": dict(self.config),
            "history": [asdict(h) for h in self.history],
            "initial_clean_loss": self.initial_clean_loss,
            "total_time_s": self.total_time_s,
        }


def _as_tensors(data: TrainData) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, ClassificationData):
        return data.x_train, data.y_train
    if isinstance(data, TensorDataset):
        if len(data.tensors) != 2:
            raise InvalidArgumentError("train_data TensorDataset must hold exactly (x, y)")
        return data.tensors[0], data.tensors[1]
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    raise InvalidArgumentError(
        "train_data must be a ClassificationData, a TensorDataset (x, y) or a tuple (x, y)"
    )


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@torch.no_grad()
def _clean_metrics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total_loss, wrong = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        total_loss += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
        wrong += int((logits.argmax(1) != y[i : i + batch_size]).sum())
    model.train(was_training)
    n = max(len(x), 1)
    return total_loss / n, wrong / n


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        was_training = model.training
        model.eval()
        out = model(x[:1])
        model.train(was_training)
    if out.dim() != 2:
        raise InvalidArgumentError(
            f"model must return logits of shape (N, K), got {tuple(out.shape)}"
        )
    return int(out.shape[1])


def fit(
    model: nn.Module,
    train_data: TrainData,
    *,
    method: str = "erm",
    radius: float = 0.1,
    eta: float = 0.05,
    norm: str = "linf",
    estimator: str = "rt-mlmc",
    max_level: int = 4,
    n_samples: int | None = None,
    sample_clip: Sequence[float] | None = None,
    control_variate: bool | None = None,
    ifgm_steps: int = 10,
    box: Sequence[float] | None = (0.0, 1.0),
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_clean: bool = True,
    callback: Callable[[EpochStats], bool | None] | None = None,
    progress: bool = False,
) -> FitResult:
    """Train ``model`` in place with Adam and return the training history.

    :param model: classifier mapping ``(N, *S)`` to logits ``(N, K)``; moved to ``device``.
    :param train_data: ``(x, y)`` as a :class:`ClassificationData` (its training split), a
        :class:`~torch.utils.data.TensorDataset` or a tuple; x ``(N, *S)`` in ``box``, y ``(N,)``.
    :param method: ``"erm"``, ``"fgm"``, ``"ifgm"`` or ``"entropic"``.
    :param radius: perturbation radius ρ of the adversarial / entropic methods.
    :param eta: entropic regularisation η > 0 (``"entropic"`` only; ``math.inf``: the average
        over the ball, i.e. noise augmentation).
    :param norm: ``"linf"`` or ``"l2"``.
    :param estimator: ``"rt-mlmc"`` or ``"saa"`` (``"entropic"`` only).
    :param max_level: truncation level L of the estimator (``"entropic"`` only).
    :param n_samples: SAA draws per point instead of ``2^max_level``.
    :param sample_clip: box the entropic draws are clamped to (changes the distribution; default
        ``None``: uniform on the ball, pixels may leave ``[0, 1]``).
    :param control_variate: clean loss as level-0 control variate; ``None`` (default): on for
        ``"rt-mlmc"``, off for ``"saa"`` (see :func:`~robust_rl.supervised.losses.entropic_loss`).
    :param ifgm_steps: number of IFGM steps T (step size ρ/T).
    :param box: the input domain ``(low, high)``: inputs are checked against it and the FGM / IFGM
        examples are clamped to it; ``None`` disables both.
    :param epochs: number of passes over the training set.
    :param batch_size: mini-batch size.
    :param lr: Adam learning rate.
    :param weight_decay: Adam weight decay.
    :param seed: seeds the shuffling and every random draw of the training.
    :param device: where to train.
    :param eval_clean: compute the clean training loss / error after every epoch.
    :param callback: called with each epoch's :class:`EpochStats`; returning ``False`` stops.
    :param progress: show a tqdm progress bar over mini-batches.
    :raises ValueError: on an unknown method / norm / estimator, a bad hyperparameter, labels
        outside ``[0, K)`` or inputs outside ``box``.
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {list(METHODS)}, got {method!r}")
    radius = check_radius(radius)
    check_norm(norm)
    box_t = check_clip(box)
    sample_box = check_clip(sample_clip)
    _check_int(epochs, "epochs", 0)
    _check_int(batch_size, "batch_size", 1)
    _check_int(ifgm_steps, "ifgm_steps", 1)
    check_positive(lr, "lr")
    spec = None
    if method == "entropic":
        spec = EstimatorSpec.pick(locals())

    device = torch.device(device)
    x_all, y_all = _as_tensors(train_data)
    if len(x_all) == 0:
        raise InvalidArgumentError("train_data is empty")
    check_inputs(x_all, y_all, box=box_t)
    x_all = x_all.to(device=device, dtype=torch.float32)
    y_all = y_all.to(device=device, dtype=torch.int64)
    model.to(device)
    check_inputs(x_all, y_all, num_classes=_num_classes(model, x_all))

    config = {
        "method": method,
        "radius": radius,
        "eta": eta,
        "norm": norm,
        "estimator": estimator,
        "max_level": max_level,
        "n_samples": n_samples,
        "sample_clip": list(sample_box) if sample_box else None,
        "control_variate": (
            spec.uses_control_variate if spec is not None else estimator == "rt-mlmc"
        ),
        "ifgm_steps": ifgm_steps,
        "box": list(box_t) if box_t else None,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
    }
    shuffle_gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    objective = _objective(
        method,
        model,
        radius=radius,
        norm=norm,
        box=box_t,
        ifgm_steps=ifgm_steps,
        spec=spec,
        sample_box=sample_box,
        generator=torch.Generator(device=device).manual_seed(seed + 1),
    )
    result = FitResult(method=method, config=config)
    t_start = time.perf_counter()
    if eval_clean:
        result.initial_clean_loss, _ = _clean_metrics(model, x_all, y_all)
    n_batches = math.ceil(len(x_all) / batch_size)
    with Progress(epochs * n_batches, f"fit[{method}]", progress, unit="batch", leave=False) as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(len(x_all), generator=shuffle_gen).to(device)
            t0 = time.perf_counter()
            total, evals = 0.0, 0
            for b in range(n_batches):
                idx = perm[b * batch_size : (b + 1) * batch_size]
                loss, n_eval = objective(x_all[idx], y_all[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                evals += n_eval
                bar.update(1, epoch=epoch, loss=total / min(len(x_all), (b + 1) * batch_size))
            train_time = time.perf_counter() - t0
            clean_loss, clean_error = (
                _clean_metrics(model, x_all, y_all) if eval_clean else (math.nan, math.nan)
            )
            stats = EpochStats(
                epoch=epoch,
                loss=total / len(x_all),
                clean_loss=clean_loss,
                clean_error=clean_error,
                train_time_s=train_time,
                loss_evaluations=evals,
            )
            result.history.append(stats)
            if callback is not None and callback(stats) is False:
                break
    model.eval()
    result.total_time_s = time.perf_counter() - t_start
    return result


def _objective(
    method: str,
    model: nn.Module,
    *,
    radius: float,
    norm: str,
    box: tuple[float, float] | None,
    ifgm_steps: int,
    spec: EstimatorSpec | None,
    sample_box: tuple[float, float] | None,
    generator: torch.Generator,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, int]]:
    """``objective(x, y) -> (loss, forward evaluations)`` of one mini-batch for ``method``
    (see :func:`fit`)."""

    def objective(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, int]:
        n = len(xb)
        if method == "erm":
            return F.cross_entropy(model(xb), yb), n
        if method == "fgm":
            xa = fgm(model, xb, yb, radius, norm=norm, clip=box)
            return F.cross_entropy(model(xa), yb), 2 * n
        if method == "ifgm":
            xa = pgd(model, xb, yb, radius, steps=ifgm_steps, norm=norm, clip=box)
            return F.cross_entropy(model(xa), yb), (ifgm_steps + 1) * n
        assert spec is not None
        res = spec_loss_result(
            model, xb, yb, spec, radius=radius, norm=norm, clip=sample_box, generator=generator
        )
        return res.value, int(res.n_evaluations)

    return objective


@dataclass
class RobustnessTable:
    """Misclassification error per perturbation kind and magnitude.

    :param rows: ``(kind, magnitude, error)`` triples, in evaluation order.
    :param n: number of test points.
    """

    rows: list[tuple[str, float, float]]
    n: int

    @property
    def kinds(self) -> list[str]:
        """Perturbation kinds, in order of first appearance."""
        return list(dict.fromkeys(k for k, _, _ in self.rows))

    def magnitudes(self, kind: str) -> list[float]:
        """The magnitudes evaluated for ``kind``."""
        return [m for k, m, _ in self.rows if k == kind]

    def errors(self, kind: str) -> list[float]:
        """The errors for ``kind``, aligned with :meth:`magnitudes`."""
        return [e for k, _, e in self.rows if k == kind]

    def error(self, kind: str, magnitude: float) -> float:
        """The error for one ``(kind, magnitude)`` cell."""
        for k, m, e in self.rows:
            if k == kind and math.isclose(m, magnitude, rel_tol=1e-9, abs_tol=1e-12):
                return e
        raise UnknownNameError(f"no entry for kind={kind!r}, magnitude={magnitude}")

    def to_csv(self, path: str | os.PathLike[str] | None = None, *, force: bool = False) -> str:
        """Long-format CSV (``kind,magnitude,error,n``); written atomically if ``path`` is given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["kind", "magnitude", "error", "n"])
        for k, m, e in self.rows:
            writer.writerow([k, f"{m:g}", f"{e:.6f}", self.n])
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(Path(path), text, force=force)
        return text

    def to_markdown(
        self, path: str | os.PathLike[str] | None = None, *, force: bool = False
    ) -> str:
        """Markdown: one row per kind, one column per magnitude (a table per distinct grid)."""
        out: list[str] = []
        grids: dict[tuple[float, ...], list[str]] = {}
        for kind in self.kinds:
            grids.setdefault(tuple(self.magnitudes(kind)), []).append(kind)
        for grid, kinds in grids.items():
            out.append("| perturbation | " + " | ".join(f"{m:g}" for m in grid) + " |")
            out.append("|---|" + "---:|" * len(grid))
            for kind in kinds:
                cells = " | ".join(f"{e:.3f}" for e in self.errors(kind))
                out.append(f"| {kind} | {cells} |")
            out.append("")
        text = "\n".join(out)
        if path is not None:
            atomic_write_text(Path(path), text, force=force)
        return text


@torch.no_grad()
def _count_errors(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(1) != y).sum())


def evaluate_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    magnitudes: Sequence[float] | Mapping[str, Sequence[float]],
    kinds: Iterable[str] = KINDS,
    *,
    clip: Sequence[float] | None = (0.0, 1.0),
    pgd_steps: int = 10,
    pgd_step_factor: float = 2.5,
    seed: int = 0,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> RobustnessTable:
    """Misclassification error of ``model`` under each perturbation kind and magnitude.

    Kinds: ``"linf_noise"`` / ``"l2_noise"``: one uniform draw per point from the ℓ∞ / ℓ2 ball
    (:func:`~robust_rl.supervised.attacks.random_noise`); ``"linf_pgd"`` / ``"l2_pgd"``:
    :func:`~robust_rl.supervised.attacks.pgd` with ``pgd_steps`` steps of size
    ``pgd_step_factor · magnitude / pgd_steps`` from the clean point. All clamped to ``clip``.

    :param model: classifier mapping ``(N, *S)`` to logits ``(N, K)``.
    :param x: test inputs ``(N, *S)`` in ``clip``.
    :param y: test labels ``(N,)``.
    :param magnitudes: radii to evaluate, one grid for all kinds or a mapping kind → grid.
    :param kinds: subset of :data:`KINDS`.
    :param clip: input box, or ``None``.
    :param pgd_steps: PGD steps.
    :param pgd_step_factor: PGD step size as a multiple of ``magnitude / pgd_steps``.
    :param seed: seed of the random noise.
    :param batch_size: evaluation batch size.
    :param device: evaluation device (default: the model's).
    :param progress: draw a progress bar on stderr (batches done over every kind and
        magnitude, rate, ETA).
    :raises ValueError: on an unknown kind, a negative magnitude or bad inputs.
    """
    kinds = list(kinds)
    for kind in kinds:
        if kind not in KINDS:
            raise InvalidArgumentError(f"kinds must be a subset of {list(KINDS)}, got {kind!r}")
    if isinstance(magnitudes, Mapping):
        missing = [k for k in kinds if k not in magnitudes]
        if missing:
            raise InvalidArgumentError(f"magnitudes has no grid for kinds {missing}")
        grids = {k: [check_radius(m, "magnitudes") for m in magnitudes[k]] for k in kinds}
    else:
        grid = [check_radius(m, "magnitudes") for m in magnitudes]
        grids = {k: grid for k in kinds}
    box = check_clip(clip)
    _check_int(pgd_steps, "pgd_steps", 1)
    check_positive(pgd_step_factor, "pgd_step_factor")
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    x = x.to(device=device, dtype=torch.float32)
    y = y.to(device=device, dtype=torch.int64)
    check_inputs(x, y, box=box, num_classes=_num_classes(model, x))

    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    rows: list[tuple[str, float, float]] = []
    batches = -(-len(x) // batch_size)
    total = batches * sum(len(grids[k]) for k in kinds)
    bar = Progress(total, "robustness", progress, unit="batch")
    try:
        for kind in kinds:
            norm = "linf" if kind.startswith("linf") else "l2"
            gen.manual_seed(seed)
            for mag in grids[kind]:
                wrong = 0
                for i in range(0, len(x), batch_size):
                    xb, yb = x[i : i + batch_size], y[i : i + batch_size]
                    if kind.endswith("noise"):
                        z = random_noise(xb, mag, norm=norm, clip=box, generator=gen)
                    else:
                        step = pgd_step_factor * mag / pgd_steps if mag > 0 else None
                        z = pgd(model, xb, yb, mag, pgd_steps, step, norm=norm, clip=box)
                    wrong += _count_errors(model, z, yb)
                    bar.update()
                rows.append((kind, float(mag), wrong / len(x)))
    finally:
        bar.close()
        model.train(was_training)
    return RobustnessTable(rows=rows, n=len(x))
