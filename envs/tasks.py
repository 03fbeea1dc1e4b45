"""The registered tasks as data: ids, entry points, nominal values, uncertainty sets, variants.

Nothing here imports a simulator: the MuJoCo entry points are strings, so every id registers
without ``mujoco`` and only making a MuJoCo id needs it.

The uncertainty sets of the MuJoCo tasks are the published ones of M2TD3 (Tanabe et al., 2022)
as used by RRLS (Zouitine et al., 2024). Those of the classic-control tasks are this project's
choice: ranges around the nominal value within which the task stays solvable (for CartPole,
the ranges of the domain-randomisation baseline, :data:`DEFAULT_CARTPOLE_RANGES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from robust_rl.envs.cartpole import NOMINAL_CARTPOLE_PARAMS
from robust_rl.envs.classic.acrobot import NOMINAL_ACROBOT_PARAMS
from robust_rl.envs.classic.mountain_car import (
    NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS,
    NOMINAL_MOUNTAIN_CAR_PARAMS,
)
from robust_rl.envs.classic.pendulum import NOMINAL_PENDULUM_PARAMS
from robust_rl.envs.mujoco.specs import (
    HALF_CHEETAH,
    HOPPER,
    INVERTED_PENDULUM,
    WALKER2D,
    MujocoRobotSpec,
)
from robust_rl.errors import InvalidArgumentError, UnknownNameError

if TYPE_CHECKING:
    from robust_rl.envs.simulators import BatchedSimulator

__all__ = [
    "CARTPOLE_DOMAIN_RANDOMIZED_ID",
    "CARTPOLE_SUITE",
    "CARTPOLE_SUITE_PARAMS",
    "DEFAULT_CARTPOLE_RANGES",
    "NOMINAL_PARAMS",
    "TASKS",
    "TASK_IDS",
    "UNCERTAINTY_SETS",
    "TaskSpec",
    "get_task",
    "task_of_class",
]

#: Ranges (absolute values) of the CartPole domain-randomisation baseline, drawn
#: log-uniformly. Each range spans the nominal value and reaches the matching test
#: perturbation at one edge: ``masspole`` 0.05..2.0 (nominal 0.1, heavy pole 2.0), ``length``
#: 0.25..1.0 (nominal 0.5, short pole 0.25), ``gravity`` 4.9..24.5 (nominal 9.8, strong
#: gravity 24.5). The cart mass and the force keep their nominal values.
DEFAULT_CARTPOLE_RANGES: Mapping[str, tuple[float, float]] = {
    "masspole": (0.05, 2.0),
    "length": (0.25, 1.0),
    "gravity": (4.9, 24.5),
}

#: Display name -> registered id of the CartPole test MDPs, the nominal one first.
CARTPOLE_SUITE: Mapping[str, str] = {
    "original": "robust_rl/CartPole-v1",
    "heavy pole": "robust_rl/CartPoleHeavyPole-v1",
    "short pole": "robust_rl/CartPoleShortPole-v1",
    "strong gravity": "robust_rl/CartPoleStrongGravity-v1",
}

#: Registered CartPole id -> the physics parameters it overrides (the others are nominal).
CARTPOLE_SUITE_PARAMS: Mapping[str, Mapping[str, float]] = {
    "robust_rl/CartPole-v1": {},
    "robust_rl/CartPoleHeavyPole-v1": {"masspole": 2.0},
    "robust_rl/CartPoleShortPole-v1": {"length": 0.25},
    "robust_rl/CartPoleStrongGravity-v1": {"gravity": 24.5},
}

#: Id of the domain-randomised CartPole training environment.
CARTPOLE_DOMAIN_RANDOMIZED_ID = "robust_rl/CartPoleDomainRandomized-v1"

_DR_ENTRY_POINT = "robust_rl.envs.wrappers:make_domain_randomized"


@dataclass(frozen=True)
class TaskSpec:
    """One perturbable task and everything registered for it.

    :param id: the nominal id (``"robust_rl/Hopper-v5"``).
    :param entry_point: ``"module:Class"`` of the environment.
    :param max_episode_steps: the time limit, as gymnasium's id of the same name.
    :param reward_threshold: as gymnasium's id of the same name.
    :param nominal: parameter name -> nominal value.
    :param uncertainty_set: parameter name -> ``(low, high)``, absolute values.
    :param variants: id of a named perturbed variant -> the parameters it overrides.
    :param domain_randomized_id: id of the domain-randomised training environment.
    :param distribution: how that environment draws from :attr:`uncertainty_set`.
    :param needs_mujoco: whether making the ids needs the ``mujoco`` package.
    :param simulator: name of the batched one-step simulator in
        :data:`robust_rl.envs.simulators.SIMULATORS`, ``"mujoco"`` for
        :class:`robust_rl.envs.mujoco.simulator.MujocoSimulator`, or ``""`` when the task has
        none.
    :param suite: name of the task's evaluation suite (:mod:`robust_rl.evaluation.suites`).
    :param description: one line on the task, shown with its suite.
    :param test_mdps: display name -> parameters of the suite's test MDPs, in order; ``None``
        (default): the nominal MDP, the named variants, then each bound of the uncertainty set.
    """

    id: str
    entry_point: str
    max_episode_steps: int
    reward_threshold: float | None
    nominal: Mapping[str, float]
    uncertainty_set: Mapping[str, tuple[float, float]]
    variants: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    domain_randomized_id: str = ""
    distribution: Literal["uniform", "log-uniform"] = "uniform"
    needs_mujoco: bool = False
    simulator: str = ""
    suite: str = ""
    description: str = ""
    test_mdps: Mapping[str, Mapping[str, float]] | None = None

    def make_simulator(self, threads: int = 1) -> BatchedSimulator:
        """A new instance of the task's batched one-step simulator.

        :param threads: native threads of a MuJoCo simulator (the classic-control simulators
            are vectorised NumPy and take none).
        :raises InvalidArgumentError: if the task has none.
        """
        from robust_rl.envs.simulators import SIMULATORS

        if self.simulator == "mujoco":
            from robust_rl.envs.mujoco.simulator import MujocoSimulator

            return MujocoSimulator(self.id, threads=threads)
        if not self.simulator:
            have = ", ".join(t.id for t in TASKS if t.simulator)
            raise InvalidArgumentError(
                f"task {self.id} has no batched one-step simulator, so a dynamics set cannot be "
                f"re-simulated on it; tasks with one: {have}"
            )
        return SIMULATORS[self.simulator]()


def _mujoco_task(
    robot: MujocoRobotSpec,
    *,
    suite: str,
    reward_threshold: float | None,
    uncertainty_set: Mapping[str, tuple[float, float]],
    variants: Mapping[str, Mapping[str, float]],
    description: str,
) -> TaskSpec:
    """The :class:`TaskSpec` of a gymnasium v5 MuJoCo robot: ``robust_rl/<Task>-v5`` (1000
    steps, entry point ``robust_rl.envs.mujoco.robots:Perturbed<Task>Env``), each variant
    ``robust_rl/<Task><Variant>-v5``, ``robust_rl/<Task>DomainRandomized-v5``, simulated by
    the batched MuJoCo simulator."""
    name = robot.task
    return TaskSpec(
        id=f"robust_rl/{name}-v5",
        entry_point=f"robust_rl.envs.mujoco.robots:Perturbed{name}Env",
        max_episode_steps=1000,
        reward_threshold=reward_threshold,
        nominal=robot.nominal,
        uncertainty_set=uncertainty_set,
        variants={f"robust_rl/{name}{k}-v5": v for k, v in variants.items()},
        domain_randomized_id=f"robust_rl/{name}DomainRandomized-v5",
        needs_mujoco=True,
        simulator="mujoco",
        suite=suite,
        description=f"{name} (MuJoCo): {description}",
    )


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        id="robust_rl/CartPole-v1",
        entry_point="robust_rl.envs.cartpole:PerturbedCartPoleEnv",
        max_episode_steps=500,
        reward_threshold=475.0,
        nominal=NOMINAL_CARTPOLE_PARAMS,
        uncertainty_set=DEFAULT_CARTPOLE_RANGES,
        variants={k: v for k, v in CARTPOLE_SUITE_PARAMS.items() if v},
        domain_randomized_id=CARTPOLE_DOMAIN_RANDOMIZED_ID,
        distribution="log-uniform",
        simulator="cartpole",
        suite="cartpole",
        description=(
            "CartPole (gymnasium classic control): a pole on a cart, 2 actions (push left/right), "
            "reward 1 per step up to 500."
        ),
        test_mdps={name: CARTPOLE_SUITE_PARAMS[i] for name, i in CARTPOLE_SUITE.items()},
    ),
    TaskSpec(
        id="robust_rl/Pendulum-v1",
        entry_point="robust_rl.envs.classic.pendulum:PerturbedPendulumEnv",
        max_episode_steps=200,
        reward_threshold=None,
        nominal=NOMINAL_PENDULUM_PARAMS,
        uncertainty_set={
            "g": (5.0, 15.0),
            "m": (0.5, 1.5),
            "l": (0.5, 1.5),
            "max_torque": (1.0, 2.0),
        },
        variants={
            "robust_rl/PendulumHeavy-v1": {"m": 1.5},
            "robust_rl/PendulumWeakMotor-v1": {"max_torque": 1.5},
        },
        domain_randomized_id="robust_rl/PendulumDomainRandomized-v1",
        simulator="pendulum",
        suite="pendulum",
        description=("Pendulum swing-up (classic control): continuous torque, 200 steps."),
    ),
    TaskSpec(
        id="robust_rl/Acrobot-v1",
        entry_point="robust_rl.envs.classic.acrobot:PerturbedAcrobotEnv",
        max_episode_steps=500,
        reward_threshold=-100.0,
        nominal=NOMINAL_ACROBOT_PARAMS,
        uncertainty_set={
            "link_mass_1": (0.5, 1.5),
            "link_mass_2": (0.5, 1.5),
            "link_length_1": (0.75, 1.25),
            "link_length_2": (0.75, 1.25),
        },
        variants={"robust_rl/AcrobotHeavyTip-v1": {"link_mass_2": 1.5}},
        domain_randomized_id="robust_rl/AcrobotDomainRandomized-v1",
        simulator="acrobot",
        suite="acrobot",
        description=(
            "Acrobot (classic control): two-link swing-up, 3 discrete torques, 500 steps."
        ),
    ),
    TaskSpec(
        id="robust_rl/MountainCar-v0",
        entry_point="robust_rl.envs.classic.mountain_car:PerturbedMountainCarEnv",
        max_episode_steps=200,
        reward_threshold=-110.0,
        nominal=NOMINAL_MOUNTAIN_CAR_PARAMS,
        uncertainty_set={"force": (0.0008, 0.0012), "gravity": (0.002, 0.003)},
        variants={"robust_rl/MountainCarWeakEngine-v0": {"force": 0.0008}},
        domain_randomized_id="robust_rl/MountainCarDomainRandomized-v0",
        simulator="mountain-car",
        suite="mountaincar",
        description=("MountainCar (classic control): 3 discrete pushes, 200 steps."),
    ),
    TaskSpec(
        id="robust_rl/MountainCarContinuous-v0",
        entry_point="robust_rl.envs.classic.mountain_car:PerturbedMountainCarContinuousEnv",
        max_episode_steps=999,
        reward_threshold=90.0,
        nominal=NOMINAL_MOUNTAIN_CAR_CONTINUOUS_PARAMS,
        uncertainty_set={"power": (0.0012, 0.0018), "gravity": (0.002, 0.003)},
        variants={"robust_rl/MountainCarContinuousWeakEngine-v0": {"power": 0.0012}},
        domain_randomized_id="robust_rl/MountainCarContinuousDomainRandomized-v0",
        simulator="mountain-car-continuous",
        suite="mountaincar-continuous",
        description=("MountainCarContinuous (classic control): continuous force, 999 steps."),
    ),
    _mujoco_task(
        INVERTED_PENDULUM,
        suite="inverted-pendulum",
        reward_threshold=950.0,
        uncertainty_set={"pole_mass": (1.0, 31.0), "cart_mass": (1.0, 11.0)},
        variants={"HeavyPole": {"pole_mass": 20.0}},
        description="balance a pole on a cart, 1000 steps; RRLS/M2TD3 set.",
    ),
    _mujoco_task(
        HOPPER,
        suite="hopper",
        reward_threshold=3800.0,
        uncertainty_set={
            "friction": (0.1, 3.0),
            "torso_mass": (0.1, 3.0),
            "thigh_mass": (0.1, 4.0),
        },
        variants={"HeavyTorso": {"torso_mass": 7.0}, "LowFriction": {"friction": 0.5}},
        description="one-legged hopping, 1000 steps; RRLS/M2TD3 set.",
    ),
    _mujoco_task(
        HALF_CHEETAH,
        suite="halfcheetah",
        reward_threshold=4800.0,
        uncertainty_set={
            "friction": (0.1, 4.0),
            "torso_mass": (0.1, 7.0),
            "bthigh_mass": (0.1, 3.0),
        },
        variants={"HeavyTorso": {"torso_mass": 12.5}, "LowFriction": {"friction": 0.1}},
        description="planar running, 1000 steps; RRLS/M2TD3 set.",
    ),
    _mujoco_task(
        WALKER2D,
        suite="walker2d",
        reward_threshold=None,
        uncertainty_set={
            "friction": (0.1, 4.0),
            "torso_mass": (0.1, 5.0),
            "thigh_mass": (0.1, 6.0),
        },
        variants={"HeavyTorso": {"torso_mass": 7.0}, "LowFriction": {"friction": 0.5}},
        description="planar walking, 1000 steps; RRLS/M2TD3 set.",
    ),
)

#: The nominal ids, in a fixed order (classic control first, then MuJoCo).
TASK_IDS: tuple[str, ...] = tuple(task.id for task in TASKS)

#: Nominal id -> parameter name -> nominal value.
NOMINAL_PARAMS: dict[str, dict[str, float]] = {task.id: dict(task.nominal) for task in TASKS}

#: Nominal id -> parameter name -> ``(low, high)`` (absolute values; see the module doc).
UNCERTAINTY_SETS: dict[str, dict[str, tuple[float, float]]] = {
    task.id: dict(task.uncertainty_set) for task in TASKS
}

_BY_ID = {task.id: task for task in TASKS}


def get_task(task_id: str) -> TaskSpec:
    """The :class:`TaskSpec` of a nominal id.

    :raises UnknownNameError: if ``task_id`` is not one of :data:`TASK_IDS`.
    """
    try:
        return _BY_ID[task_id]
    except KeyError:
        raise UnknownNameError(
            f"unknown task {task_id!r}; known tasks: {', '.join(TASK_IDS)}"
        ) from None


def task_of_class(env_class: type) -> TaskSpec:
    """The :class:`TaskSpec` whose entry point is ``env_class`` (or one of its bases).

    :raises UnknownNameError: if no task is implemented by that class.
    """
    for klass in env_class.__mro__:
        entry = f"{klass.__module__}:{klass.__qualname__}"
        for task in TASKS:
            if task.entry_point == entry:
                return task
    raise UnknownNameError(
        f"{env_class.__qualname__} implements none of the registered tasks ({', '.join(TASK_IDS)})"
    )
