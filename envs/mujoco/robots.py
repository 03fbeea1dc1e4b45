"""The perturbable MuJoCo v5 robots: InvertedPendulum, Hopper, HalfCheetah and Walker2d.

Each class is gymnasium's v5 environment (same model, spaces, reward, termination, reset
noise; identical step for step at the nominal parameters) with body masses and, for the
walkers, the floor friction as parameters; :mod:`robust_rl.envs.mujoco.base` says exactly what
a change does to the model. Any other keyword argument is passed to the gymnasium class.
Importing this module needs ``mujoco`` (``pip install "robust-rl[mujoco]"``).
"""

from __future__ import annotations

from robust_rl.envs.mujoco.base import PerturbedMujocoEnv

# The gymnasium MuJoCo modules import mujoco; base has already checked that it is there.
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv  # isort: skip
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv  # isort: skip
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv  # isort: skip
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv  # isort: skip

from robust_rl.envs.mujoco.specs import HALF_CHEETAH, HOPPER, INVERTED_PENDULUM, WALKER2D

__all__ = [
    "PerturbedHalfCheetahEnv",
    "PerturbedHopperEnv",
    "PerturbedInvertedPendulumEnv",
    "PerturbedWalker2dEnv",
]


class PerturbedInvertedPendulumEnv(PerturbedMujocoEnv, InvertedPendulumEnv):
    """Gymnasium's ``InvertedPendulum-v5`` with adjustable pole and cart masses.

    A cart on a rail balances a hinged pole; the action is the force on the cart. Rewards
    ``+1`` per step while the pole is within 0.2 rad of upright (termination otherwise),
    truncation after 1000 steps (registered ids).

    | Parameter   | Nominal (kg) | Body   |
    |-------------|--------------|--------|
    | `pole_mass` | 5.0186       | `pole` |
    | `cart_mass` | 10.472       | `cart` |

    A mass change also scales that body's inertia (same shape, different density) and
    refreshes MuJoCo's derived constants; the geoms have no contacts, so there is no friction
    parameter. Uncertainty set (M2TD3/RRLS): ``pole_mass ∈ [1, 31]``, ``cart_mass ∈ [1, 11]``.

    Registered ids: ``robust_rl/InvertedPendulum-v5`` (nominal),
    ``robust_rl/InvertedPendulumHeavyPole-v5`` (``pole_mass=20``, four times nominal: the
    pole falls faster and needs larger pushes) and
    ``robust_rl/InvertedPendulumDomainRandomized-v5`` (uniform over the uncertainty set).

    :param pole_mass: mass of the pole (kg), ``None`` for the model's.
    :param cart_mass: mass of the cart (kg), ``None`` for the model's.
    :param kwargs: passed to gymnasium's ``InvertedPendulumEnv``.
    """

    ROBOT = INVERTED_PENDULUM


class PerturbedHopperEnv(PerturbedMujocoEnv, HopperEnv):
    """Gymnasium's ``Hopper-v5`` with adjustable segment masses and friction.

    A one-legged planar robot (torso, thigh, leg, foot; three hinge motors) hops forward.
    Reward, termination (unhealthy height or angle) and 1000-step truncation are gymnasium's.

    | Parameter    | Nominal | Meaning                                         |
    |--------------|---------|-------------------------------------------------|
    | `torso_mass` | 3.6652  | mass of the body ``torso`` (kg)                 |
    | `thigh_mass` | 4.0579  | mass of the body ``thigh`` (kg)                 |
    | `leg_mass`   | 2.7814  | mass of the body ``leg`` (kg)                   |
    | `foot_mass`  | 5.3156  | mass of the body ``foot`` (kg)                  |
    | `friction`   | 2.0     | sliding friction of the foot–floor contact      |

    In the nominal model the floor's sliding friction is 1.0, the foot's 2.0 and the other
    geoms' 0.9; MuJoCo uses the larger of two, so the foot–floor contact has 2.0. Setting
    ``friction=f`` multiplies all of them by ``f / 2.0``. Uncertainty set (M2TD3/RRLS):
    ``friction ∈ [0.1, 3]``, ``torso_mass ∈ [0.1, 3]``, ``thigh_mass ∈ [0.1, 4]``.

    Registered ids: ``robust_rl/Hopper-v5`` (nominal), ``robust_rl/HopperHeavyTorso-v5``
    (``torso_mass=7.0``, about twice nominal: a top-heavy hopper),
    ``robust_rl/HopperLowFriction-v5`` (``friction=0.5``, a quarter of nominal: the foot slips) and
    ``robust_rl/HopperDomainRandomized-v5`` (uniform over the uncertainty set).

    :param kwargs: passed to gymnasium's ``HopperEnv``; the named parameters default to
        ``None``, the model's own value.
    """

    ROBOT = HOPPER


