"""Benchmark of the estimator core: SAA vs RT-MLMC, and RT-MLMC's level sampling schemes.

1. Closed form (method.md §2): linear loss on the ℓ∞ ball, L = 0..10: bias, variance,
   evaluations and wall time per gradient.
2. Wall time per gradient with a neural-network loss (MLP, where evaluations dominate).
3. Convex problem (entropic logistic regression): objective gap versus loss evaluations for SG
   (SAA gradients, 2^L draws per point) and RT-MLMC, averaged SGD iterates, until the gap ≤ 1e-3.
4. Level sampling (independent vs systematic): variance of the batch mean, draws per batch.

Sections 1 and 2 use plain RT-MLMC (the paper's estimator, no control variate); section 3 and 4
show it with and without the control variate (the library's default: on).

Writes ``OUT/estimators.md``, ``OUT/estimators.csv`` and ``OUT/estimators.png``.

    python experiments/bench_estimators.py --out experiments/results/estimators
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robust_rl.io import atomic_write_text, save_figure
from robust_rl.provenance import replicate_lines
from robust_rl.risk import FunctionalEstimator, entropic_max, entropic_risk, expected_evaluations

DT = torch.float64


def closed_form(w: torch.Tensor, x: torch.Tensor, rho: float, eta: float) -> float:
    a = rho * w / eta
    return float(w @ x + eta * torch.log(torch.sinh(a) / a).sum())


def time_per_gradient(loss_fn, params, x, *targets, reps: int, **kw) -> tuple[float, float]:
    """Median wall time (s) of value + backward for a batch, and evaluations per point."""
    times, evals = [], []
    for i in range(reps + 2):
        for p in params:
            p.grad = None
        t = time.perf_counter()
        res = entropic_risk(loss_fn, x, *targets, **kw)
        res.value.backward()
        if i >= 2:
            times.append(time.perf_counter() - t)
            evals.append(res.n_evaluations / x.shape[0])
    return float(np.median(times)), float(np.mean(evals))


def closed_form_table(max_l: int, n_rep: int) -> list[dict]:
    d, rho, eta = 4, 0.5, 0.4
    w0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=DT)
    x0 = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=DT)
    exact = closed_form(w0, x0, rho, eta)
    rows = []
    for level in range(max_l + 1):
        row: dict = {"L": level}
        for est in ("saa", "rt-mlmc"):
            gen = torch.Generator().manual_seed(1000 + level)
            # one parameter copy per replicate (passed as a target) gives per-point gradients
            w_rep = w0.expand(n_rep, d).clone().requires_grad_(True)
            x = x0.expand(n_rep, d).contiguous()
            res = entropic_risk(
                lambda z, wi: (z * wi).sum(dim=1),
                x,
                w_rep,
                radius=rho,
                eta=eta,
                estimator=est,
                max_level=level,
                generator=gen,
                control_variate=False,
            )
            v = res.per_point.detach()
            (grads,) = torch.autograd.grad(res.per_point.sum(), w_rep)
            gvar = float(grads.var(dim=0).sum())
            row[f"{est}_bias"] = float(v.mean()) - exact
            row[f"{est}_se"] = float(v.std()) / math.sqrt(n_rep)
            row[f"{est}_var"] = float(v.var())
            row[f"{est}_grad_var"] = gvar
            row[f"{est}_evals"] = res.n_evaluations / n_rep
        rows.append(row)
    return rows


def timing_table(max_l: int, reps: int) -> list[dict]:
    torch.manual_seed(0)
    rows = []
    batch = 64
    # linear closed-form loss, and a 2-layer MLP on 64 inputs (an 8x8 image)
    w = torch.randn(4, requires_grad=True)
    xl = torch.randn(batch, 4)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ELU(), torch.nn.Linear(256, 10))
    xm, ym = torch.rand(batch, 64), torch.randint(0, 10, (batch,))

    def mlp_loss(z, y):
        return torch.nn.functional.cross_entropy(mlp(z), y, reduction="none")

    for level in range(max_l + 1):
        row = {"L": level, "rt_expected_evals": expected_evaluations(level)}
        for est in ("saa", "rt-mlmc"):
            kw = dict(radius=0.1, eta=0.1, estimator=est, max_level=level, control_variate=False)
            row[f"{est}_lin_s"], _ = time_per_gradient(lambda z: z @ w, [w], xl, reps=reps, **kw)
            row[f"{est}_mlp_s"], row[f"{est}_evals"] = time_per_gradient(
                mlp_loss, list(mlp.parameters()), xm, ym, reps=reps, **kw
            )
        rows.append(row)
    return rows


def level_sampling_table(n_batches: int, batch: int, levels: list[int]) -> list[dict]:
    """Independent vs systematic levels on the closed form: variance of the batch mean, draws per
    batch and time per call, with and without the control variate (same marginal law per point)."""
    d, rho, eta = 4, 0.5, 0.4
    w0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=DT)
    x0 = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=DT)

    def evaluate(z: torch.Tensor, _index: torch.Tensor) -> torch.Tensor:
        return z @ w0

    rows = []
    for offset, level in ((o, lv) for o in (0.0, 50.0) for lv in levels):
        x = (x0 + offset).expand(batch, d).contiguous()
        exact = closed_form(w0, x0 + offset, rho, eta)
        for cv in (False, True):
            for sampling in ("independent", "systematic"):
                est = FunctionalEstimator(
                    entropic_max(eta),
                    radius=rho,
                    max_level=level,
                    control_variate=cv,
                    level_sampling=sampling,
                )
                gen = torch.Generator().manual_seed(2000 + level)
                means, draws, times = [], [], []
                for _ in range(n_batches):
                    t = time.perf_counter()
                    res = est(evaluate, x, generator=gen)
                    times.append(time.perf_counter() - t)
                    means.append(float(res.per_point.mean()))
                    draws.append(res.n_evaluations - (batch if cv else 0))
                m = np.asarray(means)
                rows.append(
                    {
                        "offset": offset,
                        "L": level,
                        "control_variate": cv,
                        "sampling": sampling,
                        "bias": float(m.mean()) - exact,
                        "se": float(m.std(ddof=1)) / math.sqrt(len(m)),
                        "var_batch_mean": float(m.var(ddof=1)),
                        "draws_mean": float(np.mean(draws)),
                        "draws_sd": float(np.std(draws, ddof=1)),
                        "time_us": 1e6 * float(np.median(times)),
                    }
                )
    return rows


# ------------------------------------------------------------------------ convex problem
def logistic_problem(n: int = 100, d: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    theta_true = torch.randn(d, generator=g, dtype=DT)
    x = torch.randn(n, d, generator=g, dtype=DT)
    y = torch.where(x @ theta_true + 0.5 * torch.randn(n, generator=g, dtype=DT) > 0, 1.0, -1.0).to(
        DT
    )
    return x, y


def logistic_loss(theta):
    def loss(z, y):
        return torch.nn.functional.softplus(-y * (z @ theta))

    return loss


def reference_objective(x, y, rho, eta, m: int, seed: int = 123):
    """F(θ) on a fixed sample of m uniform draws per point (common random numbers), its minimum."""
    g = torch.Generator().manual_seed(seed)
    u = torch.empty(x.shape[0], m, x.shape[1], dtype=DT).uniform_(-1, 1, generator=g)
    z = x.unsqueeze(1) + rho * u

    def objective(theta):
        losses = torch.nn.functional.softplus(-y.unsqueeze(1) * (z @ theta))
        return (eta * (torch.logsumexp(losses / eta, dim=1) - math.log(m))).mean()

    theta = torch.zeros(x.shape[1], dtype=DT, requires_grad=True)
    opt = torch.optim.LBFGS(
        [theta],
        lr=1,
        max_iter=200,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        val = objective(theta)
        val.backward()
        return val

    opt.step(closure)
    with torch.no_grad():
        return objective, float(objective(theta)), theta.detach()


def run_sgd(
    x,
    y,
    objective,
    f_star,
    *,
    estimator,
    level,
    rho,
    eta,
    batch,
    lr0,
    max_evals,
    seed,
    check_every=25,
    target=1e-3,
    control_variate=False,
):
    """Averaged SGD (step lr0/sqrt(t)); returns (evals, gaps) and the evals at the target gap."""
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(x.shape[1], dtype=DT, requires_grad=True)
    avg = torch.zeros_like(theta)
    evals, t = 0, 0
    curve_e, curve_g, hit = [], [], None
    while evals < max_evals:
        t += 1
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        res = entropic_risk(
            logistic_loss(theta),
            x[idx],
            y[idx],
            radius=rho,
            eta=eta,
            estimator=estimator,
            max_level=level,
            generator=gen,
            control_variate=control_variate,
        )
        (grad,) = torch.autograd.grad(res.value, theta)
        with torch.no_grad():
            theta -= lr0 / math.sqrt(t) * grad
            avg += (theta - avg) / t
        evals += res.n_evaluations
        if t % check_every == 0:
            with torch.no_grad():
                gap = float(objective(avg)) - f_star
            curve_e.append(evals)
            curve_g.append(gap)
            if hit is None and gap <= target:
                hit = evals
                break
    return curve_e, curve_g, hit


def convex_experiment(max_evals: int, seeds: int, rho: float, eta: float, saa_levels, rt_levels):
    x, y = logistic_problem()
    objective, f_star, _ = reference_objective(x, y, rho, eta, m=4096)
    configs = [("saa", lv, False) for lv in saa_levels]
    configs += [("rt-mlmc", lv, False) for lv in rt_levels]
    configs += [("rt-mlmc", lv, True) for lv in rt_levels]
    out = []
    for est, level, cv in configs:
        hits, curves = [], []
        for s in range(seeds):
            e, g, hit = run_sgd(
                x,
                y,
                objective,
                f_star,
                estimator=est,
                level=level,
                rho=rho,
                eta=eta,
                batch=8,
                lr0=1.0,
                max_evals=max_evals,
                seed=s,
                control_variate=cv,
            )
            hits.append(hit)
            curves.append((e, g))
        name = "SG (SAA)" if est == "saa" else ("RT-MLMC + control variate" if cv else "RT-MLMC")
        out.append({"estimator": est, "name": name, "L": level, "hits": hits, "curves": curves})
    return out, f_star


def _sampling_lines(rows: list[dict], args: argparse.Namespace) -> list[str]:
    lines = [
        "",
        "## 4. Level sampling: independent vs systematic (RT-MLMC, closed form of section 1)",
        "",
        f"{args.sampling_batches} batches of 64 points; every point's level has the law p_ℓ under "
        "both schemes (systematic: positions (k+u)/64 through the inverse CDF, dealt to the points "
        "in a random order). Bias of the batch mean against the closed form F (it is F^L's bias, "
        "the same for both), variance of the batch mean, its ratio systematic/independent, draws "
        "per batch (mean ± sd, centres excluded) and median time per call (whole estimator, "
        "linear loss: bookkeeping only). Offset: every coordinate of x shifted by it (values large "
        "against their spread over the ball, as Q-values are).",
        "",
        "| offset | L | control variate | levels | bias of batch mean | var of batch mean | systematic / independent | draws per batch | µs per call |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref = next(
            q
            for q in rows
            if q["L"] == r["L"]
            and q["offset"] == r["offset"]
            and q["control_variate"] == r["control_variate"]
            and q["sampling"] == "independent"
        )
        lines.append(
            f"| {r['offset']:g} | {r['L']} | {'on' if r['control_variate'] else 'off'} | "
            f"{r['sampling']} | "
            f"{r['bias']:+.4f} ± {r['se']:.4f} | {r['var_batch_mean']:.4g} | "
            f"{r['var_batch_mean'] / ref['var_batch_mean']:.3g} | "
            f"{r['draws_mean']:.1f} ± {r['draws_sd']:.1f} | {r['time_us']:.0f} |"
        )
    return lines


def _replicate_lines(wall: float, args: argparse.Namespace) -> list[str]:
    return [
        "",
        *replicate_lines(
            "experiments/bench_estimators.py", wall_s=wall, torch_threads=args.threads
        ),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("experiments/results/estimators"))
    p.add_argument("--max-level", type=int, default=10)
    p.add_argument("--replicates", type=int, default=20_000)
    p.add_argument("--timing-reps", type=int, default=15)
    p.add_argument("--convex-seeds", type=int, default=3)
    p.add_argument("--max-evals", type=int, default=20_000_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rho", type=float, default=0.5, help="convex problem: radius")
    p.add_argument("--eta", type=float, default=0.05, help="convex problem: eta")
    p.add_argument("--saa-levels", type=int, nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--rt-levels", type=int, nargs="+", default=[6, 8, 10])
    p.add_argument("--sampling-batches", type=int, default=4000, help="section 4: batches")
    p.add_argument("--sampling-levels", type=int, nargs="+", default=[4, 8])
    p.add_argument(
        "--only-level-sampling",
        action="store_true",
        help="run section 4 alone and write OUT/level_sampling.md and .csv",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.only_level_sampling:
        rows = level_sampling_table(args.sampling_batches, 64, args.sampling_levels)
        lines = [
            "# RT-MLMC level sampling: independent vs systematic",
            "",
            *_sampling_lines(rows, args),
        ]
        lines += _replicate_lines(time.perf_counter() - start, args)
        text = "\n".join(lines) + "\n"
        atomic_write_text(args.out / "level_sampling.md", text, force=True)
        keys = list(rows[0])
        csv = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]
        atomic_write_text(args.out / "level_sampling.csv", "\n".join(csv) + "\n", force=True)
        print(text)
        return 0

    bias_rows = closed_form_table(args.max_level, args.replicates)
    time_rows = timing_table(args.max_level, args.timing_reps)
    convex, f_star = convex_experiment(
        args.max_evals, args.convex_seeds, args.rho, args.eta, args.saa_levels, args.rt_levels
    )
    sampling_rows = level_sampling_table(args.sampling_batches, 64, args.sampling_levels)
    wall = time.perf_counter() - start

    lines = ["# Estimator benchmark: SAA vs RT-MLMC", ""]
    lines += [
        "## 1. Closed form (linear loss, ℓ∞ ball, d = 4, ρ = 0.5, η = 0.4)",
        "",
        f"{args.replicates} independent per-point estimates per row. Bias against the closed form "
        "`wᵀx + η Σ log(sinh(ρw_i/η)/(ρw_i/η))` (± its standard error); variance of the per-point "
        "value and of the per-point gradient (trace); draws per point.",
        "",
        "| L | SAA bias | RT-MLMC bias | SAA var | RT-MLMC var | SAA grad var | RT-MLMC grad var | SAA draws | RT-MLMC draws |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bias_rows:
        lines.append(
            f"| {r['L']} | {r['saa_bias']:+.4f} ± {r['saa_se']:.4f} | {r['rt-mlmc_bias']:+.4f} ± {r['rt-mlmc_se']:.4f} | "
            f"{r['saa_var']:.3g} | {r['rt-mlmc_var']:.3g} | {r['saa_grad_var']:.3g} | {r['rt-mlmc_grad_var']:.3g} | "
            f"{r['saa_evals']:.0f} | {r['rt-mlmc_evals']:.2f} |"
        )
    lines += [
        "",
        "## 2. Wall time per gradient (batch of 64 points, value + backward, median)",
        "",
        "Linear loss (d = 4) and cross-entropy of an MLP 64 → 256 → 10 (an 8×8 image). "
        "Expected RT-MLMC draws per point: (L+1)/(2−2^-L).",
        "",
        "| L | SAA lin (ms) | RT lin (ms) | RT/SAA lin | SAA MLP (ms) | RT MLP (ms) | RT/SAA MLP | SAA draws | RT draws (measured / expected) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in time_rows:
        lines.append(
            f"| {r['L']} | {1e3 * r['saa_lin_s']:.2f} | {1e3 * r['rt-mlmc_lin_s']:.2f} | {r['rt-mlmc_lin_s'] / r['saa_lin_s']:.1%} | "
            f"{1e3 * r['saa_mlp_s']:.2f} | {1e3 * r['rt-mlmc_mlp_s']:.2f} | {r['rt-mlmc_mlp_s'] / r['saa_mlp_s']:.1%} | "
            f"{r['saa_evals']:.0f} | {r['rt-mlmc_evals']:.2f} / {r['rt_expected_evals']:.2f} |"
        )
    lines += [
        "",
        f"## 3. Entropic logistic regression (n = 100, d = 5, ρ = {args.rho}, η = {args.eta}): evaluations to gap ≤ 1e-3",
        "",
        f"F* = {f_star:.6f} (L-BFGS on a fixed sample of 4096 draws per point, which also defines the "
        "gap). Averaged SGD, step 1/√t, 8 points per step; loss evaluations until the averaged "
        f"iterate's gap is ≤ 1e-3 (checked every 25 steps), per seed; budget {args.max_evals:.0e}.",
        "",
        "| estimator | L | evaluations to gap ≤ 1e-3 (per seed) | median |",
        "|---|---:|---|---:|",
    ]
    best = {}
    for c in convex:
        hits = c["hits"]
        ok = [h for h in hits if h is not None]
        med = float(np.median(ok)) if len(ok) == len(hits) else float("inf")
        best.setdefault(c["estimator"], []).append(med)
        cells = ", ".join(f"{h:.3g}" if h is not None else "not reached" for h in hits)
        lines.append(f"| {c['name']} | {c['L']} | {cells} | {med:.3g} |")
    lines += _sampling_lines(sampling_rows, args)
    sg, rt = min(best["saa"]), min(best["rt-mlmc"])
    l8 = next(r for r in time_rows if r["L"] == 8) if args.max_level >= 8 else None
    lines += ["", "## Goals", ""]
    if l8 is not None:
        lines.append(
            f"- At L = 8, RT-MLMC's wall time per gradient is {l8['rt-mlmc_mlp_s'] / l8['saa_mlp_s']:.1%} of SAA's "
            f"with the MLP loss and {l8['rt-mlmc_lin_s'] / l8['saa_lin_s']:.1%} with the linear loss (goal ≤ 5%)."
        )
    lines.append(
        f"- Best SG needs {sg:.3g} evaluations, best RT-MLMC {rt:.3g}: {sg / rt:.1f}× fewer (goal ≥ 10×)."
    )
    lines += _replicate_lines(wall, args)
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "estimators.md", text, force=True)
    keys = sorted({k for r in bias_rows for k in r})
    csv = [",".join(keys)] + [",".join(f"{r[k]:.6g}" for k in keys) for r in bias_rows]
    keys2 = sorted({k for r in time_rows for k in r})
    csv += ["", ",".join(keys2)] + [",".join(f"{r[k]:.6g}" for k in keys2) for r in time_rows]
    keys3 = list(sampling_rows[0])
    csv += ["", ",".join(keys3)] + [",".join(str(r[k]) for k in keys3) for r in sampling_rows]
    atomic_write_text(args.out / "estimators.csv", "\n".join(csv) + "\n", force=True)
    _plot(bias_rows, time_rows, convex, args.out / "estimators.png")
    print(text)
    return 0


def _plot(bias_rows, time_rows, convex, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    levels = [r["L"] for r in bias_rows]
    for est, style in (("saa", "o-"), ("rt-mlmc", "s--")):
        axes[0].errorbar(
            levels,
            [abs(r[f"{est}_bias"]) for r in bias_rows],
            yerr=[2 * r[f"{est}_se"] for r in bias_rows],
            fmt=style,
            label=f"|bias| {est}",
        )
    axes[0].plot(
        levels, [abs(bias_rows[0]["saa_bias"]) * 2.0**-lv for lv in levels], ":", label="∝ 2^-L"
    )
    axes[0].set_yscale("log")
    axes[0].set_xlabel("L")
    axes[0].set_title("bias vs closed form")
    axes[0].legend(fontsize=8)
    for est, style in (("saa", "o-"), ("rt-mlmc", "s--")):
        axes[1].plot(
            [r["L"] for r in time_rows],
            [1e3 * r[f"{est}_mlp_s"] for r in time_rows],
            style,
            label=f"{est} (MLP)",
        )
        axes[1].plot(
            [r["L"] for r in time_rows],
            [1e3 * r[f"{est}_lin_s"] for r in time_rows],
            style,
            alpha=0.5,
            label=f"{est} (linear)",
        )
    axes[1].set_yscale("log")
    axes[1].set_xlabel("L")
    axes[1].set_ylabel("ms per gradient (batch 64)")
    axes[1].set_title("wall time per gradient")
    axes[1].legend(fontsize=8)
    for c in convex:
        e, g = c["curves"][0]
        axes[2].plot(
            e,
            np.maximum(g, 1e-6),
            "-" if c["estimator"] == "saa" else (":" if "control" in c["name"] else "--"),
            label=f"{c['name']} L={c['L']}",
        )
    axes[2].axhline(1e-3, color="k", lw=0.8)
    axes[2].set_xscale("log")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("loss evaluations")
    axes[2].set_ylabel("objective gap (averaged iterate)")
    axes[2].set_title("entropic logistic regression (seed 0)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, force=True, close=True)


if __name__ == "__main__":
    sys.exit(main())
