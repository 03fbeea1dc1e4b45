"""CartPole with adjustable physics, for evaluating robustness to model misspecification."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from robust_rl.envs.params import ParamSpec, PerturbableEnv

__all__ = ["CARTPOLE_PARAM_NAMES", "NOMINAL_CARTPOLE_PARAMS", "PerturbedCartPoleEnv"]

#: Physics parameters of :class:`PerturbedCartPoleEnv` at their gymnasium ``CartPole-v1`` values.
NOMINAL_CARTPOLE_PARAMS: Mapping[str, float] = {
    "gravity": 9.8,
    "masscart": 1.0,
    "masspole": 0.1,
    "length": 0.5,
    "force_mag": 10.0,
}

#: Names accepted by :meth:`PerturbedCartPoleEnv.set_params`, in a fixed order.
CARTPOLE_PARAM_NAMES: tuple[str, ...] = tuple(NOMINAL_CARTPOLE_PARAMS)


_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("gravity", "gravitational acceleration (m/s²)"),
    ParamSpec("masscart", "mass of the cart (kg)"),
    ParamSpec("masspole", "mass of the pole (kg)"),
    ParamSpec("length", "half the length of the pole (m)"),
    ParamSpec("force_mag", "magnitude of the force of an action (N)"),
)


def _check_param(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise :class:`ValueError` naming ``name``."""
    return PerturbedCartPoleEnv.check_params({name: value})[name]


def _physics_property(name: str, doc: str) -> property:
    """A validated physics parameter stored in ``self._params[name]``."""

    def fget(self: PerturbedCartPoleEnv) -> float:
        return self._params[name]

    def fset(self: PerturbedCartPoleEnv, value: float) -> None:
        self._params[name] = _check_param(name, value)

    return property(fget, fset, doc=doc)


def _derived_property(name: str, doc: str) -> property:
    """A read-only quantity recomputed from the parameters on every access.

    Assigning the value it already has is accepted (gymnasium's ``CartPoleEnv.__init__`` does so),
    any other assignment raises :class:`AttributeError`.
    """

    def fget(self: PerturbedCartPoleEnv) -> float:
        return getattr(self, f"_compute_{name}")()

    def fset(self: PerturbedCartPoleEnv, value: float) -> None:
        if not math.isclose(float(value), fget(self), rel_tol=1e-12, abs_tol=0.0):
            raise AttributeError(
                f"{name} is derived from the physics parameters and cannot be set; "
                "use set_params(masscart=..., masspole=..., length=...) instead"
            )

    return property(fget, fset, doc=doc)


