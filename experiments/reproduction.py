"""What the reproduction scripts share: run variants over seeds on the sweep machinery, then
aggregate and write the tables (mean ± std over seeds, and whether two variants can be told apart).

Used by ``reproduce_cartpole.py`` and ``reproduce_continuous.py`` (run them, not this file).
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robust_rl import provenance
from robust_rl.evaluation import (
    EvaluationResults,
    ModelSummary,
    aggregate_over_seeds,
    compare_means,
    save_results,
)
from robust_rl.io import atomic_write_text
from robust_rl.sweep import (
    SweepSpec,
    TrialResult,
    expand_sweep,
    load_sweep,
    run_sweep,
    summarize,
    write_summary,
)
from robust_rl.sweep.trials import policy_file, read_result

#: per-seed numbers that can be compared: name -> (label, value of one seed's summary)
METRICS: dict[str, tuple[str, Callable[[ModelSummary], float | None]]] = {
    "nominal": ("nominal MDP", lambda s: s.nominal),
    "test_mean": (
        "mean over the test MDPs",
        lambda s: float(np.mean(list(s.test.values()))) if s.test else None,
    ),
    "grid_average": ("grid average", lambda s: s.grid_average),
    "grid_worst": ("grid worst case", lambda s: s.grid_worst),
}


def best_point(sweep: Path, out: Path, variants: Sequence[str]) -> Path | None:
    """``out/best/<variant>.yaml`` of the best point (by the library's sweep summary: the
    validation mean) over ``variants`` of the grid sweep file ``sweep`` run into ``out``; None
    while none of their trials has finished."""
    spec = load_sweep(sweep)
    trials = [t for t in expand_sweep(spec) if t.variant in variants]
    results = [r for t in trials if (r := read_result(t, out)) is not None]
    if not results:
        return None
    _, groups = summarize(results)
    return out / "best" / f"{groups[0]['variant']}.yaml"


def run_variants(
    spec: SweepSpec,
    variants: Sequence[str],
    out: Path,
    *,
    backend: str,
    max_parallel: int,
    address: str | None,
    title: str,
) -> list[TrialResult]:
    """Run (or read back) every trial of ``variants``, and read back the finished trials of the
    other variants (they are reported, not trained); write ``out/runs/summary.*`` and copy each
    finished model to ``out/<variant>_seed<k>.zip``."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    every = expand_sweep(spec)
    others = [read_result(t, runs) for t in every if t.variant not in variants]
    todo = [t for t in every if t.variant in variants]
    results = (
        run_sweep(
            todo,
            runs,
            backend=backend,
            max_parallel=max_parallel,
            address=address,
            on_result=lambda r: print(f"[{r.status}] {r.trial.name} {r.error or ''}", flush=True),
        )
        if todo
        else []
    )
    results = [r for r in others if r is not None and r.ok] + list(results)
    order = {t.name: i for i, t in enumerate(every)}
    results.sort(key=lambda r: order[r.trial.name])
    write_summary(results, runs, spec=spec, title=f"{title} (per trial)")
    for r in results:  # the evaluated policy: the best checkpoint's under select: best
        name = policy_file(r.trial.select)
        if r.ok and (runs / r.trial.name / name).is_file():
            shutil.copyfile(
                runs / r.trial.name / name, out / f"{r.trial.variant}_seed{r.trial.seed}.zip"
            )
    return results


def aggregate(done: Sequence[TrialResult], out: Path) -> EvaluationResults:
    """Mean ± std over seeds per variant; writes ``evaluation_over_seeds.{json,md}`` (compact
    JSON) and its figures (``evaluation_over_seeds.png``, the grid; with attack rows too,
    ``evaluation_over_seeds_grid.png`` and ``evaluation_over_seeds_attack.png``)."""
    merged = done[0].evaluation.merge(*(r.evaluation for r in done[1:]), name="evaluation")
    variant_of = {r.trial.name: r.trial.variant for r in done}
    over = aggregate_over_seeds(merged, group_of=variant_of.__getitem__)
    save_results(over, out, force=True, compact=True)
    return over


