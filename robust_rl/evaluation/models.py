"""Load any saved SB3 model without naming its algorithm.

An SB3 ``.zip`` stores the model's attributes (``data``), among them the policy class. The
algorithm is chosen from a registry (:data:`MODEL_CLASSES`, built from the package's one
registry :data:`robust_rl.agents.AGENTS`): an entry matches a file when the
stored policy class is a subclass of the entry's policy base **and** every one of the entry's
marker attributes is stored (hyperparameters only that algorithm keeps, e.g. ``clip_range``
for PPO, ``eta`` and ``target_form`` for RobustDQN). Among matching entries the one with the
most markers wins (a subclass such as RobustDQN adds markers to its parent's), then the one
whose policy base subclasses the others' (RecurrentPPO over PPO); a remaining tie is refused as
ambiguous. sb3-contrib's algorithms are recognised where it is installed. Later agents join with :func:`register_model_class` (which registers them
in :data:`~robust_rl.agents.AGENTS` too).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common import utils as sb3_utils
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import json_to_data

from robust_rl.agents import AGENTS, register_agent
from robust_rl.errors import InvalidArgumentError, MissingFileError, UnknownNameError, UserError
from robust_rl.safe_pickle import UnsafePickleError, safe_loads

__all__ = [
    "MODEL_CLASSES",
    "ModelClass",
    "check_model_env",
    "infer_suite",
    "load_model",
    "model_in_folder",
    "read_model_class",
    "register_model_class",
]


@dataclass(frozen=True)
class ModelClass:
    """How to recognise one algorithm in a saved file.

    :param name: registry name (``"ppo"``), as in ``robust-rl train --algo``.
    :param cls: the SB3 algorithm class (its ``load`` is used).
    :param policy_base: the stored policy class must be a subclass of this.
    :param markers: attribute names the algorithm stores and its look-alikes do not.
    """

    name: str
    cls: type[BaseAlgorithm]
    policy_base: type[BasePolicy]
    markers: frozenset[str]


#: registry name -> how to recognise and load it.
MODEL_CLASSES: dict[str, ModelClass] = {}


def register_model_class(
    name: str,
    cls: type[BaseAlgorithm],
    policy_base: type[BasePolicy],
    markers: tuple[str, ...] | frozenset[str],
    *,
    replace: bool = False,
) -> ModelClass:
    """Add an algorithm to :data:`MODEL_CLASSES` (see the module docstring for matching).

    :param name: registry name.
    :param cls: the algorithm class.
    :param policy_base: base class of its policies.
    :param markers: attributes only it (and its subclasses) store; a subclass must list its
        parent's markers plus at least one of its own.
    :param replace: replace an existing entry of that name.
    :raises ValueError: the name is taken and ``replace`` is false.
    """
    if name in MODEL_CLASSES and not replace:
        raise InvalidArgumentError(f"model class {name!r} is already registered")
    register_agent(name, cls, policy_base, markers, replace=replace)
    entry = ModelClass(name, cls, policy_base, frozenset(markers))
    MODEL_CLASSES[name] = entry
    return entry


for _spec in AGENTS.values():  # the package's registry (robust_rl.agents)
    if not _spec.available():  # an optional package that is not installed (sb3-contrib)
        continue
    MODEL_CLASSES[_spec.name] = ModelClass(
        _spec.name, _spec.load(), _spec.load_policy_base(), _spec.markers
    )


#: attributes that older SB3 versions pickle as functions (code): the safe loader replaces
#: them by constants (they only matter for further training, never for ``predict``)
_SCHEDULES = ("learning_rate", "lr_schedule", "exploration_schedule", "clip_range", "clip_range_vf")
#: training state pickled as a torch tensor (whose pickle loads through ``torch.load``, which can
#: run code): left unset, as the policy's own parameters (read with ``weights_only``) act.
#: ARS: ``weights``, the flat parameter vector its search perturbs
_TRAINING_STATE = ("weights",)


def _not_readable(p: Path, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"model file {p} is not a readable Stable-Baselines3 model ({why})")


def _read_data(p: Path, trust: bool = False) -> dict[str, Any]:
    """The stored attributes (the zip's ``data`` member) without loading the parameters.

    With ``trust`` false, pickled attributes are read by :func:`robust_rl.safe_pickle.safe_loads`
    (nothing in the file is run); a schedule pickled as a function is replaced by a constant
    (listed in ``data["_unrestored"]``), training state pickled as a tensor (ARS's ``weights``)
    is left unset (listed too), and any other attribute that needs code is refused.
    """
    if p.is_dir():
        raise InvalidArgumentError(f"model file {p} is a folder; give the model's .zip file")
    if not p.is_file():
        raise MissingFileError(f"model file {p} does not exist")
    if not zipfile.is_zipfile(p):
        raise _not_readable(p, "not a zip file")
    try:
        with zipfile.ZipFile(p) as archive:
            if "data" not in archive.namelist():
                raise _not_readable(p, "no data member")
            text = archive.read("data").decode()
        if trust:
            data = json_to_data(text)
        else:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise _not_readable(p, "its data member is not a mapping")
            data = _restore_safely(p, raw)
    except UserError:
        raise
    except Exception as exc:  # json errors, pickle errors ...
        raise _not_readable(p, str(exc)) from None
    if not isinstance(data, dict) or "policy_class" not in data:
        raise _not_readable(p, "no policy class")
    return data


def _restore_safely(p: Path, raw: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    unrestored: list[str] = []
    for key, item in raw.items():
        if not (isinstance(item, dict) and ":serialized:" in item):
            data[key] = item
            continue
        try:
            data[key] = safe_loads(base64.b64decode(str(item[":serialized:"]).encode()))
        except UnsafePickleError as exc:
            if key not in _SCHEDULES + _TRAINING_STATE:
                raise InvalidArgumentError(
                    f"model file {p}: its attribute {key!r} can only be read by running code "
                    f"from the file ({exc.module}.{exc.name}); load it only if you trust its "
                    "source (robust-rl evaluate --trust, load_model(..., trust=True))"
                ) from None
            unrestored.append(key)
    for key in unrestored:
        if key in _TRAINING_STATE:
            data[key] = None
            continue
        start = data.get("learning_rate") if key in ("learning_rate", "lr_schedule") else 0.0
        value = float(start) if isinstance(start, (int, float)) else 0.0
        data[key] = value if key == "learning_rate" else _constant_schedule(value)
    data["_unrestored"] = tuple(unrestored)
    return data


def _constant_schedule(value: float) -> Any:
    """SB3's constant schedule (an object since SB3 2.7; a function before)."""
    constant = getattr(sb3_utils, "ConstantSchedule", None)
    return constant(value) if constant is not None else sb3_utils.constant_fn(value)


def _check_weights(p: Path) -> None:
    """Refuse a model whose ``.pth`` members hold anything but tensors and plain containers
    (``torch.load(weights_only=True)``), whatever the installed SB3 does."""
    try:
        with zipfile.ZipFile(p) as archive:
            for name in archive.namelist():
                if name.endswith(".pth"):
                    with archive.open(name) as member:
                        torch.load(io.BytesIO(member.read()), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidArgumentError(
            f"model file {p}: its weights are not plain tensors ({type(exc).__name__}); load it "
            "only if you trust its source (robust-rl evaluate --trust, load_model(..., "
            "trust=True))"
        ) from None


def read_model_class(path: str | os.PathLike[str], trust: bool = False) -> ModelClass:
    """The registry entry of the algorithm that saved ``path`` (the file is not fully loaded;
    with ``trust`` false nothing in it is run, see :func:`load_model`).

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: not an SB3 model file, or two algorithms match equally well.
    :raises KeyError: an SB3 model of an algorithm not in :data:`MODEL_CLASSES`.
    """
    p = Path(path)
    return _match_class(p, _read_data(p, trust))


def _match_class(p: Path, data: Mapping[str, Any]) -> ModelClass:
    """The registry entry whose policy base and markers fit the stored attributes ``data``."""
    policy = data["policy_class"]
    if not isinstance(policy, type):
        raise InvalidArgumentError(
            f"model file {p}: its policy class could not be restored ({policy!r})"
        )
    keys = set(data)
    matches = [
        e for e in MODEL_CLASSES.values() if issubclass(policy, e.policy_base) and e.markers <= keys
    ]
    if not matches:
        raise UnknownNameError(
            f"model file {p}: policy {policy.__module__}.{policy.__name__} matches no known "
            f"algorithm; known: {', '.join(sorted(MODEL_CLASSES))} (add others with "
            "robust_rl.evaluation.register_model_class)"
        )
    best = max(len(e.markers) for e in matches)
    top = [e for e in matches if len(e.markers) == best]
    # equal markers: the most specific policy base (RecurrentPPO's policies subclass PPO's)
    top = [e for e in top if all(issubclass(e.policy_base, o.policy_base) for o in top)] or top
    if len(top) > 1:
        raise InvalidArgumentError(
            f"model file {p} matches several algorithms equally: {[e.name for e in top]}"
        )
    return top[0]


def model_in_folder(folder: str | os.PathLike[str]) -> Path:
    """The model a run folder holds: ``robust-rl train``'s ``model.zip``, or an RL Zoo run's
    final model ``<env>.zip`` (beside its ``<env>/config.yml``).

    :raises InvalidArgumentError: neither is there.
    """
    f = Path(folder)
    if (f / "model.zip").is_file():
        return f / "model.zip"
    zoo = sorted(
        f / f"{sub.name}.zip"
        for sub in f.iterdir()
        if sub.is_dir() and (sub / "config.yml").is_file() and (f / f"{sub.name}.zip").is_file()
    )
    if len(zoo) == 1:
        return zoo[0]
    raise InvalidArgumentError(
        f"model file {f} is a folder without one model in it: expected model.zip (robust-rl "
        "train) or an RL Zoo run (<env>.zip beside <env>/config.yml); or give the .zip"
    )


def load_model(
    path: str | os.PathLike[str], device: str = "auto", trust: bool = False
) -> BaseAlgorithm:
    """Load a saved SB3 model, choosing its class from the file (see :func:`read_model_class`).

    An SB3 zip keeps some attributes as pickles, and a pickle can run code while it is read. By
    default nothing from the file is run: pickled attributes are read with
    :func:`robust_rl.safe_pickle.safe_loads` (data types, spaces, SB3's policy, buffer, noise and
    schedule classes, this package's perturbations), the weights with
    ``torch.load(weights_only=True)``; a file that needs anything else is refused with one line.
    A schedule that older SB3 versions pickle as a function is replaced by a constant (named in
    ``model.unrestored_attributes``): the policy acts exactly as saved, but training such a model
    further needs ``trust=True``.

    :param path: the ``.zip`` written by ``model.save``, or a run folder holding one
        (:func:`model_in_folder`).
    :param device: torch device for the loaded model.
    :param trust: read the file with SB3's own loader (cloudpickle: runs whatever the file
        names). Only for files from a source you trust.
    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: not a readable SB3 model, or (without ``trust``) one that needs code.
    :raises KeyError: an SB3 model of an unknown algorithm.
    """
    p = Path(path)
    if p.is_dir():
        p = model_in_folder(p)
    data = _read_data(p, trust)  # read once: the class is matched on it, then it is loaded
    entry = _match_class(p, data)
    custom_objects: dict[str, Any] | None = None
    unrestored: tuple[str, ...] = ()
    if not trust:
        _check_weights(p)
        unrestored = data.pop("_unrestored")
        # every attribute given: SB3 unpickles nothing
        custom_objects = data
    try:
        model = entry.cls.load(p, device=device, custom_objects=custom_objects)
    except Exception as exc:
        raise InvalidArgumentError(
            f"model file {path} could not be loaded as {entry.cls.__name__} ({exc})"
        ) from None
    model.unrestored_attributes = unrestored  # type: ignore[attr-defined]
    return model


def check_model_env(model: Any, env_id: str, name: str = "model") -> None:
    """Refuse, with one line, a model whose observation or action space is not the env's (a
    model trained on another task than the suite's)."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        pairs = (
            ("observation", model.observation_space, env.observation_space),
            ("action", model.action_space, env.action_space),
        )
        for kind, mine, theirs in pairs:
            if (
                type(mine) is not type(theirs)
                or getattr(mine, "shape", None) != getattr(theirs, "shape", None)
                or getattr(mine, "n", None) != getattr(theirs, "n", None)
            ):
                raise InvalidArgumentError(
                    f"{name} was trained on another task: its {kind} space is "
                    f"{_brief(mine)}, {env_id}'s is {_brief(theirs)}; evaluate it on a suite of "
                    "its own task"
                )
    finally:
        env.close()


def _brief(space: Any) -> str:
    """A space in a few words: its type and shape (or number of actions)."""
    n = getattr(space, "n", None)
    detail = f"n={n}" if n is not None else f"shape {getattr(space, 'shape', None)}"
    return f"{type(space).__name__}({detail})"


def infer_suite(models: Mapping[str, Any]) -> str:
    """The registered suite whose task every model was trained on, read from the models'
    observation and action spaces (what ``robust-rl evaluate`` uses without ``--suite``).

    :raises InvalidArgumentError: no suite, or several (tasks with the same spaces, e.g.
        HalfCheetah and Walker2d), fit every model; the message names them.
    """
    import gymnasium as gym

    from robust_rl.evaluation.suites import SUITES

    fits = []
    for name, suite in SUITES.items():
        if suite.nominal_id not in gym.registry:  # e.g. a MuJoCo task without mujoco
            continue
        try:
            # MuJoCo's compiler warns on stderr about the robots' model files: not the user's
            # concern while only the spaces are compared
            with _quiet_stderr():
                for n, model in models.items():
                    check_model_env(model, suite.nominal_id, f"model {n!r}")
        except UserError:  # another task's spaces, or a task that cannot be made here (mujoco)
            continue
        fits.append(name)
    if len(fits) == 1:
        return fits[0]
    what = f"fit several suites ({', '.join(fits)})" if fits else "fit no registered suite"
    raise InvalidArgumentError(
        f"the models' observation and action spaces {what}; give --suite NAME or a suite file"
    )


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null (native libraries write there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
