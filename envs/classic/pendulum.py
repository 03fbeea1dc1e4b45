"""Pendulum with adjustable gravity, mass, length and torque limit."""

from __future__ import annotations

from collections.abc import Mapping

from gymnasium.envs.classic_control.pendulum import PendulumEnv

from robust_rl.envs.params import ParamSpec, PerturbableEnv

__all__ = ["NOMINAL_PENDULUM_PARAMS", "PerturbedPendulumEnv"]

#: Physics parameters of :class:`PerturbedPendulumEnv` at their gymnasium ``Pendulum-v1`` values.
NOMINAL_PENDULUM_PARAMS: Mapping[str, float] = {"g": 10.0, "m": 1.0, "l": 1.0, "max_torque": 2.0}

_MAX_TORQUE_REASON = (
    "the action space Box(-2.0, 2.0) is fixed at construction, so the torque limit can only be "
    "lowered: a larger limit could never be commanded"
)


class PerturbedPendulumEnv(PerturbableEnv, PendulumEnv):
    """Pendulum swing-up whose physics parameters can be chosen and changed.

    ## Description

    Gymnasium's ``Pendulum-v1``: a rigid rod of mass ``m`` and length ``l``, hinged at one
    end, is swung up and balanced by a torque ``u`` at the hinge. With ``θ`` the angle from
    upright, the explicit Euler step (``dt = 0.05`` s) is

    .. math::

        \\dot\\theta_{t+1} = \\mathrm{clip}\\Big(\\dot\\theta_t + \\Big(\\frac{3g}{2l}\\sin\\theta_t
        + \\frac{3}{m l^2} u\\Big) dt,\\ \\pm 8\\Big), \\qquad
        \\theta_{t+1} = \\theta_t + \\dot\\theta_{t+1}\\,dt,

    with ``u`` the action clipped to ``[-max_torque, max_torque]``. Dynamics, spaces, reward
    ``-(θ² + 0.1 θ̇² + 0.001 u²)`` and the initial-state distribution are gymnasium's; with the
    default arguments the environment reproduces ``Pendulum-v1`` step for step. The four
    parameters are read by every step, so :meth:`set_params` takes effect at once.

    ## Action Space

    ``Box(-2.0, 2.0, (1,), float32)``: the torque (N m), always that of ``Pendulum-v1``.
    ``max_torque`` only clips it further: it may be lowered (a weaker motor) but not raised
    above 2.0, since the action space is fixed at construction and an agent could never ask
    for more.

    ## Observation Space

    ``Box([-1, -1, -8], [1, 1, 8], (3,), float32)``: ``cos θ``, ``sin θ``, ``θ̇``.

    ## Episode End

    Truncation after 200 steps (registered ids); the episode never terminates.

    ## Arguments

    | Parameter    | Default | Accepted    | Description                               |
    |--------------|---------|-------------|-------------------------------------------|
    | `g`          | `10.0`  | `> 0`       | gravitational acceleration (m/s²)         |
    | `m`          | `1.0`   | `> 0`       | mass of the rod (kg)                      |
    | `l`          | `1.0`   | `> 0`       | length of the rod (m)                     |
    | `max_torque` | `2.0`   | `(0, 2.0]`  | torque limit applied to the action (N m)  |

    Registered ids: ``robust_rl/Pendulum-v1`` (nominal), ``robust_rl/PendulumHeavy-v1``
    (``m=1.5``), ``robust_rl/PendulumWeakMotor-v1`` (``max_torque=1.5``) and
    ``robust_rl/PendulumDomainRandomized-v1``.

    ## Version History

    * v1: built on gymnasium's ``Pendulum-v1``.
    """

    TASK_NAME = "Pendulum"
    PARAM_SPECS = (
        ParamSpec("g", "gravitational acceleration (m/s²)"),
        ParamSpec("m", "mass of the rod (kg)"),
        ParamSpec("l", "length of the rod (m)"),
        ParamSpec(
            "max_torque",
            "torque limit (N m)",
            upper=NOMINAL_PENDULUM_PARAMS["max_torque"],
            upper_reason=_MAX_TORQUE_REASON,
        ),
    )

    def __init__(
        self,
        render_mode: str | None = None,
        g: float = NOMINAL_PENDULUM_PARAMS["g"],
        m: float = NOMINAL_PENDULUM_PARAMS["m"],
        l: float = NOMINAL_PENDULUM_PARAMS["l"],  # noqa: E741  (gymnasium's name)
        max_torque: float = NOMINAL_PENDULUM_PARAMS["max_torque"],
    ) -> None:
        checked = self.check_params({"g": g, "m": m, "l": l, "max_torque": max_torque})
        super().__init__(render_mode=render_mode, g=checked["g"])  # builds Box(-2, 2)
        self._write_params(checked)

    def _read_params(self) -> dict[str, float]:
        return {
            "g": float(self.g),
            "m": float(self.m),
            "l": float(self.l),
            "max_torque": float(self.max_torque),
        }

    def _write_params(self, params: dict[str, float]) -> None:
        for name, value in params.items():
            setattr(self, name, value)
