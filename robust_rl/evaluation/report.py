"""Figures (PNG) of evaluation results and writing them to a folder atomically.

* grid: 1-D curves of the mean return versus the parameter (one panel per parameter, one line
  per model, ± std band) when each point varies one parameter; a heatmap per model over the
  first two grid axes otherwise (the worst case over further axes);
* attacks: mean return versus ε, one panel per attack, one line per model, ± std band.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation.results import EvaluationResults, EvaluationRow, RowKind
from robust_rl.io import atomic_publish, check_writable, figure_png

__all__ = ["attack_png", "grid_png", "save_results"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def grid_png(results: EvaluationResults) -> bytes | None:
    """PNG of the grid rows (curves or heatmaps, see the module docstring); ``None`` if none."""
    return _figure(results, "grid", _draw_grid)


def attack_png(results: EvaluationResults) -> bytes | None:
    """PNG of mean return versus ε per attack and model; ``None`` without attack rows."""
    return _figure(results, "attack", _draw_attacks)


def _figure(
    results: EvaluationResults,
    kind: RowKind,
    draw: Callable[[Any, EvaluationResults, Sequence[EvaluationRow]], Any],
) -> bytes | None:
    """``draw(pyplot, results, rows)``'s figure of the rows of ``kind`` as PNG; ``None`` if
    there are none."""
    rows = results.select(kind=kind)
    if not rows:
        return None
    return figure_png(draw(_pyplot(), results, rows), close=True)


def _draw_grid(plt: Any, results: EvaluationResults, rows: Sequence[EvaluationRow]) -> Any:
    axes = list(results.axes) or list(dict.fromkeys(k for r in rows for k in r.params))
    curves = all(len(r.params) == 1 for r in rows) or len(axes) == 1
    fig = _grid_curves(plt, rows) if curves else _grid_heatmaps(plt, rows, axes)
    fig.suptitle(f"Grid over the uncertainty set{_suite(results)}", fontsize=10)
    if curves:
        fig.tight_layout()
    return fig


def _grid_curves(plt: Any, rows: Sequence[EvaluationRow]) -> Any:
    """One panel per parameter varied alone: mean return against its value, per model."""
    nominal, labels = _nominal(rows[0].env), _labels(rows[0].env)
    params = list(dict.fromkeys(next(iter(r.params)) for r in rows if r.params))
    fig, panels = plt.subplots(1, len(params), figsize=(4.2 * len(params), 3.4), squeeze=False)
    for ax, p in zip(panels[0], params, strict=True):
        for m in dict.fromkeys(r.model for r in rows):
            pts = sorted(
                (r.params[p], r.mean, *_band(r))
                for r in rows
                if r.model == m and p in r.params and len(r.params) == 1
            )
            x, y, lo, hi = (np.array(v) for v in zip(*pts, strict=True))
            ax.plot(x, y, marker="o", label=m)
            ax.fill_between(x, lo, hi, alpha=0.15)
        if p in nominal:
            ax.axvline(nominal[p], color="0.4", linestyle=":", linewidth=1, label="nominal")
        ax.set_xlabel(labels.get(p, p))
        ax.set_ylabel("mean return (band: ± 1 std over episodes, within their range)")
        ax.yaxis.label.set_fontsize(7)
        ax.grid(alpha=0.3)
    panels[0][0].legend(fontsize=8)
    return fig


def _grid_heatmaps(plt: Any, rows: Sequence[EvaluationRow], axes: list[str]) -> Any:
    """One heatmap per model over the first two axes (the worst over the others)."""
    models = list(dict.fromkeys(r.model for r in rows))
    nominal, labels = _nominal(rows[0].env), _labels(rows[0].env)
    a0, a1 = axes[0], axes[1]
    rest = axes[2:]
    fig, panels = plt.subplots(
        1, len(models), figsize=(4.6 * len(models), 4.0), squeeze=False, layout="constrained"
    )
    vmin = min(r.mean for r in rows)
    vmax = max(r.mean for r in rows)
    for ax, m in zip(panels[0], models, strict=True):
        mr = [r for r in rows if r.model == m]
        ys = sorted({r.params[a0] for r in mr})
        xs = sorted({r.params[a1] for r in mr})
        z = np.full((len(ys), len(xs)), np.inf)
        for r in mr:
            i, j = ys.index(r.params[a0]), xs.index(r.params[a1])
            z[i, j] = min(z[i, j], r.mean)
        z[np.isinf(z)] = np.nan
        im = ax.imshow(z, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis")
        if z.size <= 144:  # write the values on small grids
            for (i, j), v in np.ndenumerate(z):
                if np.isfinite(v):
                    dark = v > (vmin + vmax) / 2  # viridis is light at the top
                    ax.text(
                        j,
                        i,
                        f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="k" if dark else "w",
                    )
        ax.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs], rotation=60, fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{v:.3g}" for v in ys], fontsize=7)
        if a0 in nominal and a1 in nominal:  # where the nominal MDP lies between the points
            ax.plot(
                np.interp(nominal[a1], xs, range(len(xs))),
                np.interp(nominal[a0], ys, range(len(ys))),
                marker="x",
                color="red",
                markersize=9,
                linestyle="none",
                label="nominal",
            )
            ax.legend(fontsize=7, loc="upper right")
        ax.set_xlabel(labels.get(a1, a1))
        ax.set_ylabel(labels.get(a0, a0))
        ax.set_title(m + (f" (worst over {', '.join(rest)})" if rest else ""), fontsize=9)
    fig.colorbar(im, ax=list(panels[0]), label="mean return", shrink=0.9)
    return fig


def _draw_attacks(plt: Any, results: EvaluationResults, rows: Sequence[EvaluationRow]) -> Any:
    attacks = list(dict.fromkeys(str(r.attack) for r in rows))
    fig, panels = plt.subplots(1, len(attacks), figsize=(4.4 * len(attacks), 3.4), squeeze=False)
    for ax, a in zip(panels[0], attacks, strict=True):
        arows = [r for r in rows if r.attack == a]
        for m in dict.fromkeys(r.model for r in arows):
            pts = sorted(
                (float(r.epsilon or 0.0), r.mean, *_band(r)) for r in arows if r.model == m
            )
            x, y, lo, hi = (np.array(v) for v in zip(*pts, strict=True))
            ax.plot(x, y, marker="o", label=m)
            ax.fill_between(x, lo, hi, alpha=0.15)
        relative = any(r.epsilon_scale for r in arows)
        ax.set_xlabel("ε (× per-coordinate scale)" if relative else "ε (observation units)")
        ax.set_ylabel("mean return (band: ± 1 std over episodes, within their range)")
        ax.yaxis.label.set_fontsize(7)
        ax.set_title(f"{a} attack", fontsize=10)
        ax.grid(alpha=0.3)
    panels[0][0].legend(fontsize=8)
    fig.suptitle(f"Return versus attack radius{_suite(results)}", fontsize=10)
    fig.tight_layout()
    return fig


def _band(row: EvaluationRow) -> tuple[float, float]:
    """``mean ± std`` over the row's episodes, clipped to the returns its episodes reached (a
    band never claims a return no episode had)."""
    returns = np.asarray(row.returns, dtype=float)
    lo, hi = float(returns.min()), float(returns.max())
    return max(lo, row.mean - row.std), min(hi, row.mean + row.std)


def _labels(env_id: str) -> dict[str, str]:
    """Parameter name -> axis label with its unit, ``"masspole (kg)"`` (the task's
    :class:`~robust_rl.envs.params.ParamSpec`; empty for an env that is not a task, or whose
    class cannot be imported here, e.g. a MuJoCo robot without ``mujoco``)."""
    import importlib

    try:
        from robust_rl.envs.tasks import get_task

        module, _, name = get_task(env_id).entry_point.partition(":")
        specs = getattr(importlib.import_module(module), name).PARAM_SPECS
    except Exception:  # not one of the package's tasks, or its simulator is not installed
        return {}
    return {s.name: f"{s.name} ({s.unit})" if s.unit else s.name for s in specs}


def _nominal(env_id: str) -> dict[str, float]:
    """The task's nominal parameters (empty for an env that is not a task)."""
    try:
        from robust_rl.envs.tasks import get_task

        return dict(get_task(env_id).nominal)
    except Exception:  # not one of the package's tasks
        return {}


