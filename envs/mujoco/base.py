"""Body-mass and friction perturbation of gymnasium's MuJoCo environments.

:class:`PerturbedMujocoEnv` is mixed into a gymnasium ``MujocoEnv`` subclass (see
:mod:`robust_rl.envs.mujoco.robots`) and writes the parameters straight into the loaded
``mjModel``, then refreshes every constant MuJoCo derives from them.

**Masses.** ``<body>_mass`` sets ``model.body_mass`` of that body (kg, absolute). The body is
treated as the same shape made of a denser or lighter material: its inertia tensor
``model.body_inertia`` is multiplied by the same ratio ``new mass / nominal mass`` and its
centre of mass (``body_ipos``) does not move. ``mujoco.mj_setConst`` then recomputes the
constants derived from masses at the reference pose: ``body_subtreemass``, ``dof_M0``,
``body_invweight0``, ``dof_invweight0``, ``actuator_acc0`` and the statistics
(``stat.meanmass``, ``stat.meaninertia``) that scale the constraint solver. Joint armature
and damping, actuator gears and geometry are unchanged.

**Friction.** ``friction`` is the sliding friction coefficient of the contact between the
floor and the feet. MuJoCo gives a contact between two geoms of equal priority the *larger*
of their two friction coefficients, so lowering the floor's friction alone below the feet's
would change nothing. Instead, the sliding friction (``geom_friction[:, 0]``) of *every* geom
(floor and robot) is multiplied by ``friction / nominal friction`` (and so is that of any
explicit contact pair). Every contact's coefficient is then scaled by the same factor, whatever
MuJoCo's combination rule, and the floor–feet contact has exactly ``friction``; at the nominal
value the model is gymnasium's exactly. Torsional and rolling friction are left as they are
(the models use ``condim=3``: sliding friction only).

All changes are made in the ``mjModel`` that the simulation steps with (not in an XML file),
followed by ``mj_forward`` so that the current ``mjData`` is consistent; they take effect at
the next ``step`` and persist across resets until changed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from robust_rl.envs.mujoco import require_mujoco

require_mujoco()

import mujoco  # noqa: E402
from gymnasium.utils import EzPickle  # noqa: E402

from robust_rl.envs.mujoco.specs import MujocoRobotSpec  # noqa: E402
from robust_rl.envs.params import ParamSpec, PerturbableEnv  # noqa: E402
from robust_rl.errors import InvalidArgumentError  # noqa: E402

__all__ = ["ModelWriter", "PerturbedMujocoEnv", "robot_param_specs"]


def robot_param_specs(robot: MujocoRobotSpec) -> tuple[ParamSpec, ...]:
    """The :class:`ParamSpec` of every parameter of ``robot``."""
    specs = [
        ParamSpec(name, f"mass of the body {body!r} (kg)")
        for name, body in robot.mass_bodies.items()
    ]
    if robot.floor_geom is not None:
        specs.append(ParamSpec("friction", "sliding friction of the floor-feet contact"))
    return tuple(specs)


class PerturbedMujocoEnv(PerturbableEnv):
    """Mixin for a gymnasium ``MujocoEnv``: body masses and friction as parameters.

    A subclass sets only :attr:`ROBOT`; the ``TASK_NAME`` and ``PARAM_SPECS`` it implies are set
    when the class is made. The constructor takes the robot's parameters by name beside
    gymnasium's keyword arguments. See the module documentation for what a mass or friction
    change does to the model.
    """

    ROBOT: ClassVar[MujocoRobotSpec]
    model: Any
    data: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "ROBOT" in cls.__dict__:
            cls.TASK_NAME = cls.ROBOT.task
            cls.PARAM_SPECS = robot_param_specs(cls.ROBOT)

    def __init__(self, **kwargs: Any) -> None:
        """:param kwargs: the robot's parameters by name (:meth:`param_names`; omitted or
        ``None``: the model's own value) and any keyword argument of the gymnasium class."""
        params = {name: kwargs.pop(name, None) for name in self.param_names()}
        self._init_perturbed(params, kwargs)

    def _init_perturbed(
        self, params: Mapping[str, float | None], env_kwargs: dict[str, Any]
    ) -> None:
        """Build the gymnasium environment, remember its nominal model, apply ``params``.

        :param params: parameter name -> value, ``None`` keeping the model's own value.
        :param env_kwargs: keyword arguments of the gymnasium environment.
        """
        checked = self.check_params({k: v for k, v in params.items() if v is not None})
        super().__init__(**env_kwargs)
        EzPickle.__init__(self, **dict(params), **env_kwargs)
        model = self.model
        robot = self.ROBOT
        self._body_ids = {
            name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            for name, body in robot.mass_bodies.items()
        }
        self._nominal_mass = model.body_mass.copy()
        self._nominal_inertia = model.body_inertia.copy()
        self._nominal_geom_friction = model.geom_friction[:, 0].copy()
        self._nominal_pair_friction = model.pair_friction[:, :2].copy()
        geoms = (robot.floor_geom, *robot.feet_geoms) if robot.floor_geom is not None else ()
        geom_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in geoms]
        missing = [robot.mass_bodies[n] for n, i in self._body_ids.items() if i < 0]
        missing += [g for g, i in zip(geoms, geom_ids, strict=True) if i < 0]
        if missing:
            raise InvalidArgumentError(
                f"xml_file: the model has no body or geom named {', '.join(missing)}; the "
                f"{robot.task} parameters need the bodies {', '.join(robot.mass_bodies.values())}"
                + (f" and the geoms {', '.join(geoms)}" if geoms else "")
            )
        if geom_ids:
            self._floor_id, self._feet_ids = geom_ids[0], geom_ids[1:]
            self._nominal_friction = self._floor_contact_friction()
        self._scratch = mujoco.MjData(model)
        if checked:
            self._write_params(checked)

    def _combined_friction(self, g1: int, g2: int) -> float:
        """Sliding friction MuJoCo gives a contact between geoms ``g1`` and ``g2``."""
        m = self.model
        p1, p2 = int(m.geom_priority[g1]), int(m.geom_priority[g2])
        f1, f2 = float(m.geom_friction[g1, 0]), float(m.geom_friction[g2, 0])
        if p1 != p2:
            return f1 if p1 > p2 else f2
        return max(f1, f2)

    def _floor_contact_friction(self) -> float:
        return max(self._combined_friction(self._floor_id, foot) for foot in self._feet_ids)

    def get_physics_state(self) -> np.ndarray:
        """``(qpos, qvel)`` of the simulator, concatenated, as float64."""
        data = self.data
        return np.concatenate([data.qpos, data.qvel]).astype(np.float64)

    def set_physics_state(self, state: np.ndarray) -> None:
        """Restore ``(qpos, qvel)`` (what :meth:`get_physics_state` returns)."""
        data = self.data
        nq = data.qpos.shape[0]
        self.set_state(state[:nq], state[nq:])

    def _read_params(self) -> dict[str, float]:
        values = {name: float(self.model.body_mass[i]) for name, i in self._body_ids.items()}
        if self.ROBOT.floor_geom is not None:
            values["friction"] = self._floor_contact_friction()
        return values

    def model_values(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """What ``N`` parameter vectors write into a model, as arrays with a leading row axis.

        :param params: ``(N, P)`` values in the order of :meth:`param_names`.
        :return: ``{"body_mass": (N, B), "body_inertia": (N, B, 3)}`` for the B bodies with a
            mass parameter (in the order of :meth:`param_names`), plus ``"geom_friction":
            (N, ngeom)`` and ``"pair_friction": (N, npair, 2)`` when the robot has a friction
            parameter (see the module documentation).
        """
        names = self.param_names()
        masses = [k for k, n in enumerate(names) if n != "friction"]
        ids = self._mass_body_ids()
        mass = params[:, masses]
        out = {
            "body_mass": mass,
            "body_inertia": self._nominal_inertia[ids]
            * (mass / self._nominal_mass[ids])[..., None],
        }
        if "friction" in names:
            # friction * (g / nominal) keeps the geoms that set the nominal value exact
            # and the nominal value writes the nominal arrays exactly
            friction = params[:, names.index("friction")]
            nominal = (friction == self._nominal_friction)[:, None]
            relative = self._nominal_geom_friction / self._nominal_friction
            out["geom_friction"] = np.where(
                nominal, self._nominal_geom_friction, friction[:, None] * relative
            )
            out["pair_friction"] = np.where(
                nominal[..., None],
                self._nominal_pair_friction,
                friction[:, None, None] * (self._nominal_pair_friction / self._nominal_friction),
            )
        return out

    def model_writer(self, model: Any) -> ModelWriter:
        """A :class:`ModelWriter` that writes rows of :meth:`model_values` into ``model`` (this
        env's model or a copy of it)."""
        return ModelWriter(model, self._mass_body_ids(), self._scratch)

    def _mass_body_ids(self) -> np.ndarray:
        """Body ids of the mass parameters, in the order of :meth:`param_names`."""
        return np.array(
            [self._body_ids[n] for n in self.param_names() if n != "friction"], dtype=np.int64
        )

    def _write_params(self, params: dict[str, float]) -> None:
        full = {**self._read_params(), **params}
        values = self.model_values(np.array([[full[n] for n in self.param_names()]]))
        self.model_writer(self.model)(values, 0)
        mujoco.mj_forward(self.model, self.data)
        # A pickled copy is rebuilt from the constructor arguments: keep them current.
        self._ezpickle_kwargs.update(params)


class ModelWriter:
    """Writes one row of :meth:`PerturbedMujocoEnv.model_values` into one ``mjModel`` and
    refreshes the constants MuJoCo derives from it (``mj_setConst``: subtree masses, M0,
    inverse weights, solver statistics).

    The model's arrays are bound once (as numpy views of the model's memory, the contiguous
    body ids as a slice), so that a write is a few array copies: the batched simulator writes
    one row into each of hundreds of models per call.

    :param model: the model written (an env's model or a copy of it).
    :param body_ids: the bodies of the mass columns, in order.
    :param scratch: an ``mjData`` of the model's size for ``mj_setConst`` (so that no episode's
        state is touched).
    """

    def __init__(self, model: Any, body_ids: np.ndarray, scratch: Any) -> None:
        self.model = model
        self._scratch = scratch
        ids = np.asarray(body_ids, dtype=np.int64)
        contiguous = len(ids) > 0 and bool(np.all(np.diff(ids) == 1))
        self._bodies: slice | np.ndarray = (
            slice(int(ids[0]), int(ids[-1]) + 1) if contiguous else ids
        )
        self._mass = model.body_mass
        self._inertia = model.body_inertia
        self._geom = model.geom_friction[:, 0]
        self._pair = model.pair_friction[:, :2]

    def __call__(self, values: Mapping[str, np.ndarray], row: int) -> None:
        """Write row ``row`` of ``values`` (:meth:`PerturbedMujocoEnv.model_values` of the env
        whose :meth:`~PerturbedMujocoEnv.model_writer` made this writer)."""
        self._mass[self._bodies] = values["body_mass"][row]
        self._inertia[self._bodies] = values["body_inertia"][row]
        if "geom_friction" in values:
            self._geom[:] = values["geom_friction"][row]
            self._pair[:] = values["pair_friction"][row]
        mujoco.mj_setConst(self.model, self._scratch)
