"""Suites: named test MDPs, an uncertainty set and validation MDPs around one nominal task.

A suite is data (a frozen :class:`Suite`), kept in a registry (:data:`SUITES`) or read from a
YAML file (:func:`load_suite`); evaluation, sweeps and the CLI never name a task. An MDP
(:class:`MDP`) is a name plus physics parameters applied with ``env.unwrapped.set_params``
to the suite's nominal id.

* ``test``: the named MDPs a results table reports (the nominal one first).
* ``uncertainty``: ``{parameter: (low, high)}``, the box over which :func:`grid_points` lays an
  inclusive grid of ``N`` points per axis (both bounds evaluated).
* ``validation``: MDPs for tuning hyperparameters. They are disjoint from the test MDPs and
  from every inclusive grid with ``2..max_grid_points`` points per axis, which the
  constructor checks: tuning on the MDPs or grids a table reports is not possible by mistake.

YAML format (every key but ``nominal_id`` and ``test`` optional)::

    name: my-cartpole
    nominal_id: robust_rl/CartPole-v1
    description: CartPole with a heavier pole
    uncertainty: {masspole: [0.05, 2.0], length: [0.25, 1.0]}   # default: robust_rl.envs
    test: {original: {}, heavy pole: {masspole: 2.0}}
    validation: {medium pole: {masspole: 0.7013}}                # default: see below

Without ``validation``, a suite gets :func:`default_validation`: four interior points of the
uncertainty box at fixed fractions of each range that lie on no inclusive grid.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from robust_rl.errors import InvalidArgumentError, UnknownNameError

__all__ = [
    "GRID_SEPARATION",
    "MAX_GRID_POINTS",
    "MAX_GRID_SIZE",
    "MDP",
    "SUITES",
    "Split",
    "Suite",
    "default_validation",
    "get_suite",
    "grid_points",
    "grid_values",
    "load_suite",
    "on_inclusive_grid",
    "register_suite",
    "suite_names",
]

#: Largest number of points per axis of a grid; validation MDPs are checked off every inclusive
#: grid with 2..MAX_GRID_POINTS points per axis (by at least :data:`GRID_SEPARATION`).
MAX_GRID_POINTS = 25

#: Least distance, as a fraction of the parameter's range, between a validation value and any
#: grid value: closer than that, the validation MDP counts as a grid point.
GRID_SEPARATION = 1e-3

#: Largest number of points of a whole grid (all axes), to refuse grids that cannot fit in memory.
MAX_GRID_SIZE = 1_000_000

#: Which MDPs of a suite to evaluate: ``"test"`` (reported) or ``"validation"`` (for tuning).
Split = Literal["test", "validation"]

_SPLITS = ("test", "validation")


def _freeze_params(params: Any, where: str) -> Mapping[str, float]:
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"{where}: parameters must be a mapping, got {params!r}")
    out: dict[str, float] = {}
    for k, v in params.items():
        if not isinstance(k, str) or not k:
            raise InvalidArgumentError(f"{where}: parameter names must be strings, got {k!r}")
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where}: {k} must be a number, got {v!r}") from None
        if not math.isfinite(fv):
            raise InvalidArgumentError(f"{where}: {k} must be finite, got {v!r}")
        out[k] = fv
    return MappingProxyType(out)


@dataclass(frozen=True)
class MDP:
    """One MDP of a suite: the suite's nominal id with these physics parameters.

    :param name: display name (``"heavy pole"``), unique within the suite.
    :param params: ``{parameter: value}`` passed to ``set_params``; empty for the nominal MDP.
    """

    name: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(f"MDP name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "params", _freeze_params(self.params, f"MDP {self.name!r}"))

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}`` (JSON-serialisable)."""
        return {"name": self.name, "params": dict(self.params)}

    def __reduce__(self) -> tuple[Any, ...]:  # read-only mappings do not pickle
        return (MDP, (self.name, dict(self.params)))


def _nominal_params(nominal_id: str) -> Mapping[str, float]:
    """The nominal physics of a registered task or of one of its named variants (empty for an
    id that is not a task of :mod:`robust_rl.envs`)."""
    from robust_rl.envs.tasks import TASKS

    for task in TASKS:
        if task.id == nominal_id:
            return dict(task.nominal)
        if nominal_id in task.variants:
            return {**task.nominal, **task.variants[nominal_id]}
    return {}


def _same_physics(
    a: Mapping[str, float], b: Mapping[str, float], nominal: Mapping[str, float]
) -> bool:
    """Whether two MDPs' parameters describe the same physics once unset values take the nominal
    ones (a parameter the nominal does not list must be set equally in both)."""
    keys = set(a) | set(b)
    for k in keys:
        va, vb = a.get(k, nominal.get(k)), b.get(k, nominal.get(k))
        if va is None or vb is None:
            return False
        if not math.isclose(float(va), float(vb), rel_tol=1e-12, abs_tol=0.0):
            return False
    return True