class PerturbedHalfCheetahEnv(PerturbedMujocoEnv, HalfCheetahEnv):
    """Gymnasium's ``HalfCheetah-v5`` with adjustable segment masses and friction.

    A planar two-legged robot (torso, back and front thigh, shin and foot; six hinge motors)
    runs forward. Reward and 1000-step truncation are gymnasium's (it never terminates).

    | Parameter     | Nominal | Meaning                                    |
    |---------------|---------|--------------------------------------------|
    | `torso_mass`  | 6.2502  | mass of the body ``torso`` (kg)            |
    | `bthigh_mass` | 1.5435  | mass of the back thigh (kg)                |
    | `bshin_mass`  | 1.5874  | mass of the back shin (kg)                 |
    | `bfoot_mass`  | 1.0954  | mass of the back foot (kg)                 |
    | `fthigh_mass` | 1.4381  | mass of the front thigh (kg)               |
    | `fshin_mass`  | 1.2008  | mass of the front shin (kg)                |
    | `ffoot_mass`  | 0.8845  | mass of the front foot (kg)                |
    | `friction`    | 0.4     | sliding friction of the feet–floor contact |

    Every geom of the nominal model has sliding friction 0.4; ``friction=f`` sets them all to
    ``f``. Uncertainty set (M2TD3/RRLS): ``friction ∈ [0.1, 4]``, ``torso_mass ∈ [0.1, 7]``,
    ``bthigh_mass ∈ [0.1, 3]``.

    Registered ids: ``robust_rl/HalfCheetah-v5`` (nominal), ``robust_rl/HalfCheetahHeavyTorso-v5``
    (``torso_mass=12.5``, twice nominal), ``robust_rl/HalfCheetahLowFriction-v5``
    (``friction=0.1``, a quarter of nominal: an icy floor) and
    ``robust_rl/HalfCheetahDomainRandomized-v5`` (uniform over the uncertainty set).

    :param kwargs: passed to gymnasium's ``HalfCheetahEnv``; the named parameters default to
        ``None``, the model's own value.
    """

    ROBOT = HALF_CHEETAH


class PerturbedWalker2dEnv(PerturbedMujocoEnv, Walker2dEnv):
    """Gymnasium's ``Walker2d-v5`` with adjustable segment masses and friction.

    A planar biped (torso; right and left thigh, leg and foot; six hinge motors) walks
    forward. Reward, termination (unhealthy height or angle) and 1000-step truncation are
    gymnasium's.

    | Parameter         | Nominal | Meaning                                    |
    |-------------------|---------|--------------------------------------------|
    | `torso_mass`      | 3.6652  | mass of the body ``torso`` (kg)            |
    | `thigh_mass`      | 4.0579  | mass of the right thigh (kg)               |
    | `leg_mass`        | 2.7814  | mass of the right leg (kg)                 |
    | `foot_mass`       | 3.1667  | mass of the right foot (kg)                |
    | `thigh_left_mass` | 4.0579  | mass of the left thigh (kg)                |
    | `leg_left_mass`   | 2.7814  | mass of the left leg (kg)                  |
    | `foot_left_mass`  | 3.1667  | mass of the left foot (kg)                 |
    | `friction`        | 1.9     | sliding friction of the feet–floor contact |

    In the nominal model the floor's sliding friction is 0.7, the feet's 1.9 and the other
    geoms' 0.9; the feet–floor contacts have 1.9. Setting ``friction=f`` multiplies all of them
    by ``f / 1.9``. Uncertainty set (M2TD3/RRLS): ``friction ∈ [0.1, 4]``,
    ``torso_mass ∈ [0.1, 5]``, ``thigh_mass ∈ [0.1, 6]``.

    Registered ids: ``robust_rl/Walker2d-v5`` (nominal), ``robust_rl/Walker2dHeavyTorso-v5``
    (``torso_mass=7.0``, about twice nominal), ``robust_rl/Walker2dLowFriction-v5``
    (``friction=0.5``, about a quarter of nominal) and ``robust_rl/Walker2dDomainRandomized-v5``
    (uniform over the uncertainty set).

    :param kwargs: passed to gymnasium's ``Walker2dEnv``; the named parameters default to
        ``None``, the model's own value.
    """

    ROBOT = WALKER2D
