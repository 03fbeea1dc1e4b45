"""Acrobot with adjustable link masses and lengths (and consistent derived quantities)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
from gymnasium.envs.classic_control.acrobot import AcrobotEnv

from robust_rl.envs.params import ParamSpec, PerturbableEnv

__all__ = ["ACROBOT_TARGET_HEIGHT", "NOMINAL_ACROBOT_PARAMS", "PerturbedAcrobotEnv"]

#: Parameters of :class:`PerturbedAcrobotEnv` at their gymnasium ``Acrobot-v1`` values.
NOMINAL_ACROBOT_PARAMS: Mapping[str, float] = {
    "link_mass_1": 1.0,
    "link_mass_2": 1.0,
    "link_length_1": 1.0,
    "link_length_2": 1.0,
}

#: Height (m) above the pivot that the tip must exceed; fixed, whatever the link lengths.
ACROBOT_TARGET_HEIGHT = 1.0

#: Gymnasium's convention ``I = 1 kg m²`` for ``m = 1 kg, l = 1 m``, kept as ``I = m l²``.
_MOI_FACTOR = 1.0
_GRAVITY = 9.8


class PerturbedAcrobotEnv(PerturbableEnv, AcrobotEnv):
    """Acrobot swing-up whose link masses and lengths can be chosen and changed.

    ## Description

    Gymnasium's ``Acrobot-v1`` (Sutton, 1996; dynamics of Sutton and Barto's book): two links
    joined by an actuated elbow hang from a fixed pivot, and torques ``-1, 0, +1`` N m at the
    elbow must swing the tip above a line. The state, observations, the RK4 integration over
    ``dt = 0.2`` s, the velocity limits, the reward (``-1`` per step) and the initial-state
    distribution are gymnasium's.

    What changes is that the four physical parameters are free and every quantity derived from
    them is recomputed, following gymnasium's conventions (which give its constants at the
    nominal values ``m = 1 kg, l = 1 m``):

    * centre of mass of link *i* at mid-length: ``lc_i = l_i / 2`` (gymnasium: 0.5 m);
    * moment of inertia of link *i* about its centre of mass: ``I_i = m_i l_i²`` (gymnasium:
      ``LINK_MOI = 1`` for both links; the ratio ``I / (m l²) = 1`` is kept, so a heavier or
      longer link is a scaled copy of gymnasium's);
    * gymnasium uses one ``LINK_MOI`` for both links; here the two links have their own
      (:attr:`LINK_MOI_1`, :attr:`LINK_MOI_2`), which coincide only when the links do;
    * termination: the tip, at height ``-l_1 cos θ_1 - l_2 cos(θ_1 + θ_2)`` above the pivot,
      rises above :data:`ACROBOT_TARGET_HEIGHT` ``= 1.0`` m, a fixed line (gymnasium's
      ``-cos θ_1 - cos(θ_1 + θ_2) > 1`` for unit links). If ``l_1 + l_2 <= 1`` the line is
      out of reach and the episode only ends by truncation.

    ``link_length_2`` acts through ``lc_2``, ``I_2`` and the tip height; gymnasium's own
    ``_dsdt`` never reads the second length. With the defaults the environment follows
    ``Acrobot-v1`` to floating-point rounding (the equations are written out anew, with
    ``sin θ`` for gymnasium's ``cos(θ - π/2)``; the chaotic dynamics can amplify the last-bit
    differences over long episodes).

    ## Arguments

    | Parameter       | Default | Description                  |
    |-----------------|---------|------------------------------|
    | `link_mass_1`   | `1.0`   | mass of the upper link (kg)  |
    | `link_mass_2`   | `1.0`   | mass of the lower link (kg)  |
    | `link_length_1` | `1.0`   | length of the upper link (m) |
    | `link_length_2` | `1.0`   | length of the lower link (m) |

    Each must be a positive finite number. Truncation after 500 steps (registered ids).

    Registered ids: ``robust_rl/Acrobot-v1`` (nominal), ``robust_rl/AcrobotHeavyTip-v1``
    (``link_mass_2=1.5``) and ``robust_rl/AcrobotDomainRandomized-v1``.
    """

    TASK_NAME = "Acrobot"
    PARAM_SPECS = (
        ParamSpec("link_mass_1", "mass of the upper link (kg)"),
        ParamSpec("link_mass_2", "mass of the lower link (kg)"),
        ParamSpec("link_length_1", "length of the upper link (m)"),
        ParamSpec("link_length_2", "length of the lower link (m)"),
    )

    def __init__(
        self,
        render_mode: str | None = None,
        link_mass_1: float = NOMINAL_ACROBOT_PARAMS["link_mass_1"],
        link_mass_2: float = NOMINAL_ACROBOT_PARAMS["link_mass_2"],
        link_length_1: float = NOMINAL_ACROBOT_PARAMS["link_length_1"],
        link_length_2: float = NOMINAL_ACROBOT_PARAMS["link_length_2"],
    ) -> None:
        self._params: dict[str, float] = self.check_params(
            {
                "link_mass_1": link_mass_1,
                "link_mass_2": link_mass_2,
                "link_length_1": link_length_1,
                "link_length_2": link_length_2,
            }
        )
        super().__init__(render_mode=render_mode)

    # Gymnasium's names, read by its renderer; read-only views of the parameters.
    @property
    def LINK_MASS_1(self) -> float:  # type: ignore[override]
        """Mass of the upper link (kg)."""
        return self._params["link_mass_1"]

    @property
    def LINK_MASS_2(self) -> float:  # type: ignore[override]
        """Mass of the lower link (kg)."""
        return self._params["link_mass_2"]

    @property
    def LINK_LENGTH_1(self) -> float:  # type: ignore[override]
        """Length of the upper link (m)."""
        return self._params["link_length_1"]

    @property
    def LINK_LENGTH_2(self) -> float:  # type: ignore[override]
        """Length of the lower link (m)."""
        return self._params["link_length_2"]

    @property
    def LINK_COM_POS_1(self) -> float:  # type: ignore[override]
        """Distance from the pivot to the upper link's centre of mass, ``l_1 / 2`` (m)."""
        return self._params["link_length_1"] / 2.0

    @property
    def LINK_COM_POS_2(self) -> float:  # type: ignore[override]
        """Distance from the elbow to the lower link's centre of mass, ``l_2 / 2`` (m)."""
        return self._params["link_length_2"] / 2.0

    @property
    def LINK_MOI_1(self) -> float:
        """Moment of inertia of the upper link about its centre of mass, ``m_1 l_1²``."""
        return _MOI_FACTOR * self._params["link_mass_1"] * self._params["link_length_1"] ** 2

    @property
    def LINK_MOI_2(self) -> float:
        """Moment of inertia of the lower link about its centre of mass, ``m_2 l_2²``."""
        return _MOI_FACTOR * self._params["link_mass_2"] * self._params["link_length_2"] ** 2

    @property
    def LINK_MOI(self) -> float:  # type: ignore[override]
        """Gymnasium's single moment of inertia; defined only while both links have the same."""
        if self.LINK_MOI_1 != self.LINK_MOI_2:
            raise AttributeError(
                "LINK_MOI: the two links have different moments of inertia here; "
                "read LINK_MOI_1 and LINK_MOI_2"
            )
        return self.LINK_MOI_1

    def _read_params(self) -> dict[str, float]:
        return {name: self._params[name] for name in self.param_names()}

    def _write_params(self, params: dict[str, float]) -> None:
        self._params.update(params)

    def tip_height(self) -> float:
        """Height of the free end above the pivot (m) in the current state."""
        state = cast(np.ndarray, self.state)  # set by reset; gymnasium only types it None
        th1, th2 = float(state[0]), float(state[1])
        return -self.LINK_LENGTH_1 * np.cos(th1) - self.LINK_LENGTH_2 * np.cos(th1 + th2)

    def _terminal(self) -> bool:
        return bool(self.tip_height() > ACROBOT_TARGET_HEIGHT)

    def _dsdt(self, s_augmented: np.ndarray) -> tuple[float, float, float, float, float]:
        """Time derivative of ``(θ1, θ2, θ̇1, θ̇2, torque)`` (the torque is held constant).

        Equations of motion of the acrobot (Spong, 1995; Sutton and Barto, 2018), with the
        inertia about each link's centre of mass. Gymnasium's optional ``book_or_nips="nips"``
        variant drops the ``θ̇1²`` term of the elbow equation, as there.
        """
        m1, m2 = self.LINK_MASS_1, self.LINK_MASS_2
        l1 = self.LINK_LENGTH_1
        c1, c2 = self.LINK_COM_POS_1, self.LINK_COM_POS_2
        i1, i2 = self.LINK_MOI_1, self.LINK_MOI_2
        th1, th2, w1, w2, torque = (s_augmented[k] for k in range(5))
        cos2, sin2 = np.cos(th2), np.sin(th2)
        # Inertia terms (d1: whole arm about the pivot; d2: coupling with the elbow).
        d1 = m1 * c1**2 + m2 * (l1**2 + c2**2 + 2 * l1 * c2 * cos2) + i1 + i2
        d2 = m2 * (c2**2 + l1 * c2 * cos2) + i2
        # Gravity and velocity-product terms; sin(θ) = cos(θ - π/2) measures from hanging down.
        phi2 = m2 * c2 * _GRAVITY * np.sin(th1 + th2)
        phi1 = (
            -m2 * l1 * c2 * sin2 * (w2**2 + 2 * w2 * w1)
            + (m1 * c1 + m2 * l1) * _GRAVITY * np.sin(th1)
            + phi2
        )
        coriolis = 0.0 if self.book_or_nips == "nips" else m2 * l1 * c2 * w1**2 * sin2
        acc2 = (torque + d2 / d1 * phi1 - coriolis - phi2) / (m2 * c2**2 + i2 - d2**2 / d1)
        acc1 = -(d2 * acc2 + phi1) / d1
        return w1, w2, acc1, acc2, 0.0
