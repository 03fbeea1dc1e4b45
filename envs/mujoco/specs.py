"""What can be perturbed on each MuJoCo robot: pure data, importable without ``mujoco``.

The nominal values are those of gymnasium's v5 models (``body_mass`` after compilation, and
the sliding friction of the contact between the floor and the feet); a test checks them
against the simulator whenever ``mujoco`` is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "HALF_CHEETAH",
    "HOPPER",
    "INVERTED_PENDULUM",
    "MUJOCO_ROBOTS",
    "WALKER2D",
    "MujocoRobotSpec",
]


@dataclass(frozen=True)
class MujocoRobotSpec:
    """The perturbable physics of one gymnasium MuJoCo robot.

    :param task: the task's name in error messages (``"Hopper"``).
    :param mass_bodies: parameter name -> name of the MuJoCo body whose mass it sets.
    :param nominal: parameter name -> nominal value (kg for masses).
    :param floor_geom: the ground's geom, or ``None`` when the robot has no ``friction``.
    :param feet_geoms: the geoms whose contact with the floor carries the robot; the
        ``friction`` parameter reads the friction of these contacts.
    """

    task: str
    mass_bodies: Mapping[str, str]
    nominal: Mapping[str, float]
    floor_geom: str | None = None
    feet_geoms: tuple[str, ...] = field(default_factory=tuple)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Masses in body order, then ``friction`` if the robot touches a floor."""
        return (*self.mass_bodies, *(("friction",) if self.floor_geom is not None else ()))


INVERTED_PENDULUM = MujocoRobotSpec(
    task="InvertedPendulum",
    mass_bodies={"pole_mass": "pole", "cart_mass": "cart"},
    nominal={"pole_mass": 5.018591641363306, "cart_mass": 10.47197551196598},
)

HOPPER = MujocoRobotSpec(
    task="Hopper",
    mass_bodies={
        "torso_mass": "torso",
        "thigh_mass": "thigh",
        "leg_mass": "leg",
        "foot_mass": "foot",
    },
    nominal={
        "torso_mass": 3.6651914291880923,
        "thigh_mass": 4.057890510886818,
        "leg_mass": 2.7813566959781637,
        "foot_mass": 5.315574769873931,
        "friction": 2.0,
    },
    floor_geom="floor",
    feet_geoms=("foot_geom",),
)

HALF_CHEETAH = MujocoRobotSpec(
    task="HalfCheetah",
    mass_bodies={
        "torso_mass": "torso",
        "bthigh_mass": "bthigh",
        "bshin_mass": "bshin",
        "bfoot_mass": "bfoot",
        "fthigh_mass": "fthigh",
        "fshin_mass": "fshin",
        "ffoot_mass": "ffoot",
    },
    nominal={
        "torso_mass": 6.25020920502092,
        "bthigh_mass": 1.5435146443514645,
        "bshin_mass": 1.5874476987447697,
        "bfoot_mass": 1.0953974895397491,
        "fthigh_mass": 1.4380753138075317,
        "fshin_mass": 1.200836820083682,
        "ffoot_mass": 0.8845188284518829,
        "friction": 0.4,
    },
    floor_geom="floor",
    feet_geoms=("bfoot", "ffoot"),
)

WALKER2D = MujocoRobotSpec(
    task="Walker2d",
    mass_bodies={
        "torso_mass": "torso",
        "thigh_mass": "thigh",
        "leg_mass": "leg",
        "foot_mass": "foot",
        "thigh_left_mass": "thigh_left",
        "leg_left_mass": "leg_left",
        "foot_left_mass": "foot_left",
    },
    nominal={
        "torso_mass": 3.6651914291880923,
        "thigh_mass": 4.057890510886818,
        "leg_mass": 2.7813566959781637,
        "foot_mass": 3.1667253948185117,
        "thigh_left_mass": 4.057890510886818,
        "leg_left_mass": 2.7813566959781637,
        "foot_left_mass": 3.1667253948185117,
        "friction": 1.9,
    },
    floor_geom="floor",
    feet_geoms=("foot_geom", "foot_left_geom"),
)

#: Task name -> robot spec.
MUJOCO_ROBOTS: Mapping[str, MujocoRobotSpec] = {
    spec.task: spec for spec in (INVERTED_PENDULUM, HOPPER, HALF_CHEETAH, WALKER2D)
}