def on_inclusive_grid(
    value: float,
    low: float,
    high: float,
    max_points: int = MAX_GRID_POINTS,
    separation: float = GRID_SEPARATION,
) -> bool:
    """Whether ``value`` is within ``separation * (high - low)`` of a point of
    ``linspace(low, high, n)`` for some ``2 <= n <= max_points``.

    >>> on_inclusive_grid(2.0, 1.0, 3.0), on_inclusive_grid(1.6516, 1.0, 3.0)
    (True, False)
    """
    t = (value - low) / (high - low)
    if t < -separation or t > 1 + separation:
        return False
    for n in range(2, max_points + 1):
        k = t * (n - 1)
        if abs(k - round(k)) < separation * (n - 1):
            return True
    return False


#: fractions of each range used by :func:`default_validation`, one tuple per validation MDP,
#: cycled over the axes. Each is at least 0.59 % of the range away from every point of every
#: inclusive grid with up to 25 points per axis (searched numerically).
_VALIDATION_FRACTIONS: tuple[tuple[float, ...], ...] = (
    (0.3258,),
    (0.6742,),
    (0.244, 0.756),
    (0.756, 0.244),
)


def _round_sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def default_validation(
    uncertainty: Mapping[str, tuple[float, float]], max_points: int = MAX_GRID_POINTS
) -> tuple[MDP, ...]:
    """Four validation MDPs inside the uncertainty box, off every inclusive grid.

    MDP ``val-k`` puts axis ``j`` at ``low + f * (high - low)`` (4 significant digits), ``f``
    cycling over a fixed tuple of fractions per MDP (0.3258; 0.6742; 0.244/0.756;
    0.756/0.244), each at least 0.59 % of the range away from every inclusive grid with up to
    25 points per axis. A rounded value that falls on a grid is nudged by one unit of its last
    digit until it does not.
    """
    mdps = []
    for k, fracs in enumerate(_VALIDATION_FRACTIONS, start=1):
        params = {}
        for j, (axis, (lo, hi)) in enumerate(uncertainty.items()):
            v = _round_sig(lo + fracs[j % len(fracs)] * (hi - lo))
            while on_inclusive_grid(v, lo, hi, max_points):
                v = _round_sig(v + 10 ** (math.floor(math.log10(abs(v))) - 3))
            params[axis] = v
        mdps.append(MDP(f"val-{k}", params))
    return tuple(mdps)