def per_seed(done: Sequence[TrialResult], variant: str, metric: str) -> list[float]:
    """One number per finished seed of ``variant``: a :data:`METRICS` key or ``attack:NAME@EPS``."""
    values = []
    for r in sorted(done, key=lambda r: r.trial.seed):
        if r.trial.variant != variant:
            continue
        s = r.summary()
        if metric.startswith("attack:"):  # ε as the key spells it (``f"{eps:g}"``)
            name, eps = metric[7:].rsplit("@", 1)
            curve = s.attacks.get(name, {})
            value = next((v for e, v in curve.items() if f"{e:g}" == eps), None)
        else:
            value = METRICS[metric][1](s)
        if value is not None:
            values.append(float(value))
    return values


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def results_table(
    over: EvaluationResults,
    done: Sequence[TrialResult],
    variants: Sequence[str],
    labels: Mapping[str, str],
    extra_columns: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Markdown table: a row per test MDP, validation mean, grid rows and attack rows; a column
    per variant with mean ± std over seeds. ``extra_columns`` adds columns ``{header: cells}``
    whose cells follow the test-MDP rows (then "–")."""
    extra = dict(extra_columns or {})
    present = [v for v in variants if v in over.models]
    summaries = {v: over.summary(v) for v in present}
    first = next(iter(summaries.values()))
    mdps = list(first.test)
    head = ["MDP", *(labels[v] for v in variants), *extra]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]

    def add(name: str, cells: list[str], k: int | None = None) -> None:
        tail = [col[k] if k is not None and k < len(col) else "–" for col in extra.values()]
        lines.append("| " + " | ".join([name, *cells, *tail]) + " |")

    def cell(v: str, mdp: str) -> str:
        if v not in summaries:
            return "n/a"
        row = over.row(v, mdp, kind="suite")
        return f"{row.mean:.1f} ± {row.std:.1f}"

    for k, m in enumerate(mdps):
        add(m, [cell(v, m) for v in variants], k)
    add(
        "validation MDPs (mean; tuning split)",
        [
            _mean_std(
                [
                    np.mean(list(r.summary().validation.values()))
                    for r in done
                    if r.trial.variant == v
                ]
            )
            for v in variants
        ],
    )
    if first.grid_points:
        add("grid average", [_mean_std(per_seed(done, v, "grid_average")) for v in variants])
        add(
            "grid worst case (per seed)",
            [_mean_std(per_seed(done, v, "grid_worst")) for v in variants],
        )
        add(
            "grid worst point of the seed mean",
            [
                "n/a"
                if v not in summaries or summaries[v].grid_worst is None
                else f"{summaries[v].grid_worst:.1f}"
                for v in variants
            ],
        )
    for attack, curve in first.attacks.items():
        for eps in curve:
            key = f"attack:{attack}@{eps:g}"
            add(
                f"{attack} attack, ε = {eps:g}",
                [_mean_std(per_seed(done, v, key)) for v in variants],
            )
    return lines


def comparison_lines(
    pairs: Sequence[tuple[str, str]],
    keys: Sequence[str],
    values: Callable[[str, str], list[float]],
    key_header: str = "metric",
    name: Callable[[str], str] = str,
) -> list[str]:
    """Markdown table: for each pair ``(a, b)`` and key, the difference of the means over seeds
    ``a − b`` of ``values(variant, key)``, its 95% bootstrap interval and the two-sided
    permutation p-value (:func:`robust_rl.evaluation.compare_means`); fewer than two seeds on
    either side gives "n/a"."""
    lines = [
        f"| comparison | {key_header} | difference of means | 95% interval | p-value | seeds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for a, b in pairs:
        for key in keys:
            xa, xb = values(a, key), values(b, key)
            head = f"| {name(a)} − {name(b)} | {key} |"
            if len(xa) < 2 or len(xb) < 2:
                lines.append(f"{head} n/a | | | {len(xa)} vs {len(xb)} |")
                continue
            c = compare_means(xa, xb)
            lines.append(
                f"{head} {c.difference:+.1f} | [{c.ci_low:+.1f}, {c.ci_high:+.1f}] | "
                f"{c.p_value:.3f}{'' if c.exact else ' (MC)'} | {c.n_a} vs {c.n_b} |"
            )
    return lines


def comparison_table(
    done: Sequence[TrialResult],
    pairs: Sequence[tuple[str, str]],
    labels: Mapping[str, str],
    metrics: Sequence[str] = ("test_mean", "grid_average", "grid_worst"),
) -> list[str]:
    """:func:`comparison_lines` over the trials' per-seed :data:`METRICS` (or attack keys)."""
    label = {m: METRICS[m][0] if m in METRICS else m for m in metrics}
    metric_of = {v: k for k, v in label.items()}
    return comparison_lines(
        pairs,
        [label[m] for m in metrics],
        lambda v, shown: per_seed(done, v, metric_of[shown]),
        name=labels.__getitem__,
    )


def per_seed_csv(done: Sequence[TrialResult], variants: Sequence[str]) -> str:
    """One row per (variant, seed) and metric: the per-seed numbers behind the tables."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["variant", "seed", "metric", "value"])
    for r in sorted(done, key=lambda r: (variants.index(r.trial.variant), r.trial.seed)):
        s = r.summary()
        cells: list[tuple[str, Any]] = [(f"test:{m}", v) for m, v in s.test.items()]
        cells += [(f"validation:{m}", v) for m, v in s.validation.items()]
        cells += [(k, fn(s)) for k, (_, fn) in METRICS.items()]
        cells += [(f"attack:{a}@{e:g}", v) for a, c in s.attacks.items() for e, v in c.items()]
        for metric, value in cells:
            if value is not None:
                writer.writerow([r.trial.variant, r.trial.seed, metric, f"{float(value):.3f}"])
    return buf.getvalue()


def wide_csv(over: EvaluationResults, variants: Sequence[str]) -> str:
    """``mdp, <variant>_mean, <variant>_std, ...``: the test-MDP table as CSV."""
    present = [v for v in variants if v in over.models]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["mdp"] + [f"{v}_{k}" for v in variants for k in ("mean", "std")])
    mdps = list(over.summary(present[0]).test) if present else []
    for m in mdps:
        cells: list[str] = []
        for v in variants:
            if v in present:
                row = over.row(v, m, kind="suite")
                cells += [f"{row.mean:.3f}", f"{row.std:.3f}"]
            else:
                cells += ["", ""]
        writer.writerow([m, *cells])
    return buf.getvalue()


def read_wide_csv(path: Path) -> dict[str, dict[str, str]]:
    """A :func:`wide_csv` file as ``{variant: {mdp: "mean ± std"}}``."""
    table: dict[str, dict[str, str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, mean in row.items():
                if key.endswith("_mean") and mean:
                    v = key[: -len("_mean")]
                    std = float(row[f"{v}_std"])
                    table.setdefault(v, {})[row["mdp"]] = f"{float(mean):.1f} ± {std:.1f}"
    return table


def write_report(
    out: Path,
    lines: list[str],
    over: EvaluationResults,
    done: Sequence[TrialResult],
    failed: Sequence[TrialResult],
    variants: Sequence[str],
    script: str,
    wall_s: float,
) -> int:
    """Finish the Markdown (failed trials, how to replicate), write ``results.md``,
    ``results.csv`` and ``per_seed.csv``, print the Markdown; the exit code (1 if a trial
    failed)."""
    if failed:
        lines = [*lines, "", f"{len(failed)} trials failed:"]
        lines += [f"- {r.trial.name}: {(r.error or '').splitlines()[0]}" for r in failed]
    lines = [*lines, "", *replicate_lines(script, wall_s), *trial_time_lines(done, variants)]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n", force=True)
    atomic_write_text(out / "results.csv", wide_csv(over, variants), force=True)
    atomic_write_text(out / "per_seed.csv", per_seed_csv(done, variants), force=True)
    print("\n".join(lines))
    return 1 if failed else 0


def trial_time_lines(done: Sequence[TrialResult], variants: Sequence[str]) -> list[str]:
    """The compute the finished trials took: per variant, the median and total trial time
    (training and evaluation, one process each, of the run that finished the trial)."""
    parts = []
    for v in variants:
        times = [r.wall_time_s for r in done if r.trial.variant == v]
        if times:
            parts.append(
                f"{v} {np.median(times) / 60:.1f} min ({len(times)} trial{'s' * (len(times) > 1)}, "
                f"{sum(times) / 60:.0f} min in all)"
            )
    if not parts:
        return []
    total = sum(r.wall_time_s for r in done) / 60
    return [
        "",
        f"Trial time (training and evaluation, one process and one torch thread each; median per "
        f"trial): {'; '.join(parts)}; {total:.0f} process-minutes in all. Measured beside "
        "other jobs on a shared machine: the times include their contention.",
    ]


def replicate_lines(script: str, wall_s: float) -> list[str]:
    """The command that made the file, the machine and the wall time."""
    note = "Trials finished in an earlier invocation are reused, not retrained."
    if "--report-only" in sys.argv:
        note += (
            " `--report-only` writes the tables from the finished trials; the same command "
            "without it trains the missing ones, resuming interrupted trials."
        )
    return provenance.replicate_lines(f"experiments/{script}", wall_s=wall_s, note=note)
