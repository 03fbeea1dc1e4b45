"""A sweep's ranked summary: ``trials.csv``, ``summary.csv``, ``summary.md`` and ``summary.png``.

Numbers come from each trial's :class:`~robust_rl.evaluation.ModelSummary` (no label is parsed).
Points (groups) are ranked by the mean return on the suite's **validation** MDPs, mean over
seeds; the test MDPs, the grid (average and worst case) and the attacks are reported beside it.
The Markdown states what the ranking used, what the table reports and the tuning budget of each
variant, and picks the best point of each variant: the comparison a results table may quote.
The best point of each variant is also written as ``best/<variant>.yaml``, a hyperparameter file
for ``robust-rl train --config``. CSV files are written with the :mod:`csv` module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robust_rl.io import atomic_write_text, csv_text, save_figure
from robust_rl.sweep.spec import SweepSpec, Trial, _fmt
from robust_rl.sweep.trials import TrialResult

__all__ = [
    "BEST_DIR",
    "GroupSummary",
    "best_config_text",
    "budget_text",
    "rows_to_csv",
    "summarize",
    "write_summary",
]

#: sub-folder of a sweep's output with the best point of each variant, ``<variant>.yaml``
BEST_DIR = "best"

GroupSummary = dict[str, Any]


def _trial_row(r: TrialResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trial": r.trial.name,
        "group": r.trial.group,
        "variant": r.trial.variant,
        # the record keeps the trial's outcome: one read back from an earlier run is "done"
        "status": "done" if r.status == "skipped" else r.status,
        "seed": r.trial.seed,
        **{f"param:{k}": _fmt(v) for k, v in r.trial.params.items()},
    }
    s = r.summary()
    if s is not None:
        row["validation_mean"] = r.tune_score
        row.update({f"test:{k}": v for k, v in s.test.items()})
        row["test_mean"] = float(np.mean(list(s.test.values()))) if s.test else None
        row["grid_average"] = s.grid_average
        row["grid_worst"] = s.grid_worst
        for attack, curve in s.attacks.items():
            row.update({f"attack:{attack}@{eps:g}": v for eps, v in curve.items()})
    if r.intermediate:
        row["intermediate"] = " ".join(f"{v:.1f}" for _, v in sorted(r.intermediate.items()))
    row["wall_time_s"] = r.wall_time_s
    if r.error:
        row["error"] = r.error.splitlines()[0]
    return row


_METRICS = ("validation_mean", "test_mean", "grid_average", "grid_worst")


def summarize(
    results: Iterable[TrialResult],
) -> tuple[list[dict[str, Any]], list[GroupSummary]]:
    """Per-trial rows and per-group summaries (mean and std over seeds), ranked by the
    validation mean (best first).

    :return: ``(rows, groups)``; a group holds ``group``, ``variant``, ``n_seeds``, the
        ``param:*`` values and, for every numeric column ``c`` of its trials, ``c`` (mean over
        the seeds that finished) and ``c_std``.
    """
    rows = [_trial_row(r) for r in results]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "done":
            by_group.setdefault(row["group"], []).append(row)
    groups: list[GroupSummary] = []
    for group, members in by_group.items():
        agg: GroupSummary = {
            "group": group,
            "variant": members[0]["variant"],
            "n_seeds": len(members),
        }
        agg.update({k: v for k, v in members[0].items() if k.startswith("param:")})
        keys = [k for k in members[0] if k in _METRICS or k.startswith(("test:", "attack:"))]
        for key in keys:
            vals = [m.get(key) for m in members]
            if any(v is None for v in vals):
                agg[key] = agg[key + "_std"] = None
                continue
            arr = np.asarray(vals, dtype=float)
            agg[key], agg[key + "_std"] = float(arr.mean()), float(arr.std())
        groups.append(agg)
    groups.sort(key=lambda g: -(v if (v := g.get("validation_mean")) is not None else -np.inf))
    return rows, groups


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as CSV text (:mod:`csv` quoting; columns in order of first appearance; floats
    with 6 significant digits; missing cells empty)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    def cell(v: Any) -> Any:
        return "" if v is None else f"{v:.6g}" if isinstance(v, float) else v

    return csv_text([{k: cell(row.get(k)) for k in keys} for row in rows], keys)


def budget_text(spec: SweepSpec) -> str:
    """What the ranking used, what is reported, and the tuning budget of each variant."""
    ev, s = spec.evaluation, spec.search
    budget = ", ".join(f"{k} {n}" for k, n in spec.budget().items())
    if s.method == "optuna":
        how = (
            f"Optuna (TPE sampler, seed {s.sampler_seed}; "
            + (
                f"median pruner after {s.n_startup_trials} points on {s.checkpoints} "
                f"intermediate validation evaluations of {s.checkpoint_episodes} episodes per run"
                if s.pruner != "none"
                else "no pruner"
            )
            + ")"
        )
        unit = "points"
    else:
        how, unit = "grid", "points"
    report = f"the {ev.report_split} split ({ev.episodes} episodes per MDP from seed {ev.seed})"
    if ev.grid_points:
        report += (
            f", a {ev.grid_points}-point-per-axis grid ({ev.grid_episodes} episodes per point from "
            f"seed {ev.seed})"
        )
    if ev.attacks:
        report += f", {len(ev.attacks)} observation attack(s)"
    return (
        f"Suite `{ev.suite}`. Ranked on the {ev.tune_split} split ({ev.tune_episodes} episodes "
        f"per MDP from seed {ev.tune_seed}); reported on {report}. Training seeds "
        f"{list(spec.seeds)}. Search: {how}. Tuning budget ({unit} per variant, each over "
        f"every seed): {budget}."
    )


def _cell(g: Mapping[str, Any], key: str) -> str:
    v = g.get(key)
    if v is None:
        return "–"
    return f"{v:.1f} ± {g[key + '_std']:.1f}"


def _table(groups: Sequence[GroupSummary], mdps: Sequence[str], first: str) -> list[str]:
    head = [first, "group", "params", "seeds", "validation", *mdps]
    head += ["test mean", "grid avg", "grid worst"]
    lines = ["| " + " | ".join(head) + " |", "|---:|---|---|---:|" + "---:|" * (len(head) - 4)]
    for i, g in enumerate(groups, 1):
        cells = [_cell(g, "validation_mean")] + [_cell(g, f"test:{m}") for m in mdps]
        cells += [_cell(g, k) for k in ("test_mean", "grid_average", "grid_worst")]
        lead = str(i) if first == "rank" else g["variant"]
        params = ", ".join(f"{k[6:]}={v}" for k, v in g.items() if k.startswith("param:"))
        row = [lead, g["group"], params or "–", str(g["n_seeds"]), *cells]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def tie_lines(groups: Sequence[GroupSummary], best: Mapping[str, GroupSummary]) -> list[str]:
    """A line per variant whose best validation return is shared by other points: the ranking
    cannot tell them apart, and the sort keeps the one that comes first (trial order)."""
    lines = []
    for variant, g in best.items():
        score = g.get("validation_mean")
        if score is None:
            continue
        tied = [
            h["group"]
            for h in groups
            if h["variant"] == variant and h is not g and h.get("validation_mean") == score
        ]
        if tied:
            lines.append(
                f"- {variant}: {len(tied) + 1} points tie at {score:.1f} on validation "
                f"({g['group']}, {', '.join(tied)}); the ranking cannot separate them and keeps "
                f"the first in trial order, {g['group']}."
            )
    return ["", "Validation ties:", "", *lines] if lines else []


def best_config_text(trial: Trial, group: Mapping[str, Any], path: Path) -> str:
    """The hyperparameter file of a variant's best point: its full config (the seed excluded)
    under a comment that says where it comes from and how to train with it."""
    score = f"{group['validation_mean']:.1f} ± {group['validation_mean_std']:.1f}"
    head = [
        f"# Best point of variant {trial.variant!r} ({trial.group}) by the mean validation return "
        f"over {group['n_seeds']} seed(s): {score}.",
        f"# Searched: {', '.join(sorted(trial.params)) or 'nothing'}.",
        f"# Train: robust-rl train --algo {trial.algo} --env {trial.env} --config {path} "
        "--seed SEED --out OUT",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(dict(trial.config), sort_keys=False)


def write_summary(
    results: Sequence[TrialResult],
    out_dir: str | os.PathLike[str],
    *,
    spec: SweepSpec | None = None,
    title: str = "sweep",
    footer: str = "",
) -> list[Path]:
    """Write ``trials.csv``, ``summary.csv``, ``summary.md`` and ``summary.png`` (replacing
    the previous summary: it is regenerated from the trials' results).

    :param results: every trial's result.
    :param out_dir: the sweep's output folder.
    :param spec: the sweep (its suite, splits, seeds and budget are stated in the Markdown).
    :param title: the Markdown's title.
    :param footer: a last paragraph (e.g. the command and the machine).
    """
    out = Path(out_dir)
    rows, groups = summarize(results)
    written = [
        atomic_write_text(out / "trials.csv", rows_to_csv(rows), force=True),
        atomic_write_text(out / "summary.csv", rows_to_csv(groups), force=True),
    ]
    mdps: list[str] = []
    for g in groups:
        mdps += [
            k[5:]
            for k in g
            if k.startswith("test:") and not k.endswith("_std") and k[5:] not in mdps
        ]
    lines = [f"# {title}", ""]
    if spec is not None:
        lines += [budget_text(spec), ""]
    lines += [
        "Points ranked by the mean validation return (mean ± std over seeds); the test MDPs, "
        "the grid and the attacks are reported, never used for the ranking.",
        "",
        *_table(groups, mdps, "rank"),
    ]
    best: dict[str, GroupSummary] = {}
    for g in groups:
        best.setdefault(g["variant"], g)
    if len(best) > 1 or any(len([g for g in groups if g["variant"] == v]) > 1 for v in best):
        lines += ["", "Best point of each variant (by validation):", ""]
        lines += _table(list(best.values()), mdps, "variant")
    lines += tie_lines(groups, best) + _unfinished_lines(rows)
    written += _write_best_configs(results, best, out)
    if footer:
        lines += ["", footer]
    written.append(atomic_write_text(out / "summary.md", "\n".join(lines) + "\n", force=True))
    if groups and mdps:
        written.append(_plot(groups, mdps, title, out / "summary.png"))
    return written


def _unfinished_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The pruned and the failed trials (none: no lines)."""
    lines: list[str] = []
    pruned = [r for r in rows if r["status"] == "pruned"]
    if pruned:
        lines += ["", f"Pruned trials ({len(pruned)}): " + ", ".join(r["trial"] for r in pruned)]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "Failed trials:", ""]
        lines += [f"- {r['trial']}: {r.get('error', '')}" for r in failed]
    return lines


