"""The interface shared by every perturbable environment: named physics parameters.

Every environment of :mod:`robust_rl.envs` whose physics can be changed mixes
:class:`PerturbableEnv` into its gymnasium class and so offers the interface of RRLS
(Zouitine et al., 2024):

* ``env.unwrapped.get_params() -> dict[str, float]``: the values the simulator is using now;
* ``env.unwrapped.set_params(**params)``: change some of them (atomically: all or none);
* ``env.reset(options={"params": {...}})``: set them before the reset;
* ``info["params"]`` returned by ``reset``: the values of the new episode;
* ``env.unwrapped.get_physics_state()``: the simulator's state as a float64 vector, and
  ``info["physics_state"]`` returned by ``step``: that state *before* the step, i.e. the state
  ``s`` of the transition ``(s, a, s')`` (the dynamics-set targets re-simulate from it);
* ``env.unwrapped.task()``: the task's record (:class:`~robust_rl.envs.tasks.TaskSpec`).

An unknown name or an invalid value raises :class:`~robust_rl.errors.InvalidArgumentError`
(a :class:`ValueError`) that names the parameter and what is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from robust_rl.errors import InvalidArgumentError

if TYPE_CHECKING:
    from robust_rl.envs.tasks import TaskSpec

__all__ = ["ParamSpec", "PerturbableEnv", "check_ranges", "split_reset_options"]


@dataclass(frozen=True)
class ParamSpec:
    """One physics parameter: its name, meaning and accepted values.

    A value is accepted when it is a finite number ``> 0`` and, if :attr:`upper` is set,
    ``<= upper``.

    :param name: the keyword of ``set_params``.
    :param description: meaning and unit (the unit last, in parentheses), for documentation,
        error messages and plot labels.
    :param upper: inclusive upper bound, or ``None`` for none.
    :param upper_reason: why there is an upper bound (quoted in the error message).
    """

    name: str
    description: str
    upper: float | None = None
    upper_reason: str = ""

    @property
    def unit(self) -> str:
        """The unit: what the description ends with in parentheses (``""`` if it does not).

        >>> ParamSpec("gravity", "gravitational acceleration (m/s²)").unit
        'm/s²'
        """
        text = self.description.rstrip()
        if not text.endswith(")") or "(" not in text:
            return ""
        return text[text.rindex("(") + 1 : -1]

    def accepted(self) -> str:
        """The accepted values, in words."""
        if self.upper is None:
            return "a positive finite number"
        return f"a finite number in (0, {self.upper}]"

    def check(self, value: Any) -> float:
        """Return ``value`` as a float; raise :class:`InvalidArgumentError` naming the parameter."""
        try:
            x = math.nan if isinstance(value, bool | str) else float(value)
        except (TypeError, ValueError):
            x = math.nan
        if not (math.isfinite(x) and x > 0.0) or (self.upper is not None and x > self.upper):
            reason = (
                f" ({self.upper_reason})" if self.upper is not None and self.upper_reason else ""
            )
            raise InvalidArgumentError(
                f"{self.name} must be {self.accepted()}, got {value!r}{reason}"
            )
        return x


def check_ranges(
    ranges: Mapping[str, tuple[float, float]], accepted: tuple[str, ...] | None = None
) -> dict[str, tuple[float, float]]:
    """Validate parameter ranges ``{name: (low, high)}``: a non-empty mapping of positive finite
    bounds with ``low <= high`` (and names among ``accepted`` when given).

    :return: the ranges as float pairs.
    :raises InvalidArgumentError: naming the entry and what is accepted.
    """
    over = f" over {', '.join(accepted)}" if accepted else ""
    if not isinstance(ranges, Mapping) or len(ranges) == 0:
        raise InvalidArgumentError(
            f"ranges must be a non-empty mapping {{name: (low, high)}}{over}; got {ranges!r}"
        )
    checked: dict[str, tuple[float, float]] = {}
    for name, bounds in ranges.items():
        if accepted is not None and name not in accepted:
            raise InvalidArgumentError(
                f"ranges: unknown parameter {name!r}; accepted names: {', '.join(accepted)}"
            )
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"ranges[{name!r}] must be a pair (low, high) of numbers, got {bounds!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low > 0.0 and high > 0.0):
            raise InvalidArgumentError(
                f"ranges[{name!r}] bounds must be positive finite numbers, got ({low}, {high})"
            )
        if low > high:
            raise InvalidArgumentError(
                f"ranges[{name!r}]: low must be <= high, got low={low} > high={high}"
            )
        checked[name] = (low, high)
    return checked


def split_reset_options(
    options: Mapping[str, Any] | None, accepted: tuple[str, ...]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Separate ``options["params"]`` from the other reset options.

    :param options: the ``options`` argument of ``reset`` (``None`` or a mapping).
    :param accepted: the parameter names, for the error message.
    :return: ``(other_options, params)``; ``other_options`` is ``None`` when nothing else is left.
    :raises InvalidArgumentError: if ``options`` or ``options["params"]`` is not a mapping.
    """
    if options is None:
        return None, {}
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f"options must be a dict or None, got {options!r}")
    rest = {k: v for k, v in options.items() if k != "params"}
    params = options.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(
            "options['params'] must be a mapping {name: value} over "
            f"{', '.join(accepted)}; got {params!r}"
        )
    return (rest or None), dict(params)


