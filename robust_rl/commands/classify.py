"""``robust-rl classify``: train a classifier (ERM, FGM, IFGM or entropic) and evaluate robustness.

Writes into ``--out``: ``model.pt`` (weights-only classifier file, see
:mod:`robust_rl.supervised.io`), ``robustness.csv`` and ``robustness.md`` (misclassification error
versus magnitude for random ℓ∞ / ℓ2 noise and ℓ∞ / ℓ2 PGD attacks), ``history.csv`` (per-epoch
loss and time), ``config.json`` and TensorBoard scalars under ``tb/``.

Example::

    robust-rl classify --method entropic --dataset digits --seed 0 --out runs/digits-entropic
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from robust_rl.errors import InvalidArgumentError
from robust_rl.provenance import machine

__all__ = ["DEFAULTS", "add_parser", "run"]

#: training defaults: the hyperparameters chosen by the validation sweep of
#: experiments/reproduce_classification.py on the digits (results in
#: experiments/results/classification/results.md)
DEFAULTS: dict[str, Any] = {
    "norm": "linf",
    "radius": 0.5,
    "adv_radius": 0.1,
    "eta": 1.0,
    "estimator": "rt-mlmc",
    "max_level": 4,
    "control_variate": True,
    "epochs": 60,
    "batch_size": 64,
    "lr": 1e-3,
    "ifgm_steps": 10,
    "pgd_steps": 10,
}

_OUTPUTS = ("model.pt", "robustness.csv", "robustness.md", "history.csv", "config.json")


def _magnitudes(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative magnitudes, got {text!r}")
    return values


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``classify`` subcommand."""
    from robust_rl.supervised import DATASETS, METHODS, MODELS

    p = subparsers.add_parser(
        "classify",
        help="train and evaluate a robust image classifier (digits or MNIST)",
        description=(
            "Train a classifier with ERM, FGM or IFGM adversarial training, or entropic "
            "regularisation (RT-MLMC or SAA estimator), save it, and tabulate its error under "
            "random l-inf / l2 noise and l-inf / l2 PGD attacks."
        ),
    )
    p.add_argument("--method", choices=METHODS, required=True, help="training objective")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="data set (digits: embedded 8x8; mnist: IDX files) (default: %(default)s)",
    )
    p.add_argument("--data-dir", help="directory of the MNIST IDX files (raw or .gz)")
    p.add_argument(
        "--model",
        choices=["auto", *sorted(MODELS)],
        default="auto",
        help="architecture; auto: small_cnn for 8x8, wrm_cnn for 28x28 (default: %(default)s)",
    )
    d = DEFAULTS
    # options with a list of choices and a default from DEFAULTS
    for flag, choices, text in (
        ("--norm", ["linf", "l2"], "training ball norm"),
        ("--estimator", ["rt-mlmc", "saa"], "entropic estimator"),
    ):
        default = d[flag[2:]]
        p.add_argument(flag, choices=choices, default=default, help=f"{text} (default: {default})")
    p.add_argument(
        "--radius",
        type=float,
        default=None,
        help=f"training radius; default {d['radius']} for entropic, {d['adv_radius']} for fgm/ifgm",
    )
    # options with a type and a default from DEFAULTS
    for flag, number, text in (
        ("--eta", float, "entropic regularisation η"),
        ("--max-level", int, "truncation level L"),
        ("--ifgm-steps", int, "IFGM steps T"),
        ("--epochs", int, "training epochs"),
        ("--batch-size", int, "mini-batch size"),
        ("--lr", float, "Adam learning rate"),
        ("--pgd-steps", int, "evaluation PGD steps"),
    ):
        key = flag[2:].replace("-", "_")
        p.add_argument(flag, type=number, default=d[key], help=f"{text} (default: %(default)s)")
    p.add_argument(
        "--control-variate",
        action=argparse.BooleanOptionalAction,
        default=d["control_variate"],
        help="RT-MLMC: clean loss as level-0 control variate (one extra evaluation per point; "
        "default: on; ignored with --estimator saa)",
    )
    p.add_argument(
        "--clip-samples",
        action="store_true",
        help="clamp the entropic draws to [0, 1] (changes the distribution; off by default)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of initialisation and sampling (default: 0)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument(
        "--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)"
    )
    for kind in ("linf_noise", "l2_noise", "linf_pgd", "l2_pgd"):
        p.add_argument(
            f"--{kind.replace('_', '-')}",
            dest=kind,
            type=_magnitudes,
            default=None,
            metavar="M1,M2,...",
            help=f"evaluation magnitudes for {kind} (default depends on the data set)",
        )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    return p


