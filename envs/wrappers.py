"""Wrappers over environments with adjustable physics (``set_params`` / ``get_params``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, cast

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType
from gymnasium.envs.registration import load_env_creator

from robust_rl.envs.cartpole import PerturbedCartPoleEnv
from robust_rl.envs.params import check_ranges
from robust_rl.envs.tasks import DEFAULT_CARTPOLE_RANGES, get_task
from robust_rl.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_CARTPOLE_RANGES",
    "DomainRandomization",
    "make_domain_randomized",
    "make_domain_randomized_cartpole",
]

#: Accepted values of ``DomainRandomization(distribution=...)``.
_DISTRIBUTIONS = ("uniform", "log-uniform")


class _HasParams(Protocol):
    """What :class:`DomainRandomization` needs of the unwrapped environment."""

    def set_params(self, **params: float) -> None: ...

    def get_params(self) -> dict[str, float]: ...


class DomainRandomization(
    gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs
):
    """Redraw physics parameters at every reset (domain randomisation, Tobin et al., 2017).

    Works on any environment with the :class:`~robust_rl.envs.params.PerturbableEnv`
    interface (every task of :mod:`robust_rl.envs`, or an RRLS-style environment with
    ``set_params``/``get_params``). At each :meth:`reset` the wrapped environment is reset
    first (which seeds its ``np_random`` when a seed is given), then every parameter named in
    ``ranges`` is drawn independently from the environment's own ``np_random`` (never from the
    global ``numpy.random``) and applied with ``env.unwrapped.set_params``. The sequence of
    physics is therefore a function of the reset seed alone, and each episode's initial state
    is the one the unwrapped environment would have had for that seed (the initial states of
    these tasks do not depend on the physics). Parameters not named in ``ranges`` keep their
    current values (those of ``options["params"]`` if given). All the parameters, as returned
    by ``get_params``, are reported in ``info["params"]`` (and, under their former name, in
    ``info["physics"]``).

    * ``"uniform"``: :math:`p \\sim U(\\mathrm{low}, \\mathrm{high})`.
    * ``"log-uniform"``: :math:`\\log p \\sim U(\\log \\mathrm{low}, \\log \\mathrm{high})`,
      which suits scale parameters such as masses (a factor 2 up is as likely as a factor 2 down).

    ```python
    >>> import gymnasium as gym
    >>> import robust_rl.envs
    >>> from robust_rl.envs import DomainRandomization
    >>> env = DomainRandomization(gym.make("robust_rl/CartPole-v1"), {"masspole": (0.05, 1.0)})
    >>> obs, info = env.reset(seed=0)
    >>> 0.05 <= info["physics"]["masspole"] <= 1.0
    True

    ```

    :param env: an environment whose ``unwrapped`` has ``set_params(**kw)`` and
        ``get_params() -> dict`` (e.g. :class:`~robust_rl.envs.PerturbedCartPoleEnv`).
    :param ranges: ``{name: (low, high)}`` with ``0 < low <= high``; ``low == high`` pins a value.
        Both bounds must be values the environment accepts (checked with its
        ``check_params`` when it has one, e.g. Pendulum's ``max_torque <= 2``).
    :param distribution: ``"uniform"`` or ``"log-uniform"``.
    :raises ValueError: if ``env`` has no ``set_params``/``get_params``, a name is not one of its
        parameters, a bound is not a positive finite number or not accepted by the
        environment, ``low > high``, or ``distribution`` is not accepted.
    """

    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        ranges: Mapping[str, tuple[float, float]],
        distribution: Literal["uniform", "log-uniform"] = "uniform",
    ) -> None:
        base = env.unwrapped
        if not (
            callable(getattr(base, "set_params", None))
            and callable(getattr(base, "get_params", None))
        ):
            raise InvalidArgumentError(
                f"env: {type(base).__name__} has no set_params/get_params methods; "
                "DomainRandomization needs an environment with adjustable physics such as "
                "robust_rl.envs.PerturbedCartPoleEnv"
            )
        if distribution not in _DISTRIBUTIONS:
            raise InvalidArgumentError(
                f"distribution must be one of {', '.join(map(repr, _DISTRIBUTIONS))}, "
                f"got {distribution!r}"
            )
        checked = check_ranges(ranges, tuple(cast(_HasParams, base).get_params()))
        check_params = getattr(base, "check_params", None)
        if callable(check_params):
            for name, (low, high) in checked.items():
                try:
                    check_params({name: low})
                    check_params({name: high})
                except ValueError as exc:
                    raise InvalidArgumentError(f"ranges[{name!r}]: {exc}") from None
        gym.utils.RecordConstructorArgs.__init__(
            self, ranges={k: tuple(v) for k, v in checked.items()}, distribution=distribution
        )
        gym.Wrapper.__init__(self, env)
        self.ranges: dict[str, tuple[float, float]] = checked
        self.distribution = distribution

    def sample_params(self) -> dict[str, float]:
        """Draw one value per parameter in ``ranges`` from ``self.np_random`` (not applied)."""
        rng = self.np_random
        drawn: dict[str, float] = {}
        for name, (low, high) in self.ranges.items():
            if self.distribution == "log-uniform":
                drawn[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            else:
                drawn[name] = float(rng.uniform(low, high))
            # exp(log(x)) may leave [low, high] by one ulp; keep the documented guarantee.
            drawn[name] = min(max(drawn[name], low), high)
        return drawn

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment, then draw and apply new physics parameters.

        :param seed: seeds the environment's ``np_random`` (initial state and parameters).
        :param options: passed on to the wrapped environment's ``reset``.
        :return: ``(observation, info)`` with ``info["params"]`` (and ``info["physics"]``) the
            parameters of the episode.
        """
        obs, info = self.env.reset(seed=seed, options=options)
        base = cast(_HasParams, self.env.unwrapped)
        base.set_params(**self.sample_params())
        info = dict(info)
        info["params"] = base.get_params()
        info["physics"] = dict(info["params"])
        return obs, info


def make_domain_randomized_cartpole(
    ranges: Mapping[str, tuple[float, float]] | None = None,
    distribution: Literal["uniform", "log-uniform"] = "log-uniform",
    render_mode: str | None = None,
) -> DomainRandomization[Any, Any]:
    """A :class:`PerturbedCartPoleEnv` wrapped in :class:`DomainRandomization`.

    This is the entry point of ``robust_rl/CartPoleDomainRandomized-v1`` (which adds the
    500-step time limit); it is the baseline to try instead of a robust agent.

    :param ranges: parameter ranges; ``None`` uses :data:`DEFAULT_CARTPOLE_RANGES`.
    :param distribution: ``"uniform"`` or ``"log-uniform"`` (default).
    :param render_mode: passed on to :class:`PerturbedCartPoleEnv`.
    """
    return DomainRandomization(
        PerturbedCartPoleEnv(render_mode=render_mode),
        DEFAULT_CARTPOLE_RANGES if ranges is None else ranges,
        distribution=distribution,
    )


def make_domain_randomized(
    task: str,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    distribution: Literal["uniform", "log-uniform"] | None = None,
    **env_kwargs: Any,
) -> DomainRandomization[Any, Any]:
    """A task's environment wrapped in :class:`DomainRandomization` over its uncertainty set.

    This is the entry point of the ``robust_rl/<Task>DomainRandomized-v<N>`` ids (which add
    the task's time limit).

    :param task: a nominal id, one of :data:`robust_rl.envs.TASK_IDS`.
    :param ranges: parameter ranges; ``None`` uses the task's uncertainty set
        (:data:`robust_rl.envs.UNCERTAINTY_SETS`).
    :param distribution: ``"uniform"`` or ``"log-uniform"``; ``None`` uses the task's
        (uniform, except CartPole's log-uniform baseline).
    :param env_kwargs: passed to the environment (e.g. ``render_mode`` or fixed parameters).
    :raises UnknownNameError: if ``task`` is not a known nominal id.
    :raises MujocoNotInstalledError: for a MuJoCo task when ``mujoco`` is not installed.
    """
    spec = get_task(task)
    env = cast("gym.Env[Any, Any]", load_env_creator(spec.entry_point)(**env_kwargs))
    return DomainRandomization(
        env,
        spec.uncertainty_set if ranges is None else ranges,
        distribution=spec.distribution if distribution is None else distribution,
    )