class PerturbableEnv:
    """Mixin giving a gymnasium environment named, validated physics parameters.

    Put it first among the bases (``class PerturbedX(PerturbableEnv, XEnv)``) and define:

    * :attr:`TASK_NAME`, used in error messages;
    * :attr:`PARAM_SPECS`, the parameters in a fixed order;
    * :meth:`_read_params`, which reads the values from the simulator;
    * :meth:`_write_params`, which writes already validated values into the simulator.

    The mixin provides :meth:`check_params`, :meth:`set_params`, :meth:`get_params` and a
    ``reset`` that applies ``options["params"]`` before resetting and reports
    ``info["params"]``.
    """

    TASK_NAME: ClassVar[str] = ""
    PARAM_SPECS: ClassVar[tuple[ParamSpec, ...]] = ()

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The names accepted by :meth:`set_params`, in a fixed order."""
        return tuple(spec.name for spec in cls.PARAM_SPECS)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> dict[str, float]:
        """Validate ``params`` without applying them.

        :param params: ``{name: value}`` over :meth:`param_names`.
        :return: the values as floats.
        :raises InvalidArgumentError: on an unknown name (the message lists the accepted
            names) or a value that is not accepted (the message names the parameter and the
            accepted values).
        """
        specs = {spec.name: spec for spec in cls.PARAM_SPECS}
        checked: dict[str, float] = {}
        for name, value in params.items():
            if name not in specs:
                raise InvalidArgumentError(
                    f"unknown {cls.TASK_NAME} parameter {name!r}; accepted names: "
                    f"{', '.join(cls.param_names())}"
                )
            checked[name] = specs[name].check(value)
        return checked

    def set_params(self, **params: float) -> None:
        """Change some physics parameters; the others keep their values.

        The change is atomic: either every value is valid and all are applied, or
        :class:`ValueError` is raised and nothing changes. It takes effect from the next
        ``step``, also in the middle of an episode.

        :param params: ``name=value`` pairs over :meth:`param_names`.
        :raises ValueError: on an unknown name or an invalid value.
        """
        checked = self.check_params(params)
        if checked:
            self._write_params(checked)

    def get_params(self) -> dict[str, float]:
        """The physics parameters the simulator is using now, read back from it."""
        return self._read_params()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the episode; ``options["params"]`` are applied first.

        :param seed: seeds the environment's ``np_random``.
        :param options: the wrapped environment's reset options, plus an optional
            ``"params"`` mapping passed to :meth:`set_params` before the reset.
        :return: ``(observation, info)`` with ``info["params"]`` the episode's parameters.
        :raises ValueError: if ``options["params"]`` is not a mapping of valid parameters.
        """
        rest, params = split_reset_options(options, self.param_names())
        self.set_params(**params)
        obs, info = super().reset(seed=seed, options=rest)  # type: ignore[misc]
        info = dict(info)
        info["params"] = self.get_params()
        return obs, info

    def get_physics_state(self) -> np.ndarray:
        """A float64 copy of the simulator's state (classic control: gymnasium's ``state``).

        Together with the action and the parameters it determines the next step; it is what
        :mod:`robust_rl.envs.simulators` takes.
        """
        return np.array(self.state, dtype=np.float64)

    def set_physics_state(self, state: Any) -> None:
        """Put the simulator into ``state`` (what :meth:`get_physics_state` returns), e.g. to
        step from a chosen state; the episode's step count and parameters are unchanged."""
        self.state: Any = np.array(state, dtype=self._STATE_DTYPE)

    #: dtype the env keeps its classic-control ``state`` in
    _STATE_DTYPE: ClassVar[type] = np.float64

    def physics_spaces(self) -> tuple[Any, Any]:
        """The observation and action spaces of the environment itself (under any wrappers): what
        the batched simulators observe and take."""
        return self.observation_space, self.action_space  # type: ignore[attr-defined]

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """The wrapped environment's step; ``info["physics_state"]`` is the state before it."""
        if getattr(self, "state", None) is None and not hasattr(self, "data"):
            return self._physics_step(action)  # not reset: the env's own error
        before = self.get_physics_state()
        obs, reward, terminated, truncated, info = self._physics_step(action)
        info = dict(info)
        info["physics_state"] = before
        return obs, reward, terminated, truncated, info

    def _physics_step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """The simulation step itself: the gymnasium class's ``step`` unless overridden."""
        return super().step(action)  # type: ignore[misc]

    @classmethod
    def task(cls) -> TaskSpec:
        """The record of the task this environment class implements (looked up by its entry
        point in :data:`robust_rl.envs.tasks.TASKS`)."""
        from robust_rl.envs.tasks import task_of_class

        return task_of_class(cls)

    # -- to be defined by each environment ---------------------------------------------------

    def _read_params(self) -> dict[str, float]:
        raise NotImplementedError

    def _write_params(self, params: dict[str, float]) -> None:
        raise NotImplementedError
