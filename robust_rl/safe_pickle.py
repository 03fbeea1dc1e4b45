"""Read pickled data without running code from the file.

SB3 model files keep some attributes (spaces, the policy class, the last observation, the
train frequency) as cloudpickle strings, and a pickle can name any importable function and call
it while it is read: a crafted model file runs its payload during ``load``. :func:`safe_loads`
reads a pickle with an unpickler that resolves only the globals on an allow list (data types of
NumPy, Gymnasium spaces, SB3's policies, buffers, noise and schedule objects, this package's
perturbations) and refuses anything else, before calling it. Functions pickled by value
(code objects, closures) are never on the list.

The list is extended with :func:`allow_globals` (as ``torch.serialization.add_safe_globals``
does for ``torch.load``); only add classes whose construction from arbitrary arguments cannot
run code beyond their own ``__init__``/``__setstate__``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from typing import Any

from robust_rl.errors import UserError

__all__ = ["UnsafePickleError", "allow_globals", "allowed_globals", "safe_loads"]


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """A pickle names a global outside the allow list (it would run code to be read)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name} is not on the safe list")
        self.module = module
        self.name = name


#: (module, name) pairs :func:`safe_loads` resolves; everything else is refused
_ALLOWED: set[tuple[str, str]] = set()


def allow_globals(pairs: Iterable[tuple[str, str]]) -> None:
    """Add ``(module, name)`` globals to the allow list of :func:`safe_loads`."""
    for module, name in pairs:
        if not (isinstance(module, str) and isinstance(name, str) and module and name):
            raise UserError(f"allow_globals: expected (module, name) strings, got {(module, name)}")
        _ALLOWED.add((module, name))


def allowed_globals() -> frozenset[tuple[str, str]]:
    """The globals :func:`safe_loads` currently resolves."""
    _fill_defaults()
    return frozenset(_ALLOWED)


def _classes(module: str, names: Iterable[str]) -> list[tuple[str, str]]:
    return [(module, n) for n in names]


_filled = False
#: registry entries whose policy classes are on the list (a replaced entry is a new one)
_agents_allowed: set[Any] = set()


def _fill_defaults() -> None:
    """The default list, filled on first use so that importing this module stays cheap; then
    the policy classes of agents registered since the last call."""
    global _filled
    _allow_registered_policies()
    if _filled:
        return
    _filled = True
    pairs: list[tuple[str, str]] = [
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("collections", "deque"),
        ("collections", "OrderedDict"),
        ("copyreg", "_reconstructor"),  # protocol-0/1 objects; resolves only allowed classes
        ("builtins", "object"),
    ]
    for core in ("numpy.core", "numpy._core"):
        pairs += [
            (f"{core}.multiarray", "_reconstruct"),
            (f"{core}.multiarray", "scalar"),
            (f"{core}.numeric", "_frombuffer"),
        ]
    pairs += [("numpy", "ndarray"), ("numpy", "dtype")]
    # numpy's scalar types, named by a pickled scalar's class (e.g. the RL Zoo's noise sigma)
    pairs += _classes(
        "numpy",
        "bool_ float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64".split(),
    )
    pairs += _classes("numpy.random._pickle", ("__bit_generator_ctor", "__generator_ctor"))
    pairs += _classes("numpy.random._pickle", ("__randomstate_ctor",))
    pairs += [
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random.mtrand", "RandomState"),
    ]
    for mod, cls in (
        ("box", "Box"),
        ("discrete", "Discrete"),
        ("multi_discrete", "MultiDiscrete"),
        ("multi_binary", "MultiBinary"),
        ("dict", "Dict"),
        ("tuple", "Tuple"),
    ):
        pairs.append((f"gymnasium.spaces.{mod}", cls))
    pairs += _classes("stable_baselines3.common.type_aliases", ("TrainFreq", "TrainFrequencyUnit"))
    pairs += _classes(
        "stable_baselines3.common.utils", ("FloatSchedule", "ConstantSchedule", "LinearSchedule")
    )
    pairs += _classes(
        "stable_baselines3.common.noise",
        ("NormalActionNoise", "OrnsteinUhlenbeckActionNoise", "VectorizedActionNoise"),
    )
    pairs += _classes(
        "stable_baselines3.common.buffers",
        ("ReplayBuffer", "DictReplayBuffer", "RolloutBuffer", "DictRolloutBuffer"),
    )
    pairs += _classes("stable_baselines3.her.her_replay_buffer", ("HerReplayBuffer",))
    pairs += _classes("stable_baselines3.her.goal_selection_strategy", ("GoalSelectionStrategy",))
    pairs += _classes(
        "robust_rl.common.dynamics",
        ("DynamicsSet", "ObservationBall", "ResolvedDynamics", "PhysicsReplayBuffer"),
    )
    # the statistics VecNormalize.save writes (robust_rl.evaluation.normalization)
    pairs += _classes("stable_baselines3.common.vec_env.vec_normalize", ("VecNormalize",))
    pairs += _classes("stable_baselines3.common.running_mean_std", ("RunningMeanStd",))
    # sb3-contrib's buffer classes, stored by name by its on-policy algorithms
    pairs += _classes(
        "sb3_contrib.common.maskable.buffers",
        ("MaskableRolloutBuffer", "MaskableDictRolloutBuffer"),
    )
    pairs += _classes(
        "sb3_contrib.common.recurrent.buffers",
        ("RecurrentRolloutBuffer", "RecurrentDictRolloutBuffer"),
    )
    allow_globals([*pairs, *_torch_classes()])


def _allow_registered_policies() -> None:
    """The policy classes every registered algorithm (:data:`robust_rl.agents.AGENTS`) names by
    alias (each agent's once)."""
    from robust_rl.agents import AGENTS

    for spec in set(AGENTS.values()) - _agents_allowed:
        if not spec.available():
            continue
        policies = spec.load().policy_aliases.values()
        allow_globals((p.__module__, p.__qualname__) for p in policies)
        _agents_allowed.add(spec)


def _torch_classes() -> list[tuple[str, str]]:
    """The torch activation functions and optimisers a ``policy_kwargs`` may hold."""
    import torch

    out: list[tuple[str, str]] = []
    for name in dir(torch.nn.modules.activation):
        obj = getattr(torch.nn.modules.activation, name)
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
            out.append((obj.__module__, obj.__qualname__))
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
            out.append((obj.__module__, obj.__qualname__))
    return out


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(module, name)
        return super().find_class(module, name)


def safe_loads(data: bytes) -> Any:
    """``pickle.loads`` restricted to the allow list (see the module docstring).

    :raises UnsafePickleError: the pickle names a global that is not allowed (nothing of it has
        been called).
    :raises pickle.UnpicklingError: the bytes are not a pickle.
    """
    _fill_defaults()
    return _AllowListUnpickler(io.BytesIO(data)).load()
