"""One typed results object from evaluation to tables, plots, trials and summaries.

Every evaluation returns an :class:`EvaluationResults`: a tuple of :class:`EvaluationRow`, each
the returns of one model on one MDP under one condition, described by fields (never by a label
to re-parse): ``kind`` (``"suite"``, ``"grid"`` or ``"attack"``), the suite ``split``, the
physics ``params`` applied, the ``attack`` and its ``epsilon``, and the reset ``seed`` of the
first episode. Results of several evaluations combine with :meth:`EvaluationResults.merge`;
:meth:`~EvaluationResults.summary` gives a :class:`ModelSummary` per model (nominal mean,
per-MDP means, grid average and worst case, mean return per attack and ε).

Serialisation: :meth:`~EvaluationResults.to_dict` / :meth:`~EvaluationResults.from_dict`
(JSON-safe, lossless), :meth:`~EvaluationResults.to_csv` (one line per row, via :mod:`csv`),
:meth:`~EvaluationResults.to_markdown`; figures in :mod:`robust_rl.evaluation.report`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from robust_rl.errors import InvalidArgumentError, UnknownNameError
from robust_rl.io import json_text

__all__ = [
    "CSV_COLUMNS",
    "EvaluationResults",
    "EvaluationRow",
    "ModelSummary",
    "RowKind",
    "aggregate_over_seeds",
    "grid_label",
    "strip_seed_suffix",
]

#: What a row measures: a named suite MDP, a grid point, or an observation attack.
RowKind = Literal["suite", "grid", "attack"]
_KINDS: tuple[str, ...] = ("suite", "grid", "attack")
_SEED_SUFFIX_RE = re.compile(r"^(?P<group>.+?)[_-]?seed\d+$")

#: Columns of :meth:`EvaluationResults.to_csv`, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "model",
    "kind",
    "split",
    "mdp",
    "env",
    "params",
    "attack",
    "epsilon",
    "over",
    "n",
    "mean",
    "std",
    "seed",
    "n_episodes",
    "returns",
    "members",
)


@dataclass(frozen=True)
class EvaluationRow:
    """The returns of one model on one MDP under one condition.

    :param model: the model's name (a key of the ``models`` mapping, or a group after
        :func:`aggregate_over_seeds`).
    :param mdp: display name: the suite MDP's name, or a grid point / attack label built from
        ``params`` / ``epsilon`` (for display only: read the fields, not the label).
    :param env: the gymnasium id the MDP was made from.
    :param returns: per-episode returns; after :func:`aggregate_over_seeds`, the per-member
        mean returns.
    :param kind: ``"suite"``, ``"grid"`` or ``"attack"``.
    :param split: ``"test"`` or ``"validation"`` for a suite or attack row, else ``None``.
    :param params: physics parameters applied with ``set_params`` (empty: nominal physics).
    :param attack: name of the observation attack (attack rows), else ``None``.
    :param epsilon: attack radius in observation units per coordinate, or in units of
        :attr:`epsilon_scale` when it is set (attack rows), else ``None``.
    :param epsilon_scale: per-coordinate scale the radius multiplies (relative attacks), or
        empty for a radius in observation units.
    :param seed: reset seed of the first episode; episode ``i`` used ``seed + i``.
    :param n_episodes: episodes per member model (defaults to ``len(returns)``).
    :param over: ``"episodes"`` or ``"seeds"`` (after :func:`aggregate_over_seeds`).
    :param members: the models aggregated into this row (empty unless aggregated).
    """

    model: str
    mdp: str
    env: str
    returns: tuple[float, ...]
    kind: RowKind = "suite"
    split: str | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    attack: str | None = None
    epsilon: float | None = None
    epsilon_scale: tuple[float, ...] = ()
    seed: int = 0
    n_episodes: int = 0
    over: Literal["episodes", "seeds"] = "episodes"
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidArgumentError(f"row kind must be one of {_KINDS}, got {self.kind!r}")
        if not self.returns:
            raise InvalidArgumentError(f"row {self.model!r}/{self.mdp!r}: no returns")
        object.__setattr__(self, "returns", tuple(float(r) for r in self.returns))
        object.__setattr__(
            self, "params", MappingProxyType({k: float(v) for k, v in self.params.items()})
        )
        object.__setattr__(self, "epsilon_scale", tuple(float(s) for s in self.epsilon_scale))
        object.__setattr__(self, "members", tuple(self.members))
        if self.epsilon is not None:
            object.__setattr__(self, "epsilon", float(self.epsilon))
        if self.n_episodes == 0:
            object.__setattr__(self, "n_episodes", len(self.returns))

    @property
    def key(self) -> tuple[Any, ...]:
        """What identifies the row within results: ``(model, kind, split, mdp, attack, epsilon)``."""
        return (self.model, self.kind, self.split, self.mdp, self.attack, self.epsilon)

    @property
    def n(self) -> int:
        """Number of returns (episodes, or member models after aggregation)."""
        return len(self.returns)

    @property
    def mean(self) -> float:
        """Mean of :attr:`returns`."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``, as SB3's ``evaluate_policy``)."""
        return float(np.std(self.returns))

    @property
    def seeds(self) -> range:
        """Reset seeds of the episodes: ``range(seed, seed + n_episodes)``."""
        return range(self.seed, self.seed + self.n_episodes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` reads it back exactly."""
        return {
            "model": self.model,
            "mdp": self.mdp,
            "env": self.env,
            "returns": list(self.returns),
            "kind": self.kind,
            "split": self.split,
            "params": dict(self.params),
            "attack": self.attack,
            "epsilon": self.epsilon,
            "epsilon_scale": list(self.epsilon_scale),
            "seed": self.seed,
            "n_episodes": self.n_episodes,
            "over": self.over,
            "members": list(self.members),
        }

    def __reduce__(self) -> tuple[Any, ...]:  # read-only mappings do not pickle
        return (EvaluationRow.from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRow:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["returns"] = tuple(d["returns"])
        d["epsilon_scale"] = tuple(d.get("epsilon_scale", ()))
        d["members"] = tuple(d.get("members", ()))
        return cls(**d)


@dataclass(frozen=True)
class ModelSummary:
    """Headline numbers of one model, computed from the rows (no label parsing).

    :param model: the model's name.
    :param nominal: mean return on the nominal test MDP (the suite row with no parameters),
        ``None`` if it was not evaluated.
    :param test: ``{test MDP name: mean return}``.
    :param validation: ``{validation MDP name: mean return}``.
    :param grid_average: mean over grid points of the per-point mean return.
    :param grid_worst: worst case: min over grid points of the per-point mean return.
    :param grid_worst_params: the parameters of that worst grid point.
    :param grid_points: number of grid points evaluated.
    :param attacks: ``{attack: {epsilon: mean return}}``, epsilons sorted.
    """

    model: str
    nominal: float | None
    test: Mapping[str, float]
    validation: Mapping[str, float]
    grid_average: float | None
    grid_worst: float | None
    grid_worst_params: Mapping[str, float] | None
    grid_points: int
    attacks: Mapping[str, Mapping[float, float]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (attack epsilons become strings written with :func:`repr`)."""
        return {
            "model": self.model,
            "nominal": self.nominal,
            "test": dict(self.test),
            "validation": dict(self.validation),
            "grid_average": self.grid_average,
            "grid_worst": self.grid_worst,
            "grid_worst_params": None
            if self.grid_worst_params is None
            else dict(self.grid_worst_params),
            "grid_points": self.grid_points,
            "attacks": {a: {repr(e): m for e, m in v.items()} for a, v in self.attacks.items()},
        }


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def grid_label(params: Mapping[str, float]) -> str:
    """Display name of a grid point: ``"masspole=0.05, length=0.25"`` (6 significant digits)."""
    return ", ".join(f"{k}={v:.6g}" for k, v in params.items())


def _params_label(params: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items()) if params else "nominal"


_PARAM_PREFIX = "params."


def _compact_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"same", "columns", "rows"}`` of :meth:`EvaluationResults.to_dict` with ``compact``."""
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    flat = []
    for r in rows:
        row = {k: v for k, v in r.items() if k != "params"}
        row["returns"] = [float(f"{x:.9g}") for x in r["returns"]]
        params = {k: r["params"][k] for k in keys if k in r["params"]}
        if r["kind"] == "grid" and r["mdp"] == grid_label(params):
            row["mdp"] = None
        row.update({_PARAM_PREFIX + k: params.get(k) for k in keys})
        flat.append(row)
    fields = list(flat[0])
    same = {f: flat[0][f] for f in fields if all(r[f] == flat[0][f] for r in flat)}
    out: dict[str, Any] = {"same": same}
    members: dict[str, Any] = {}
    if "members" not in same and all(
        members.setdefault(r["model"], r["members"]) == r["members"] for r in flat
    ):  # aggregated results: one member list per model, named once
        out["members_of"] = members
        fields.remove("members")
    columns = [f for f in fields if f not in same]
    return {**out, "columns": columns, "rows": [[r[c] for c in columns] for r in flat]}


def _expand_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The row dicts of a compact :meth:`EvaluationResults.to_dict` (inverse of ``_compact_rows``)."""
    same, columns = dict(data["same"]), list(data["columns"])
    members = dict(data.get("members_of", {}))
    names = [f for f in (*same, *columns) if f.startswith(_PARAM_PREFIX)]
    rows = []
    for values in data["rows"]:
        flat = {**same, **dict(zip(columns, values, strict=True))}
        if members:
            flat["members"] = members[flat["model"]]
        params = {n[len(_PARAM_PREFIX) :]: flat.pop(n) for n in names}
        flat["params"] = {k: v for k, v in params.items() if v is not None}
        if flat["mdp"] is None:
            flat["mdp"] = grid_label(flat["params"])
        rows.append(flat)
    return rows


@dataclass(frozen=True)
class EvaluationResults:
    """Rows of returns, with summaries and exports (dict/JSON, CSV, Markdown; PNG in report).

    :param rows: one row per (model, kind, split, MDP, attack, ε), in evaluation order.
    :param name: file stem used by :func:`~robust_rl.evaluation.report.save_results`.
    :param suite: name of the suite the rows come from (for captions), if any.
    :param axes: grid axes in order (for plots): the uncertainty-set parameters varied.
    :raises ValueError: on two rows with the same :attr:`EvaluationRow.key`.
    """

    rows: tuple[EvaluationRow, ...]
    name: str = "results"
    suite: str | None = None
    axes: tuple[str, ...] = ()
    _index: dict[tuple[Any, ...], EvaluationRow] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "axes", tuple(self.axes))
        for row in self.rows:
            if row.key in self._index:
                raise InvalidArgumentError(
                    f"rows: duplicate row for model {row.model!r} on {row.mdp!r} "
                    f"({row.kind}, attack={row.attack}, epsilon={row.epsilon})"
                )
            self._index[row.key] = row

    # ---- selection ---------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """Model names, in order of first appearance."""
        return list(dict.fromkeys(r.model for r in self.rows))

    @property
    def kinds(self) -> list[str]:
        """Row kinds present, in order of first appearance."""
        return list(dict.fromkeys(r.kind for r in self.rows))

    @property
    def mdps(self) -> list[str]:
        """MDP display names, in order of first appearance."""
        return list(dict.fromkeys(r.mdp for r in self.rows))

    def select(
        self,
        *,
        model: str | None = None,
        kind: RowKind | None = None,
        split: str | None = None,
        attack: str | None = None,
    ) -> tuple[EvaluationRow, ...]:
        """Rows matching every given field (``None``: any)."""
        return tuple(
            r
            for r in self.rows
            if (model is None or r.model == model)
            and (kind is None or r.kind == kind)
            and (split is None or r.split == split)
            and (attack is None or r.attack == attack)
        )

    def row(self, model: str, mdp: str, *, kind: RowKind | None = None) -> EvaluationRow:
        """The unique row of ``model`` on ``mdp`` (optionally of one ``kind``).

        :raises KeyError: no such row, or several (the message names what to add).
        """
        found = [r for r in self.rows if r.model == model and r.mdp == mdp]
        if kind is not None:
            found = [r for r in found if r.kind == kind]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownNameError(
                f"no row for model {model!r} on MDP {mdp!r}; models: {self.models}, "
                f"MDPs: {self.mdps}"
            )
        raise UnknownNameError(
            f"{len(found)} rows for model {model!r} on {mdp!r}; use select() with kind/attack"
        )

    def means(self, kind: RowKind | None = None) -> dict[str, dict[str, float]]:
        """``{model: {mdp: mean return}}`` over rows of ``kind`` (all kinds if ``None``)."""
        out: dict[str, dict[str, float]] = {}
        for r in self.select(kind=kind):
            out.setdefault(r.model, {})[r.mdp] = r.mean
        return out

    # ---- summaries ---------------------------------------------------------------------

    def summary(self, model: str) -> ModelSummary:
        """Headline numbers of ``model`` (see :class:`ModelSummary`).

        :raises KeyError: unknown model.
        """
        if model not in self.models:
            raise UnknownNameError(f"unknown model {model!r}; models: {self.models}")
        suite = self.select(model=model, kind="suite")
        test = {r.mdp: r.mean for r in suite if r.split != "validation"}
        validation = {r.mdp: r.mean for r in suite if r.split == "validation"}
        nominal = next((r.mean for r in suite if r.split != "validation" and not r.params), None)
        grid = self.select(model=model, kind="grid")
        average = worst = None
        worst_params = None
        if grid:
            means = [r.mean for r in grid]
            average = float(np.mean(means))
            i = int(np.argmin(means))
            worst, worst_params = means[i], dict(grid[i].params)
        attacks: dict[str, dict[float, float]] = {}
        for r in self.select(model=model, kind="attack"):
            attacks.setdefault(str(r.attack), {})[float(r.epsilon or 0.0)] = r.mean
        return ModelSummary(
            model=model,
            nominal=nominal,
            test=test,
            validation=validation,
            grid_average=average,
            grid_worst=worst,
            grid_worst_params=worst_params,
            grid_points=len(grid),
            attacks={a: dict(sorted(v.items())) for a, v in attacks.items()},
        )

    def summaries(self) -> dict[str, ModelSummary]:
        """``{model: summary(model)}`` for every model."""
        return {m: self.summary(m) for m in self.models}

    # ---- combination -------------------------------------------------------------------

    def merge(self, *others: EvaluationResults, name: str | None = None) -> EvaluationResults:
        """Rows of ``self`` then of ``others`` in one object (keys must stay unique).

        :param name: name of the merged results (default ``self.name``).
        """
        rows = list(self.rows)
        axes = list(self.axes)
        suite = self.suite
        for o in others:
            rows += o.rows
            axes += [a for a in o.axes if a not in axes]
            suite = suite or o.suite
        return EvaluationResults(tuple(rows), name=name or self.name, suite=suite, axes=tuple(axes))

    # ---- serialisation -----------------------------------------------------------------

    def to_dict(self, compact: bool = False) -> dict[str, Any]:
        """JSON-safe dict: ``{"name", "suite", "axes", "rows": [...]}``, one dict per row.

        :param compact: a table instead (how trials record their evaluation, about a third of
            the size): the fields equal in every row once under ``"same"``, the others named
            once under ``"columns"`` (``params`` split into one column per parameter,
            ``"params.<name>"``, null where a row does not set it), each row the list of their
            values; the members of aggregated rows once per model (``"members_of"``); a grid
            row's ``mdp`` is null when it is :func:`grid_label` of its params;
            returns are kept to 9 significant digits (tables regenerate unchanged).
            :meth:`from_dict` reads both forms.
        """
        head = {"name": self.name, "suite": self.suite, "axes": list(self.axes)}
        rows = [r.to_dict() for r in self.rows]
        if not compact or not rows:
            return {**head, "rows": rows}
        return {**head, **_compact_rows(rows)}

    def __reduce__(self) -> tuple[Any, ...]:  # pickles through its dict form
        return (EvaluationResults.from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResults:
        """Inverse of :meth:`to_dict`.

        :raises ValueError: on a malformed dict.
        """
        try:
            table = _expand_rows(data) if "columns" in data else list(data["rows"])
            rows = tuple(EvaluationRow.from_dict(r) for r in table)
            return cls(
                rows,
                name=data.get("name", "results"),
                suite=data.get("suite"),
                axes=tuple(data.get("axes", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"results: malformed results dict ({exc})") from None

    def to_json(self, compact: bool = False) -> str:
        """:meth:`to_dict` as JSON text, one line per row (:func:`robust_rl.io.json_text`)."""
        return json_text(self.to_dict(compact))

    @classmethod
    def from_json(cls, text: str) -> EvaluationResults:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_csv(self) -> str:
        """CSV text, one line per row, columns :data:`CSV_COLUMNS`.

        ``params`` is a JSON object, ``returns``, ``members`` are ``;``-separated, floats are
        written with :func:`repr` so that they read back exactly; empty cells for fields that
        do not apply.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.rows:
            writer.writerow(
                [
                    r.model,
                    r.kind,
                    r.split or "",
                    r.mdp,
                    r.env,
                    json.dumps(dict(r.params)),
                    r.attack or "",
                    "" if r.epsilon is None else repr(r.epsilon),
                    r.over,
                    r.n,
                    repr(r.mean),
                    repr(r.std),
                    r.seed,
                    r.n_episodes,
                    ";".join(repr(x) for x in r.returns),
                    ";".join(r.members),
                ]
            )
        return buf.getvalue()

    # ---- Markdown ----------------------------------------------------------------------

    def caption(self, rows: Iterable[EvaluationRow] | None = None) -> str:
        """One sentence saying what the numbers of ``rows`` (default: all) are."""
        rows = list(self.rows if rows is None else rows)
        if not rows:
            return ""
        firsts = sorted({(r.seed, r.n_episodes) for r in rows})
        eps = "; ".join(f"{n} episodes, reset seeds {s}..{s + n - 1}" for s, n in firsts)
        if any(r.over == "seeds" for r in rows):
            return f"Return: mean ± std over training seeds of each seed's mean return ({eps})."
        return f"Return: mean ± std over episodes ({eps})."

    def to_markdown(self) -> str:
        """Markdown: one table per kind (and split), rows = MDPs / grid points / (attack, ε),
        columns = models, cells ``mean ± std``; a grid adds its average and worst case."""
        parts: list[str] = []
        title = f" `{self.suite}`" if self.suite else ""
        for kind in self.kinds:
            if kind == "suite":
                for split in dict.fromkeys(r.split for r in self.select(kind="suite")):
                    rows = [r for r in self.select(kind="suite") if r.split == split]
                    parts.append(self._table(f"Suite{title}: {split or 'test'} MDPs", rows, "MDP"))
            elif kind == "grid":
                parts.append(self._grid_markdown(title))
            else:
                rows = list(self.select(kind="attack"))
                parts.append(self._table(f"Observation attacks, suite{title}", rows, "attack, ε"))
        return "\n\n".join(parts) + "\n"

    def _table(self, heading: str, rows: list[EvaluationRow], first: str) -> str:
        models = list(dict.fromkeys(r.model for r in rows))
        labels = list(dict.fromkeys(self._label(r) for r in rows))
        cell = {(self._label(r), r.model): r for r in rows}
        lines = [f"### {heading}", "", f"| {first} | " + " | ".join(models) + " |"]
        lines.append("|" + "---|" * (len(models) + 1))
        for lab in labels:
            cells = []
            for m in models:
                r = cell.get((lab, m))
                cells.append("" if r is None else f"{_fmt(r.mean)} ± {_fmt(r.std)}")
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines += ["", self.caption(rows)]
        return "\n".join(lines)

    @staticmethod
    def _label(r: EvaluationRow) -> str:
        if r.kind == "attack":
            scale = " (× scale)" if r.epsilon_scale else ""
            return f"{r.attack}, ε={r.epsilon:g}{scale}"
        return r.mdp

    def _grid_markdown(self, title: str) -> str:
        rows = list(self.select(kind="grid"))
        models = list(dict.fromkeys(r.model for r in rows))
        lines = [
            f"### Grid over the uncertainty set of suite{title}",
            "",
            "| model | points | average | worst case | worst point |",
            "|---|---|---|---|---|",
        ]
        for m in models:
            s = self.summary(m)
            assert s.grid_average is not None and s.grid_worst is not None
            lines.append(
                f"| {m} | {s.grid_points} | {_fmt(s.grid_average)} | {_fmt(s.grid_worst)} | "
                f"{_params_label(s.grid_worst_params or {})} |"
            )
        lines += [
            "",
            "Average: mean over grid points of the mean return; worst case: min over grid "
            "points of the mean return.",
            "",
            self._table("Grid points", rows, "point"),
        ]
        return "\n".join(lines)


def strip_seed_suffix(name: str) -> str:
    """Group name of a model trained with one seed: ``"dqn_seed3"`` -> ``"dqn"``.

    Removes a trailing ``seed<digits>`` (with an optional ``_`` or ``-`` before it); other
    names are returned unchanged.

    >>> strip_seed_suffix("robust_dqn-seed12"), strip_seed_suffix("dqn")
    ('robust_dqn', 'dqn')
    """
    m = _SEED_SUFFIX_RE.match(name)
    return m.group("group") if m else name


def aggregate_over_seeds(
    results: EvaluationResults,
    group_of: Callable[[str], str] = strip_seed_suffix,
) -> EvaluationResults:
    """Mean ± std over training seeds of the per-seed mean returns.

    Models are grouped by ``group_of(model name)`` (by default ``dqn_seed0``, ``dqn_seed1``,
    ... form the group ``dqn``). For each group and row key the new row's ``returns`` are the
    members' mean returns, so its mean is the mean over seeds and its std the spread between
    seeds (not between episodes).

    :param results: per-episode results.
    :param group_of: maps a model name to its group name.
    :return: results with rows ``over="seeds"`` and ``name=f"{results.name}_over_seeds"``.
    :raises ValueError: if rows are already aggregated, or the members of a group were not all
        evaluated on the same conditions.
    """
    if any(r.over != "episodes" for r in results.rows):
        raise InvalidArgumentError("results: expected per-episode results (over='episodes')")
    groups: dict[str, list[str]] = {}
    for model in results.models:
        group = group_of(model)
        if not isinstance(group, str) or not group:
            raise InvalidArgumentError(
                f"group_of({model!r}) must return a non-empty string, got {group!r}"
            )
        groups.setdefault(group, []).append(model)
    conditions = list(dict.fromkeys(r.key[1:] for r in results.rows))
    rows = []
    for group, members in groups.items():
        for cond in conditions:
            member_rows = [results._index.get((m, *cond)) for m in members]
            missing = [m for m, r in zip(members, member_rows, strict=True) if r is None]
            if missing:
                if len(missing) == len(members):
                    continue
                raise InvalidArgumentError(
                    f"group {group!r}: models {missing} were not evaluated on {cond[2]!r} "
                    f"({cond[0]}) while other members were"
                )
            first = member_rows[0]
            assert first is not None
            rows.append(
                replace(
                    first,
                    model=group,
                    returns=tuple(r.mean for r in member_rows if r is not None),
                    over="seeds",
                    members=tuple(members),
                )
            )
    return EvaluationResults(
        tuple(rows),
        name=f"{results.name}_over_seeds",
        suite=results.suite,
        axes=results.axes,
    )
