"""Regularisation effects of the entropic objective (method.md §3), measured on small models.

For a trained classifier and test points x with input gradient g = ∇_x ℓ(x), the entropic excess

    V(ρ, η) = E_x[ η log E_{u ~ U(unit ball)} exp( (ℓ(x + ρu) − ℓ(x)) / η ) ]

is compared with the three approximations of method.md §3 (C = ρ/η):

- large ratio:  V ≈ ρ · E‖g‖_*                       (dual norm: ℓ1 for the ℓ∞ ball, ℓ2 for ℓ2)
- small ratio:  V ≈ c · (ρ²/η) · E Var_u(gᵀu)       with c = 1 (as printed on the slides) or 1/2
  (second-order Taylor expansion); Var_u(gᵀu) = ‖g‖₂²/3 (ℓ∞ ball) or ‖g‖₂²/(d+2) (ℓ2 ball)
- fixed ratio:  V ≈ (ρ/C) · E log E_u exp(C gᵀu)   (exact for a linear loss; closed form for ℓ∞,
  one-dimensional quadrature of the ball's marginal density ∝ (1 − t²)^((d−1)/2) for ℓ2)

V itself is estimated by Monte Carlo in float64 with draws u from the core's
:func:`robust_rl.risk.sample_ball` used in antithetic pairs (u, −u): the ball is symmetric, and the
pairs cancel the first-order term exactly, which is what makes an O(ρ²/η) quantity measurable. The
median effective sample size of the self-normalised weights exp(Δ/η) is reported (a small ESS
means the soft-max is dominated by a handful of draws). The same draws applied to the linearised loss ρ gᵀu give a Monte Carlo
estimate of the fixed-ratio formula, whose exact value is known: their ratio ("coverage") says
whether the draws reach the tail that the soft-max needs. An estimate is marked reliable when the
coverage is within 5% of 1; the column V / V_lin (same draws) compares the true and the
linearised loss on identical draws, which stays meaningful where coverage is poor. To keep the loss locally linear and the curvature term (ρ²/2)E uᵀ∇²ℓ u
negligible against ρ²Var/(2η), every setting uses ρ ≤ 10⁻³ and η ≤ 10⁻³: for C < 1,
η = 10⁻³ and ρ = Cη; for C ≥ 1, ρ = 10⁻³ and η = ρ/C (inputs lie in [0, 1]). The noise term E_u ℓ(x+ρu) − ℓ(x) is
reported so that the reader can check it is negligible.

Two models: a one-hidden-layer ELU MLP on scikit-learn's 8×8 digits (d = 64) and on the 2-D
two-moons data (d = 2, where the Monte Carlo estimate stays reliable even at large ratios).

Run::

    python experiments/regularization_effects.py --out experiments/results/regularization
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robust_rl.io import atomic_write_bytes, atomic_write_text, figure_png
from robust_rl.provenance import command_line, machine
from robust_rl.risk import sample_ball
from robust_rl.supervised import fit, load_digits, make_model

#: largest ρ and η used: small enough for the loss to be locally linear on the ball
SCALE = 1e-3
#: |coverage - 1| below which a Monte Carlo estimate counts as reliable
STABLE = 0.05
RATIOS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]


@dataclass
class Setup:
    """A trained model and the points where the regulariser is measured."""

    name: str
    model: torch.nn.Module
    x: torch.Tensor  # (n, d) float64
    y: torch.Tensor


def _digits_setup(n_points: int, seed: int) -> Setup:
    data = load_digits()
    model = make_model("mlp", in_features=64, hidden=32, seed=seed)
    fit(model, data, method="erm", epochs=20, lr=3e-3, seed=seed, eval_clean=False)
    x = data.x_test[:n_points].flatten(1).double()
    return Setup("digits MLP (d=64)", model.double().eval(), x, data.y_test[:n_points])


def _moons_setup(n_points: int, seed: int) -> Setup:
    from sklearn.datasets import make_moons

    xs, ys = make_moons(n_samples=600 + n_points, noise=0.15, random_state=seed)
    xs = (xs - xs.min(0)) / (xs.max(0) - xs.min(0))  # into [0, 1]^2
    x = torch.tensor(xs, dtype=torch.float32)
    y = torch.tensor(ys, dtype=torch.int64)
    model = make_model("mlp", in_features=2, hidden=32, num_classes=2, seed=seed)
    fit(model, (x[:600], y[:600]), method="erm", epochs=100, lr=1e-2, seed=seed, eval_clean=False)
    return Setup("two-moons MLP (d=2)", model.double().eval(), x[600:].double(), y[600:])


def _losses(model: torch.nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(z), y, reduction="none")


def _log_sinhc(a: torch.Tensor) -> torch.Tensor:
    """log(sinh(a)/a), stable for all a (float64)."""
    a = a.abs()
    small = a < 1e-3
    big = torch.where(small, torch.ones_like(a), a)
    val = big + torch.log1p(-torch.exp(-2 * big)) - math.log(2.0) - torch.log(big)
    return torch.where(small, a**2 / 6 - a**4 / 180, val)


def _log_mgf_l2(s: torch.Tensor, d: int, n_grid: int = 20001) -> torch.Tensor:
    """log E exp(s t) for t the first coordinate of a uniform point of the d-dim unit ball."""
    t = torch.linspace(-1.0, 1.0, n_grid, dtype=torch.float64)[1:-1]
    logw = 0.5 * (d - 1) * torch.log1p(-(t**2))
    logz = torch.logsumexp(logw, 0)
    return torch.logsumexp(s[:, None] * t[None, :] + logw[None, :], 1) - logz


def measure(setup: Setup, norm: str, n_pairs: int, seed: int) -> list[dict[str, float]]:
    model, x, y = setup.model, setup.x, setup.y
    n, d = x.shape
    xg = x.clone().requires_grad_(True)
    loss0 = _losses(model, xg, y)
    (g,) = torch.autograd.grad(loss0.sum(), xg)
    loss0 = loss0.detach()
    dual = g.abs().sum(1) if norm == "linf" else g.norm(dim=1)
    var_u = (g**2).sum(1) / (3.0 if norm == "linf" else d + 2.0)
    gen = torch.Generator().manual_seed(seed)
    # unit-ball directions from the core's sampler, shared by every setting
    u = sample_ball(torch.zeros(n, d, dtype=torch.float64), 1.0, n_pairs, norm=norm, generator=gen)
    gu = (u @ g.unsqueeze(-1)).squeeze(-1)  # (n, M): g'u per draw
    var_draws = (gu**2).mean(1)  # Var_u(g'u) over the antithetic draws themselves (mean is 0)
    rows = []
    for ratio in RATIOS:
        if ratio < 1:
            eta = SCALE
            rho = ratio * eta
        else:
            rho = SCALE
            eta = rho / ratio
        with torch.no_grad():
            z = torch.cat([x[:, None, :] + rho * u, x[:, None, :] - rho * u], 1)  # (n, 2M, d)
            yy = y.repeat_interleave(2 * n_pairs)
            delta = _losses(model, z.reshape(-1, d), yy).view(n, 2 * n_pairs) - loss0[:, None]
            a = delta / eta
            v_mc = eta * (torch.logsumexp(a, 1) - math.log(2 * n_pairs))
            # the linearised loss rho*g'u on the same draws: its exact value is the fixed-ratio
            # formula, so this tells whether the draws reach the tail that the soft-max needs
            a_lin = torch.cat([gu, -gu], 1) * ratio
            v_lin = eta * (torch.logsumexp(a_lin, 1) - math.log(2 * n_pairs))
            w = torch.softmax(a, 1)
            ess = 1.0 / (w**2).sum(1)  # per point, out of 2M
            noise_term = delta.mean(1)
        if norm == "linf":
            log_mgf = _log_sinhc(ratio * g).sum(1)
        else:
            log_mgf = _log_mgf_l2(ratio * g.norm(dim=1), d)
        v_fixed = (rho / ratio) * log_mgf
        rows.append(
            {
                "ratio": ratio,
                "rho": rho,
                "eta": eta,
                "V_mc": float(v_mc.mean()),
                "V_mc_se": float(v_mc.std() / math.sqrt(n)),
                "noise_term": float(noise_term.mean()),
                "V_large": float(rho * dual.mean()),
                "V_small_c1": float(rho**2 / eta * var_u.mean()),
                "V_small_c_half": float(0.5 * rho**2 / eta * var_u.mean()),
                "c_same_draws": float(v_mc.mean() / (rho**2 / eta * var_draws.mean())),
                "V_fixed": float(v_fixed.mean()),
                "coverage": float(v_lin.mean() / v_fixed.mean()),
                "median_ess_frac": float(ess.median() / (2 * n_pairs)),
                "V_lin_mc": float(v_lin.mean()),
            }
        )
    return rows


def _fmt(v: float) -> str:
    return f"{v:.3e}"


def _markdown(results: dict[tuple[str, str], list[dict[str, float]]], header: str) -> str:
    out = [header]
    for (name, norm), rows in results.items():
        out.append(f"\n### {name}, {norm} ball\n")
        out.append(
            "| C = ρ/η | ρ | η | V (Monte Carlo) | V / (ρ E‖g‖*) | formula / (ρ E‖g‖*) | "
            "V / ((ρ²/η) E Var) | same, Var on the draws | "
            "V / fixed-ratio formula | V / V_lin (same draws) | noise term / V | median ESS | "
            "coverage | reliable |"
        )
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
        for r in rows:
            ok = abs(r["coverage"] - 1) < STABLE
            out.append(
                f"| {r['ratio']:g} | {r['rho']:.0e} | {r['eta']:.0e} | {_fmt(r['V_mc'])} | "
                f"{r['V_mc'] / r['V_large']:.3f} | {r['V_fixed'] / r['V_large']:.3f} | "
                f"{r['V_mc'] / r['V_small_c1']:.3f} | {r['c_same_draws']:.3f} | "
                f"{r['V_mc'] / r['V_fixed']:.3f} | {r['V_mc'] / r['V_lin_mc']:.3f} | "
                f"{r['noise_term'] / r['V_mc']:.3f} | "
                f"{r['median_ess_frac']:.3f} | {r['coverage']:.3f} | "
                f"{'yes' if ok else 'no'} |"
            )
    return "\n".join(out) + "\n"


def _plot(results: dict[tuple[str, str], list[dict[str, float]]]) -> bytes:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, ((name, norm), rows) in zip(axes[0], results.items(), strict=True):
        c = np.array([r["ratio"] for r in rows])
        base = np.array([r["V_large"] for r in rows])
        ok = np.array([abs(r["coverage"] - 1) < STABLE for r in rows])
        v = np.array([r["V_mc"] for r in rows]) / base
        ax.plot(c[ok], v[ok], "ko", label="V, Monte Carlo")
        if (~ok).any():
            ax.plot(c[~ok], v[~ok], "kx", label="V, MC unreliable")
        ax.plot(c, np.array([r["V_fixed"] for r in rows]) / base, "g-", label="fixed ratio C")
        ax.plot(c, np.ones_like(c), "b--", label="large ratio: ρE‖g‖*")
        ax.plot(c, np.array([r["V_small_c1"] for r in rows]) / base, "r:", label="(ρ²/η)E Var")
        ax.plot(
            c, np.array([r["V_small_c_half"] for r in rows]) / base, "m-.", label="(ρ²/2η)E Var"
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        lowest = min(float(np.min(v)), rows[0]["V_small_c_half"] / base[0])
        ax.set_ylim(max(lowest / 3, 1e-6), 3)
        ax.set_xlabel("C = ρ/η")
        ax.set_title(f"{name}\n{norm} ball", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("V / (ρ E‖∇ℓ‖*)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig, dpi=120, close=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="experiments/results/regularization")
    p.add_argument("--points", type=int, default=100, help="test points per model")
    p.add_argument("--pairs", type=int, default=4096, help="antithetic pairs of draws per point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    names = ["regularization.md", "regularization.png", "regularization.csv"]
    for name in names:
        if (out / name).exists() and not args.force:
            raise SystemExit(f"{out / name} exists; pass --force to overwrite")
    t0 = time.perf_counter()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for setup in (_digits_setup(args.points, args.seed), _moons_setup(args.points, args.seed)):
        for norm in ("linf", "l2"):
            results[(setup.name, norm)] = measure(setup, norm, args.pairs, args.seed)
    wall = time.perf_counter() - t0

    # at the smallest ratio
    small = [rows[0]["V_mc"] / rows[0]["V_small_c1"] for rows in results.values()]
    small_draws = [rows[0]["c_same_draws"] for rows in results.values()]
    curvature = [rows[0]["noise_term"] / rows[0]["V_mc"] for rows in results.values()]
    all_rows = [r for rows in results.values() for r in rows]
    lin_dev = max(abs(r["V_mc"] / r["V_lin_mc"] - 1) for r in all_rows)
    fixed_dev = max(
        (abs(r["V_mc"] / r["V_fixed"] - 1) for r in all_rows if abs(r["coverage"] - 1) < STABLE),
        default=float("nan"),
    )
    header = (
        "# Regularisation effects of the entropic objective\n\n"
        f"Command: `{command_line('experiments/regularization_effects.py', argv)}`\n\n"
        f"Hardware: {machine(torch_threads=args.threads)}. Wall time: {wall:.1f} s.\n\n"
        f"{args.points} test points per model, {args.pairs} antithetic pairs of uniform draws per "
        "point, float64. V is the entropic excess over the clean loss (see the script's "
        "docstring). Columns are ratios: 1 means the approximation is exact.\n\n"
        "**Small-ratio constant.** At the smallest ratio (C = 0.01), V / ((ρ²/η) E Var_u(∇ℓᵀu)) = "
        + ", ".join(f"{s:.3f}" for s in small)
        + " for the four (model, norm) cases (with the variance computed on the same draws as V, "
        "which removes the sampling error of the variance: "
        + ", ".join(f"{s:.3f}" for s in small_draws)
        + "; the curvature term E_u ℓ(x+ρu) − ℓ(x) accounts for "
        + ", ".join(f"{100 * c:.1f}%" for c in curvature)
        + " of V). The constant is **1/2**, as the second-order Taylor expansion says "
        "(V ≈ ρ²/(2η) E Var_u(∇ℓᵀu)), not 1 as printed on the slides.\n\n"
        "**Large ratio.** At the largest ratio (C = "
        + f"{RATIOS[-1]:g}), the fixed-ratio formula divided by ρ E‖∇ℓ‖* is "
        + ", ".join(f"{rows[-1]['V_fixed'] / rows[-1]['V_large']:.3f}" for rows in results.values())
        + " and the Monte Carlo V divided by ρ E‖∇ℓ‖* is "
        + ", ".join(f"{rows[-1]['V_mc'] / rows[-1]['V_large']:.3f}" for rows in results.values())
        + ": V tends to the gradient-norm regulariser ρ E‖∇ℓ‖* (dual norm), slowly in 64 "
        "dimensions (the ℓ∞ formula is ρ‖g‖₁ − (ρ/C) Σ log(2C|g_i|) + …, so the gap closes like "
        "log C / C). In two dimensions the Monte Carlo estimate is reliable at every ratio and "
        "reaches the limit; in 64 dimensions uniform draws rarely come near the maximiser once "
        "C ≳ 3, so the Monte Carlo V (marked unreliable, × in the figure) falls below the "
        f"formula. V / V_lin stays within {100 * lin_dev:.1f}% of 1 everywhere: at these radii the "
        "loss is locally linear, and the shortfall is a sampling effect, not a failure of the "
        "approximation.\n\n"
        "**Fixed ratio.** Wherever the draws cover the ball's tail (reliable rows), V / fixed-ratio "
        f"formula is within {100 * fixed_dev:.1f}% of 1 at every C: (ρ/C) E log E_u exp(C ∇ℓᵀu) "
        "interpolates between the two limits.\n\n"
        "Columns: V / (ρ E‖g‖*) → 1 in the large-ratio regime; V / ((ρ²/η) E Var) → 1/2 in the "
        "small-ratio regime; V / fixed-ratio formula ≈ 1 wherever the loss is locally linear; "
        "noise term / V: the curvature contribution E_u ℓ(x+ρu) − ℓ(x), relative to V.\n"
    )
    md = _markdown(results, header)
    csv_lines = ["model,norm," + ",".join(next(iter(results.values()))[0].keys())]
    for (name, norm), rows in results.items():
        for r in rows:
            csv_lines.append(f"{name},{norm}," + ",".join(f"{v:.6g}" for v in r.values()))
    atomic_write_text(out / "regularization.md", md, force=args.force)
    atomic_write_text(out / "regularization.csv", "\n".join(csv_lines) + "\n", force=args.force)
    atomic_write_bytes(out / "regularization.png", _plot(results), force=args.force)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