def _history_csv(history: list[Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", "loss", "clean_loss", "clean_error", "train_time_s", "loss_evaluations"])
    for h in history:
        w.writerow(
            [
                h.epoch,
                f"{h.loss:.6f}",
                f"{h.clean_loss:.6f}",
                f"{h.clean_error:.6f}",
                f"{h.train_time_s:.4f}",
                h.loss_evaluations,
            ]
        )
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    """Run ``robust-rl classify``; returns the exit code."""
    from robust_rl.io import atomic_write_text, check_writable
    from robust_rl.supervised import (
        DEFAULT_MAGNITUDES,
        evaluate_robustness,
        fit,
        load_dataset,
        make_model,
        save_classifier,
    )

    out = Path(args.out)
    for name in _OUTPUTS:  # fail before training, not after
        check_writable(out / name, args.force)
    if args.dataset == "mnist" and args.data_dir is None:
        raise InvalidArgumentError("--data-dir is required with --dataset mnist")
    radius = args.radius
    if radius is None:
        radius = DEFAULTS["radius"] if args.method == "entropic" else DEFAULTS["adv_radius"]
    if args.threads is not None:
        if args.threads < 1:
            raise InvalidArgumentError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, args.data_dir)
    grids = {
        kind: getattr(args, kind) or DEFAULT_MAGNITUDES[args.dataset][kind]
        for kind in DEFAULT_MAGNITUDES[args.dataset]
    }
    size = data.input_shape[-1]
    model = make_model(
        None if args.model == "auto" else args.model, input_size=size, seed=args.seed
    )

    fit_kwargs: dict[str, Any] = {
        "method": args.method,
        "radius": radius,
        "eta": args.eta,
        "norm": args.norm,
        "estimator": args.estimator,
        "max_level": args.max_level,
        "sample_clip": (0.0, 1.0) if args.clip_samples else None,
        "control_variate": args.control_variate and args.estimator == "rt-mlmc",
        "ifgm_steps": args.ifgm_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
    }
    fit(model, data, epochs=0, eval_clean=False, **fit_kwargs)  # validates before any output

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(out / "tb"))
    writer.add_text("config", "```\n" + json.dumps(vars(args), default=str, indent=1) + "\n```")

    def log_epoch(stats: Any) -> None:
        writer.add_scalar("train/loss", stats.loss, stats.epoch)
        writer.add_scalar("train/clean_loss", stats.clean_loss, stats.epoch)
        writer.add_scalar("train/clean_error", stats.clean_error, stats.epoch)
        writer.add_scalar("time/epoch_s", stats.train_time_s, stats.epoch)
        writer.add_scalar("time/loss_evaluations", stats.loss_evaluations, stats.epoch)
        writer.add_scalar(
            "charts/examples_per_s", len(data.x_train) / max(stats.train_time_s, 1e-9), stats.epoch
        )

    t0 = time.perf_counter()
    try:
        result = fit(
            model,
            data,
            epochs=args.epochs,
            callback=log_epoch,
            progress=not args.no_progress,
            **fit_kwargs,
        )
        table = evaluate_robustness(
            model,
            data.x_test,
            data.y_test,
            grids,
            pgd_steps=args.pgd_steps,
            seed=args.seed,
            progress=not args.no_progress,
        )
        for kind in table.kinds:
            for mag, err in zip(table.magnitudes(kind), table.errors(kind), strict=True):
                writer.add_scalar(f"eval/{kind}_error", err, round(mag * 1000))
    finally:
        writer.close()
    wall = time.perf_counter() - t0

    config = {
        "command": "robust-rl " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "robust-rl",
        "dataset": args.dataset,
        "model": model.arch_name,
        "fit": result.config,
        "eval_magnitudes": grids,
        "pgd_steps": args.pgd_steps,
        "mean_epoch_time_s": result.mean_epoch_time_s,
        "wall_time_s": wall,
        "hardware": f"{machine(torch_threads=torch.get_num_threads())}, device {args.device}",
    }
    save_classifier(model, out / "model.pt", metadata=config, force=args.force)
    table.to_csv(out / "robustness.csv", force=args.force)
    clean = table.error(table.kinds[0], 0.0) if 0.0 in grids[table.kinds[0]] else float("nan")
    md = (
        f"# {args.method} on {args.dataset} (seed {args.seed})\n\n"
        f"Misclassification error on the test set ({table.n} points) versus perturbation "
        f"magnitude. PGD: {args.pgd_steps} steps. Clean error: {clean:.3f}. Mean training time "
        f"per epoch: {result.mean_epoch_time_s:.3f} s; wall time {wall:.1f} s.\n\n"
        f"Command: `{config['command']}`\n\nHardware: {config['hardware']}\n\n"
        + table.to_markdown()
    )
    atomic_write_text(out / "robustness.md", md, force=args.force)
    atomic_write_text(out / "history.csv", _history_csv(result.history), force=args.force)
    atomic_write_text(
        out / "config.json", json.dumps(config, indent=2, default=str) + "\n", force=args.force
    )
    print(table.to_markdown())
    print(f"clean error {clean:.3f}; outputs in {out}")
    return 0
