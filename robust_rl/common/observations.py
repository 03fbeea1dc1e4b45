"""Which parts of an observation a robust agent perturbs, and by how much, as one flat vector.

The estimator core (:mod:`robust_rl.risk`) perturbs one tensor of points ``(B, D)``. An agent's
observations are a :class:`~gymnasium.spaces.Box` or a :class:`~gymnasium.spaces.Dict` of entries
(``MultiInputPolicy``, goal-conditioned envs with ``HerReplayBuffer``).
:class:`ObservationPerturbation` maps a batch of observations to the flat vector of its perturbed
coordinates (every Box entry, in key order, minus the entries the user excludes), and a batch of
perturbed vectors back to observations (unperturbed entries are copied from the point each row
was drawn around). Discrete, MultiDiscrete and MultiBinary entries are never perturbed.

For a Dict, the ball is over the joint vector of the perturbed entries: with ``norm="linf"`` each
coordinate moves independently within its radius; with ``norm="l2"`` all perturbed coordinates
share one ellipsoid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces

from robust_rl.errors import InvalidArgumentError

__all__ = [
    "ObservationPerturbation",
    "RadiusSpec",
    "UnsupportedSpaceError",
    "batch_rows",
    "check_observation_space",
    "check_radius",
    "check_unperturbed_keys",
]

#: a radius as a user gives it: one value for every coordinate, one per coordinate of a Box
#: observation, or (Dict observations) one such value per entry
RadiusSpec = float | Sequence[float] | Mapping[str, float | Sequence[float]]

_RADIUS_HELP = (
    "a non-negative float, a sequence of them (one per observation coordinate) or, for Dict "
    "observations, a mapping from entry name to such a value"
)


def batch_rows(observations: torch.Tensor | Mapping[str, torch.Tensor]) -> int:
    """Rows of a batch of observations (a tensor, or a dict of tensors for Dict spaces)."""
    if isinstance(observations, Mapping):
        return int(next(iter(observations.values())).shape[0])
    return int(observations.shape[0])


class UnsupportedSpaceError(InvalidArgumentError, AssertionError):
    """An observation or action space a robust agent cannot handle.

    An :class:`~robust_rl.errors.InvalidArgumentError` (the CLI prints one line, exit 2) and,
    like the error Stable-Baselines3 raises for an unsupported action space, an
    :class:`AssertionError`, so code written against SB3 keeps catching it.
    """


def check_observation_space(space: spaces.Space, owner: str = "a robust agent") -> None:
    """Refuse an observation space without a Box to perturb (a Box, or a Dict with a Box entry).

    :raises UnsupportedSpaceError: any other space (Discrete, MultiBinary, a Dict of those, ...).
    """
    if isinstance(space, spaces.Box):
        return
    if isinstance(space, spaces.Dict) and any(
        isinstance(s, spaces.Box) for s in space.spaces.values()
    ):
        return
    raise UnsupportedSpaceError(
        f"{owner} perturbs observations in a ball, so observation_space must be a "
        f"gymnasium.spaces.Box or a Dict with Box entries, got {space}"
    )


def _radius_value(value: Any, what: str) -> float | list[float]:
    """One radius value as a JSON-friendly float or flat list, finite and non-negative."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be {_RADIUS_HELP}, got {value!r}") from None
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidArgumentError(f"{what} must be {_RADIUS_HELP}, got {value!r}")
    return float(arr) if arr.ndim == 0 else [float(v) for v in arr.reshape(-1)]


def check_radius(radius: RadiusSpec) -> float | list[float] | dict[str, float | list[float]]:
    """Validate the form of ``radius`` (not yet against a space) and make it JSON-friendly.

    :param radius: see :data:`RadiusSpec`.
    :return: a float, a flat list of floats, or a dict of those keyed by entry name.
    :raises InvalidArgumentError: negative, non-finite, empty or malformed values.
    """
    if isinstance(radius, Mapping):
        if not radius:
            raise InvalidArgumentError(f"radius must be {_RADIUS_HELP}, got an empty mapping")
        out: dict[str, float | list[float]] = {}
        for key, value in radius.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"radius keys must be entry names (str), got {key!r}")
            out[key] = _radius_value(value, f"radius[{key!r}]")
        return out
    if isinstance(radius, str | bytes):
        raise InvalidArgumentError(f"radius must be {_RADIUS_HELP}, got {radius!r}")
    return _radius_value(radius, "radius")