def _write_best_configs(
    results: Sequence[TrialResult], best: Mapping[str, GroupSummary], out: Path
) -> list[Path]:
    """``best/<variant>.yaml`` for each variant's best point that has a validation score."""
    first_trial: dict[str, Trial] = {}
    for r in results:
        if r.ok:
            first_trial.setdefault(r.trial.group, r.trial)
    written = []
    for variant, g in best.items():
        if g["group"] in first_trial and g.get("validation_mean") is not None:
            path = out / BEST_DIR / f"{variant}.yaml"
            text = best_config_text(first_trial[g["group"]], g, path)
            written.append(atomic_write_text(path, text, force=True))
    return written


def _plot(groups: Sequence[GroupSummary], mdps: Sequence[str], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups)), 4.0))
    x = np.arange(len(groups))
    width = 0.8 / len(mdps)
    for j, m in enumerate(mdps):
        key = f"test:{m}"
        ax.bar(
            x + j * width,
            [g.get(key) or 0.0 for g in groups],
            width,
            yerr=[g.get(key + "_std") or 0.0 for g in groups],
            label=m,
            capsize=2,
        )
    ax.set_xticks(
        x + 0.4 - width / 2, [g["group"] for g in groups], rotation=30, ha="right", fontsize=7
    )
    ax.set_ylabel("test return (mean ± std over seeds)")
    ax.set_title(f"{title} (ranked by validation return)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, force=True, close=True)