def _suite(results: EvaluationResults) -> str:
    return f" — {results.suite}" if results.suite else ""


def _planned(
    r: EvaluationResults, out: Path, compact: bool = False
) -> list[tuple[Path, Callable[[], str | bytes | None]]]:
    plan: list[tuple[Path, Callable[[], str | bytes | None]]] = [
        (out / f"{r.name}.json", partial(r.to_json, compact)),
        *(() if compact else [(out / f"{r.name}.csv", r.to_csv)]),
        (out / f"{r.name}.md", r.to_markdown),
    ]
    renderers: tuple[tuple[RowKind, Callable[[EvaluationResults], bytes | None]], ...] = (
        ("grid", grid_png),
        ("attack", attack_png),
    )
    figures = [(k, f) for k, f in renderers if r.select(kind=k)]
    for k, f in figures:
        suffix = "" if len(figures) == 1 else f"_{k}"
        plan.append((out / f"{r.name}{suffix}.png", partial(f, r)))
    return plan


def save_results(
    results: EvaluationResults | Iterable[EvaluationResults],
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    compact: bool = False,
) -> list[Path]:
    """Write ``{name}.json``, ``{name}.csv``, ``{name}.md`` and the figures of each result.

    With ``compact`` the JSON is the compact table of
    :meth:`~robust_rl.evaluation.EvaluationResults.to_dict` and no CSV is written (it would
    repeat the JSON): for results kept in version control.

    Figures: ``{name}.png`` for results with grid or attack rows (``{name}_grid.png`` and
    ``{name}_attack.png`` when both). The files are published as one set
    (:func:`robust_rl.io.atomic_publish`): all destinations are checked before anything is
    written, everything is written to temporary files before any destination changes, and with
    ``force`` an earlier run's figures under the same names that this set lacks are removed, so
    a failure leaves the old set and a success the new one, never a mix.

    :param results: one result or several (with distinct names).
    :param out_dir: destination folder, created if needed.
    :param force: overwrite existing files.
    :param compact: compact JSON, no CSV.
    :return: the written paths.
    :raises FileExistsError: if a destination exists and ``force`` is false.
    :raises ValueError: on no results, repeated names, or a name unfit for a file.
    """
    items = [results] if isinstance(results, EvaluationResults) else list(results)
    if not items:
        raise InvalidArgumentError("results: nothing to save (empty sequence)")
    names = [r.name for r in items]
    for n in names:
        if not _NAME_RE.match(n):
            raise InvalidArgumentError(
                f"results name {n!r} is not a valid file stem (letters, digits, _.-)"
            )
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"results have repeated names {names}; give each a distinct name"
        )
    out = Path(out_dir)
    planned = [p for r in items for p in _planned(r, out, compact)]
    for path, _ in planned:
        check_writable(path, force)
    files: list[tuple[Path, bytes]] = []
    for path, render in planned:
        data = render()
        if data is not None:
            files.append((path, data if isinstance(data, bytes) else data.encode("utf-8")))
    # figures of an earlier run under the same names that this set does not have
    new_paths = {path for path, _ in files}
    stale = [
        out / f"{r.name}{suffix}.png"
        for r in items
        for suffix in ("", "_grid", "_attack")
        if out / f"{r.name}{suffix}.png" not in new_paths
        and (out / f"{r.name}{suffix}.png").exists()
    ]
    return atomic_publish(files, force=force, remove=stale if force else ())