def check_unperturbed_keys(keys: Sequence[str] | None) -> list[str]:
    """Validate the entry names left unperturbed (a sequence of str) as a sorted list."""
    if keys is None:
        return []
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise InvalidArgumentError(
            f"unperturbed_keys must be a sequence of Dict entry names (str), got {keys!r}"
        )
    return sorted(set(keys))


class ObservationPerturbation:
    """The perturbed coordinates of an observation space, flattened into one vector.

    :param space: the agent's observation space, a :class:`~gymnasium.spaces.Box` or a
        :class:`~gymnasium.spaces.Dict`.
    :param radius: validated by :func:`check_radius`. Box space: a float or one value per
        coordinate (``prod(shape)`` values, in C order). Dict space: a float for every perturbed
        entry, or a mapping with one value (a float or one per coordinate of that entry) for
        every Box entry that is not in ``unperturbed_keys``.
    :param unperturbed_keys: Dict entries to leave unperturbed (Box entries; non-Box entries are
        never perturbed).
    :raises UnsupportedSpaceError: a space without a Box entry.
    :raises InvalidArgumentError: a radius of the wrong length, unknown or non-Box keys, or every
        Box entry excluded.

    :ivar keys: perturbed Dict entries in order (``None`` for a Box space).
    :ivar dim: ``D``, the number of perturbed coordinates.
    :ivar radius: ``(D,)`` float64 radius of each perturbed coordinate in observation units.
    """

    def __init__(
        self,
        space: spaces.Space,
        radius: float | list[float] | dict[str, float | list[float]],
        unperturbed_keys: Sequence[str] = (),
    ) -> None:
        self.space = space
        check_observation_space(space)
        excluded = list(unperturbed_keys)
        if isinstance(space, spaces.Box):
            if excluded:
                raise InvalidArgumentError(
                    f"unperturbed_keys applies to Dict observation spaces only, got {excluded} "
                    f"for a Box observation space"
                )
            if isinstance(radius, dict):
                raise InvalidArgumentError(
                    "radius is a mapping of Dict entries but the observation space is a Box; "
                    "pass a float or one value per observation coordinate"
                )
            self.keys: tuple[str, ...] | None = None
            self._shapes = {"": tuple(space.shape)}
            parts = [_expand(radius, tuple(space.shape), "radius")]
        else:
            assert isinstance(space, spaces.Dict)
            parts = self._dict_parts(space, radius, excluded)
        self.radius = np.concatenate(parts)
        self.dim = int(self.radius.shape[0])
        sizes = [math.prod(s) for s in self._shapes.values()]
        bounds = np.cumsum([0, *sizes])
        self._slices = {
            k: slice(int(a), int(b))
            for k, a, b in zip(self._shapes, bounds[:-1], bounds[1:], strict=True)
        }

    def _dict_parts(
        self,
        space: spaces.Dict,
        radius: float | list[float] | dict[str, float | list[float]],
        excluded: list[str],
    ) -> list[np.ndarray]:
        names = list(space.spaces)
        unknown = sorted(set(excluded) - set(names))
        if unknown:
            raise InvalidArgumentError(
                f"unperturbed_keys {unknown} are not entries of the observation space; its "
                f"entries are {names}"
            )
        boxes = [k for k in names if isinstance(space.spaces[k], spaces.Box)]
        keys = [k for k in boxes if k not in excluded]
        if not keys:
            raise InvalidArgumentError(
                f"no observation entry left to perturb: the Box entries are {boxes} and "
                f"unperturbed_keys is {excluded}"
            )
        if isinstance(radius, dict):
            named = set(radius)
            not_box = sorted(named & (set(names) - set(boxes)))
            if not_box:
                raise InvalidArgumentError(
                    f"radius names entries {not_box} that are not Box spaces; only Box entries "
                    f"({boxes}) can be perturbed"
                )
            unknown = sorted(named - set(names))
            if unknown:
                raise InvalidArgumentError(
                    f"radius names unknown entries {unknown}; the observation entries are {names}"
                )
            both = sorted(named & set(excluded))
            if both:
                raise InvalidArgumentError(
                    f"entries {both} are both in radius and in unperturbed_keys; remove them "
                    "from one of the two"
                )
            missing = [k for k in keys if k not in named]
            if missing:
                raise InvalidArgumentError(
                    f"radius has no value for the Box entries {missing}; give one per perturbed "
                    "entry, or list the entries to leave alone in unperturbed_keys"
                )
        self.keys = tuple(keys)
        self._shapes = {k: tuple(cast(spaces.Box, space.spaces[k]).shape) for k in keys}
        return [
            _expand(
                radius[k] if isinstance(radius, dict) else radius,
                self._shapes[k],
                f"radius[{k!r}]" if isinstance(radius, dict) else "radius",
            )
            for k in keys
        ]

    # ---------------------------------------------------------------------------- tensors
    def flatten(self, observations: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The perturbed coordinates of a batch, ``(B, D)`` float32 (a view where possible).

        :param observations: ``(B, *shape)`` for a Box space, a dict of such tensors for a Dict.
        """
        if self.keys is None:
            assert isinstance(observations, torch.Tensor)
            return observations.float().reshape(observations.shape[0], -1)
        assert isinstance(observations, Mapping)
        parts = [observations[k].float().flatten(1) for k in self.keys]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def unflatten(
        self,
        z: torch.Tensor,
        observations: torch.Tensor | Mapping[str, torch.Tensor],
        index: torch.Tensor,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Observations for rows ``z`` ``(N, D)`` drawn around the points ``index`` ``(N,)``.

        :param z: perturbed coordinates.
        :param observations: the batch the points come from (for the unperturbed entries).
        :param index: the point each row belongs to.
        :return: ``(N, *shape)`` for a Box space; for a Dict, a dict with every entry.
        """
        n = z.shape[0]
        if self.keys is None:
            return z.reshape(n, *self._shapes[""])
        assert isinstance(observations, Mapping)
        out = {
            k: v.index_select(0, index) for k, v in observations.items() if k not in self._slices
        }
        for k in self.keys:
            out[k] = z[:, self._slices[k]].reshape(n, *self._shapes[k])
        return {k: out[k] for k in observations}

    # ------------------------------------------------------------------------------ scale
    def coordinate_std(
        self, observations: np.ndarray | Mapping[str, np.ndarray], chunk: int = 4096
    ) -> np.ndarray:
        """Per-coordinate standard deviation ``(D,)`` of stored observations.

        Two passes over ``chunk`` rows at a time in float64, so that a large buffer of images is
        never copied whole.

        :param observations: ``(n, *shape)`` array (Box) or dict of such arrays (Dict), e.g. the
            filled part of a replay buffer with its env dimension merged into ``n``.
        :param chunk: rows converted at a time.
        """
        if self.keys is None:
            assert isinstance(observations, np.ndarray)
            arrays = [observations]
        else:
            assert isinstance(observations, Mapping)
            arrays = [np.asarray(observations[k]) for k in self.keys]
        n = len(arrays[0])
        if n == 0:
            raise InvalidArgumentError("cannot measure the observation scale of an empty buffer")

        def rows(start: int) -> np.ndarray:
            parts = [a[start : start + chunk].reshape(-1, math.prod(a.shape[1:])) for a in arrays]
            return np.concatenate(parts, axis=1).astype(np.float64)

        starts = range(0, n, chunk)
        mean = sum(rows(i).sum(axis=0) for i in starts) / n
        var = sum(np.square(rows(i) - mean).sum(axis=0) for i in starts) / n
        return np.sqrt(var)


def _expand(value: float | list[float], shape: tuple[int, ...], what: str) -> np.ndarray:
    """A radius value as ``(prod(shape),)`` float64 (a float is repeated)."""
    size = math.prod(shape)
    if isinstance(value, float | int):
        return np.full(size, float(value))
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size != size:
        raise InvalidArgumentError(
            f"{what} has {arr.size} values but the observation{'' if what == 'radius' else ' entry'}"
            f" has shape {shape}; pass a float or one value per coordinate ({size} values)"
        )
    return arr