class PerturbedCartPoleEnv(PerturbableEnv, CartPoleEnv):
    """CartPole whose physics parameters can be chosen and changed.

    ## Description

    Gymnasium's ``CartPole-v1`` (Barto, Sutton and Anderson, 1983): a pole is attached by an
    un-actuated joint to a cart moving along a frictionless track, and the agent balances it by
    pushing the cart left or right. The dynamics, the Euler integrator (``tau = 0.02`` s), the
    spaces, the initial-state distribution, the reward and the termination thresholds are
    inherited unchanged from :class:`gymnasium.envs.classic_control.cartpole.CartPoleEnv`; with
    the default arguments the environment reproduces ``CartPole-v1`` exactly, step for step, for
    the same seed and actions.

    What changes is that the five physics parameters ``gravity``, ``masscart``, ``masspole``,
    ``length`` and ``force_mag`` are constructor arguments and can be changed between (or during)
    episodes with :meth:`set_params` (or ``reset(options={"params": {...}})``, which applies them
    before the reset; ``info["params"]`` reports them, see
    :class:`robust_rl.envs.params.PerturbableEnv`). The derived quantities ``total_mass`` and
    ``polemass_length`` are read-only properties recomputed from the parameters on every access
    (stock CartPole computes them once in ``__init__``, so changing a mass afterwards silently
    has no effect on the dynamics). This makes the environment suitable for testing a policy
    trained on the nominal MDP against perturbed MDPs, and for domain randomisation (see
    :class:`robust_rl.envs.DomainRandomization`).

    ## Action Space

    ``Discrete(2)``: ``0`` pushes the cart to the left, ``1`` to the right, with a force of
    ``force_mag`` newtons.

    ## Observation Space

    ``Box(-high, high, (4,), float32)`` with ``high = [4.8, inf, 0.418, inf]``: cart position,
    cart velocity, pole angle (radians) and pole angular velocity.

    ## Rewards

    ``+1`` for every step taken, including the terminating step.

    ## Starting State

    Every state variable is drawn uniformly from ``(-0.05, 0.05)`` with ``self.np_random``;
    ``reset(options={"low": ..., "high": ...})`` changes the bounds, as in gymnasium.

    ## Episode End

    1. Termination: the pole angle leaves ``±12°`` (``±0.2095`` rad).
    2. Termination: the cart position leaves ``±2.4``.
    3. Truncation: 500 steps, for the registered ``robust_rl/CartPole*-v1`` ids (the
       ``TimeLimit`` wrapper added by :func:`gymnasium.make`).

    ## Arguments

    | Parameter     | Type    | Default | Description                                            |
    |---------------|---------|---------|--------------------------------------------------------|
    | `gravity`     | float   | `9.8`   | gravitational acceleration (m/s²)                      |
    | `masscart`    | float   | `1.0`   | mass of the cart (kg)                                  |
    | `masspole`    | float   | `0.1`   | mass of the pole (kg)                                  |
    | `length`      | float   | `0.5`   | *half* the length of the pole (m), as in gymnasium     |
    | `force_mag`   | float   | `10.0`  | magnitude of the force applied by an action (N)        |
    | `render_mode` | str     | `None`  | ``"human"`` or ``"rgb_array"`` (needs ``pygame``)      |

    Every physics parameter must be a positive finite number, otherwise :class:`ValueError` is
    raised naming it.

    ```python
    >>> import gymnasium as gym
    >>> import robust_rl.envs
    >>> env = gym.make("robust_rl/CartPoleHeavyPole-v1")
    >>> env.unwrapped.get_params()["masspole"]
    2.0
    >>> env.unwrapped.set_params(masspole=0.5)
    >>> round(env.unwrapped.total_mass, 6)
    1.5

    ```

    Registered ids (all with ``max_episode_steps=500`` and ``reward_threshold=475.0``):
    ``robust_rl/CartPole-v1`` (nominal), ``robust_rl/CartPoleHeavyPole-v1`` (``masspole=2.0``),
    ``robust_rl/CartPoleShortPole-v1`` (``length=0.25``), ``robust_rl/CartPoleStrongGravity-v1``
    (``gravity=24.5``) and ``robust_rl/CartPoleDomainRandomized-v1``.

    ## Version History

    * v1: initial version, built on gymnasium's ``CartPole-v1`` (500-step limit).
    """

    TASK_NAME = "CartPole"
    PARAM_SPECS = _SPECS

    gravity = _physics_property("gravity", "Gravitational acceleration (m/s²).")
    masscart = _physics_property("masscart", "Mass of the cart (kg).")
    masspole = _physics_property("masspole", "Mass of the pole (kg).")
    length = _physics_property("length", "Half the length of the pole (m).")
    force_mag = _physics_property("force_mag", "Magnitude of the force of an action (N).")
    total_mass = _derived_property("total_mass", "``masscart + masspole`` (read-only).")
    polemass_length = _derived_property("polemass_length", "``masspole * length`` (read-only).")

    def __init__(
        self,
        gravity: float = NOMINAL_CARTPOLE_PARAMS["gravity"],
        masscart: float = NOMINAL_CARTPOLE_PARAMS["masscart"],
        masspole: float = NOMINAL_CARTPOLE_PARAMS["masspole"],
        length: float = NOMINAL_CARTPOLE_PARAMS["length"],
        force_mag: float = NOMINAL_CARTPOLE_PARAMS["force_mag"],
        render_mode: str | None = None,
    ) -> None:
        requested = {
            "gravity": gravity,
            "masscart": masscart,
            "masspole": masspole,
            "length": length,
            "force_mag": force_mag,
        }
        # Validate before anything else so that a bad argument never half-builds the env.
        checked = {name: _check_param(name, value) for name, value in requested.items()}
        self._params: dict[str, float] = dict(NOMINAL_CARTPOLE_PARAMS)
        super().__init__(render_mode=render_mode)
        self._params.update(checked)

    def _compute_total_mass(self) -> float:
        return self._params["masscart"] + self._params["masspole"]

    def _compute_polemass_length(self) -> float:
        return self._params["masspole"] * self._params["length"]

    def _read_params(self) -> dict[str, float]:
        return {name: self._params[name] for name in CARTPOLE_PARAM_NAMES}

    def _write_params(self, params: dict[str, float]) -> None:
        self._params.update(params)
