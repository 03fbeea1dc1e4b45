"""MuJoCo v5 tasks with perturbable body masses and friction (optional extra ``[mujoco]``).

Importing this package does not import ``mujoco``: the robot specs (:mod:`.specs`) are plain
data, so the ids register without it. The environments live in :mod:`.robots`, which needs
``mujoco``; without it, making one of the ids raises :class:`MujocoNotInstalledError` with
the command that installs it.
"""

from __future__ import annotations

import importlib.util

from robust_rl.envs.mujoco.specs import (
    HALF_CHEETAH,
    HOPPER,
    INVERTED_PENDULUM,
    MUJOCO_ROBOTS,
    WALKER2D,
    MujocoRobotSpec,
)
from robust_rl.errors import UserError

__all__ = [
    "HALF_CHEETAH",
    "HOPPER",
    "INSTALL_HINT",
    "INVERTED_PENDULUM",
    "MUJOCO_AVAILABLE",
    "MUJOCO_ROBOTS",
    "WALKER2D",
    "MujocoNotInstalledError",
    "MujocoRobotSpec",
    "require_mujoco",
]

#: Whether the ``mujoco`` package can be imported (checked without importing it).
MUJOCO_AVAILABLE: bool = importlib.util.find_spec("mujoco") is not None

#: How to install what the MuJoCo tasks need.
INSTALL_HINT = 'pip install "robust-rl[mujoco]"'


class MujocoNotInstalledError(UserError, ModuleNotFoundError):
    """A MuJoCo task was asked for but the ``mujoco`` package is not installed.

    A :class:`ModuleNotFoundError` whose ``name`` is ``"mujoco"``, so code that skips missing
    optional dependencies recognises it.
    """


def require_mujoco(what: str = "the MuJoCo tasks") -> None:
    """Import ``mujoco`` or raise :class:`MujocoNotInstalledError` naming the install command.

    :param what: what needs it, for the message.
    """
    try:
        import mujoco  # noqa: F401
    except ImportError as exc:
        raise MujocoNotInstalledError(
            f"{what} need the 'mujoco' package, which is not installed; install it with "
            f"{INSTALL_HINT}",
            name="mujoco",
        ) from exc