@dataclass(frozen=True)
class Suite:
    """A nominal task with named test MDPs, an uncertainty set and validation MDPs.

    :param name: registry name (``"cartpole"``) or the YAML file's ``name``.
    :param nominal_id: registered gymnasium id of the nominal MDP; every MDP of the suite is
        this id with its parameters applied through ``set_params``.
    :param test: the reported MDPs, nominal first by convention (``params={}``).
    :param uncertainty: ``{parameter: (low, high)}`` with ``low < high``: the box of the grid.
    :param validation: MDPs for tuning; disjoint from ``test`` and off every inclusive grid
        over ``uncertainty`` with ``2..max_grid_points`` points per axis (checked).
    :param description: one line on the physics, for reports.
    :param max_grid_points: largest ``points`` accepted by :meth:`grid_points`.
    :raises ValueError: on empty or repeated names, a bad range, or a validation MDP that is a
        test MDP or lies on a grid.
    """

    name: str
    nominal_id: str
    test: tuple[MDP, ...]
    uncertainty: Mapping[str, tuple[float, float]]
    validation: tuple[MDP, ...] = ()
    description: str = ""
    max_grid_points: int = MAX_GRID_POINTS

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
        if not isinstance(self.nominal_id, str) or not self.nominal_id:
            raise InvalidArgumentError(f"{where}: nominal_id must be a gymnasium id")
        unc: dict[str, tuple[float, float]] = {}
        if not isinstance(self.uncertainty, Mapping) or not self.uncertainty:
            raise InvalidArgumentError(
                f"{where}: uncertainty must be a non-empty mapping {{parameter: [low, high]}}"
            )
        for k, bounds in self.uncertainty.items():
            try:
                lo, hi = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"{where}: uncertainty[{k!r}] must be [low, high], got {bounds!r}"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidArgumentError(
                    f"{where}: uncertainty[{k!r}] needs finite low < high, got {bounds!r}"
                )
            unc[str(k)] = (lo, hi)
        object.__setattr__(self, "uncertainty", MappingProxyType(unc))
        test = tuple(self.test)
        if not test:
            raise InvalidArgumentError(f"{where}: needs at least one test MDP")
        validation = tuple(self.validation) or default_validation(unc, self.max_grid_points)
        object.__setattr__(self, "test", test)
        object.__setattr__(self, "validation", validation)
        names = [m.name for m in test + validation]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidArgumentError(f"{where}: repeated MDP names {dup}")
        nominal = _nominal_params(self.nominal_id)
        for m in validation:
            for t in test:
                if _same_physics(m.params, t.params, nominal):
                    raise InvalidArgumentError(
                        f"{where}: validation MDP {m.name!r} {dict(m.params)} is physically test "
                        f"MDP {t.name!r} {dict(t.params)} (nominal values filled in)"
                    )
            if not any(
                k in unc and not on_inclusive_grid(v, *unc[k], self.max_grid_points)
                for k, v in m.params.items()
            ):
                raise InvalidArgumentError(
                    f"{where}: validation MDP {m.name!r} {dict(m.params)} may lie on a grid "
                    f"point: give at least one uncertainty parameter ({', '.join(unc)}) a value "
                    f"on no inclusive grid of 2..{self.max_grid_points} points"
                )

    def __reduce__(self) -> tuple[Any, ...]:  # read-only mappings do not pickle
        return (
            Suite,
            (
                self.name,
                self.nominal_id,
                self.test,
                dict(self.uncertainty),
                self.validation,
                self.description,
                self.max_grid_points,
            ),
        )

    def mdps(self, split: Split = "test") -> tuple[MDP, ...]:
        """The MDPs of ``split`` (``"test"`` or ``"validation"``)."""
        if split == "test":
            return self.test
        if split == "validation":
            return self.validation
        raise InvalidArgumentError(f"split must be one of {_SPLITS}, got {split!r}")

    @property
    def axes(self) -> tuple[str, ...]:
        """Parameters of the uncertainty set, in order."""
        return tuple(self.uncertainty)

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data (the YAML format of :func:`load_suite`)."""
        return {
            "name": self.name,
            "nominal_id": self.nominal_id,
            "description": self.description,
            "uncertainty": {k: list(v) for k, v in self.uncertainty.items()},
            "test": {m.name: dict(m.params) for m in self.test},
            "validation": {m.name: dict(m.params) for m in self.validation},
        }


def grid_values(
    suite: Suite, points: int, axes: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """``{axis: np.linspace(low, high, points)}`` for the chosen axes (default: all).

    :raises ValueError: ``points`` outside ``2..suite.max_grid_points`` or an unknown axis.
    """
    if (
        isinstance(points, bool)
        or not isinstance(points, int)
        or not (2 <= points <= suite.max_grid_points)
    ):
        raise InvalidArgumentError(
            f"points must be an integer in 2..{suite.max_grid_points}, got {points!r}"
        )
    chosen = tuple(suite.axes if axes is None else axes)
    if not chosen:
        raise InvalidArgumentError("axes: choose at least one parameter")
    bad = [a for a in chosen if a not in suite.uncertainty]
    if bad or len(set(chosen)) != len(chosen):
        raise InvalidArgumentError(
            f"axes: {list(chosen)} must be distinct parameters of suite {suite.name!r}: "
            f"{', '.join(suite.axes)}"
        )
    return {a: np.linspace(*suite.uncertainty[a], points) for a in chosen}


def grid_points(
    suite: Suite, points: int, axes: Sequence[str] | None = None
) -> list[dict[str, float]]:
    """Every point of the inclusive grid, ``points`` per axis, last axis varying fastest.

    Parameters outside ``axes`` keep their nominal values (they are not in the returned dicts).

    >>> s = get_suite("cartpole")
    >>> len(grid_points(s, 3, axes=["masspole", "length"]))
    9
    """
    values = grid_values(suite, points, axes)
    size = points ** len(values)
    if size > MAX_GRID_SIZE:
        raise InvalidArgumentError(
            f"points: {points} per axis over {len(values)} axes is {size} grid points (more than "
            f"{MAX_GRID_SIZE}); use fewer points or choose axes"
        )
    names = list(values)
    return [
        {n: float(v) for n, v in zip(names, combo, strict=True)}
        for combo in product(*values.values())
    ]


# --------------------------------------------------------------------------------------------
# registry


def _uncertainty_sets() -> Mapping[str, Mapping[str, tuple[float, float]]]:
    from robust_rl.envs import UNCERTAINTY_SETS

    return UNCERTAINTY_SETS


def _variant_name(variant_id: str, task_id: str) -> str:
    """``robust_rl/HopperHeavyTorso-v5`` of ``robust_rl/Hopper-v5`` -> ``"heavy torso"``."""
    base = task_id.split("/")[-1].rsplit("-v", 1)[0]
    name = variant_id.split("/")[-1].rsplit("-v", 1)[0]
    name = name[len(base) :] if name.startswith(base) and name != base else name
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _default_test(task_id: str, uncertainty: Mapping[str, tuple[float, float]]) -> tuple[MDP, ...]:
    """``nominal``, the task's named variants (``robust_rl.envs``), then each bound of the
    uncertainty set alone (``"<param> low"``, ``"<param> high"``), skipping a bound equal to the
    nominal value or to an MDP already listed."""
    from robust_rl.envs import get_task

    task = get_task(task_id)
    mdps = [MDP("nominal")]
    mdps += [MDP(_variant_name(v, task_id), p) for v, p in task.variants.items()]
    for k, (lo, hi) in uncertainty.items():
        for label, value in (("low", lo), ("high", hi)):
            nominal = task.nominal.get(k)
            if value != nominal and not any(dict(m.params) == {k: value} for m in mdps):
                mdps.append(MDP(f"{k} {label}", {k: value}))
    return tuple(mdps)


def _build_registry() -> dict[str, Suite]:
    """One suite per task record (:data:`robust_rl.envs.TASKS`) whose uncertainty set is known."""
    from robust_rl.envs.tasks import TASKS

    sets = _uncertainty_sets()
    out = {}
    for task in TASKS:
        unc = sets.get(task.id)
        if not task.suite or not unc:
            continue
        test = (
            tuple(MDP(name, params) for name, params in task.test_mdps.items())
            if task.test_mdps is not None
            else _default_test(task.id, unc)
        )
        out[task.suite] = Suite(
            name=task.suite,
            nominal_id=task.id,
            test=test,
            uncertainty=dict(unc),
            description=task.description,
        )
    return out


#: Registered suites by name (only those whose environment's uncertainty set is known).
SUITES: dict[str, Suite] = _build_registry()


def suite_names() -> list[str]:
    """Names accepted by :func:`get_suite`, sorted."""
    return sorted(SUITES)


def register_suite(suite: Suite, *, replace: bool = False) -> Suite:
    """Add ``suite`` to :data:`SUITES` under ``suite.name``.

    :raises ValueError: the name is taken and ``replace`` is false.
    """
    if not isinstance(suite, Suite):
        raise InvalidArgumentError(f"suite must be a Suite, got {type(suite).__name__}")
    if suite.name in SUITES and not replace:
        raise InvalidArgumentError(f"suite {suite.name!r} is already registered")
    SUITES[suite.name] = suite
    return suite


def _mdps_from(data: Any, where: str) -> tuple[MDP, ...]:
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"{where} must map MDP names to parameter mappings")
    return tuple(MDP(str(k), v or {}) for k, v in data.items())


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read a suite from a YAML file (format in the module docstring).

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: unreadable YAML, unknown keys, bad MDPs or ranges.
    """
    from robust_rl._files import read_yaml

    p = Path(path)
    data = read_yaml(p, "suite file")
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"suite file {p}: expected a mapping at the top level")
    known = {"name", "nominal_id", "description", "uncertainty", "test", "validation"}
    bad = sorted(set(data) - known)
    if bad:
        raise InvalidArgumentError(
            f"suite file {p}: unknown key(s) {bad}; accepted: {', '.join(sorted(known))}"
        )
    for key in ("nominal_id", "test"):
        if key not in data:
            raise InvalidArgumentError(f"suite file {p}: missing key {key!r}")
    nominal_id = data["nominal_id"]
    uncertainty = data.get("uncertainty")
    if uncertainty is None:
        uncertainty = _uncertainty_sets().get(nominal_id)
        if not uncertainty:
            raise InvalidArgumentError(
                f"suite file {p}: no 'uncertainty' given and none known for {nominal_id!r}"
            )
    return Suite(
        name=str(data.get("name", p.stem)),
        nominal_id=nominal_id,
        test=_mdps_from(data["test"], f"suite file {p}: test"),
        uncertainty=uncertainty,
        validation=_mdps_from(data.get("validation") or {}, f"suite file {p}: validation"),
        description=str(data.get("description", "")),
    )


def get_suite(suite: str | os.PathLike[str] | Suite) -> Suite:
    """A registered suite by name, a suite read from a YAML file, or ``suite`` itself.

    :param suite: a name of :data:`SUITES`, a path ending in ``.yaml``/``.yml`` (or any
        existing file), or a :class:`Suite`.
    :raises KeyError: an unknown name (the message lists the registered ones).
    :raises FileNotFoundError: a YAML path that does not exist.
    """
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, os.PathLike) or (
        isinstance(suite, str)
        and (suite.endswith((".yaml", ".yml")) or (suite not in SUITES and Path(suite).is_file()))
    ):
        return load_suite(suite)
    if isinstance(suite, str) and suite in SUITES:
        return SUITES[suite]
    raise UnknownNameError(
        f"suite: unknown suite {suite!r}; registered suites: {', '.join(suite_names())} "
        "(or the path of a suite YAML file)"
    )
