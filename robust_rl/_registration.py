"""Register the perturbed environments with gymnasium when gymnasium is imported.

``import robust_rl`` must make ``gym.make("robust_rl/...")`` work, yet ``import robust_rl.risk``
(the torch-only core) must not load gymnasium. :func:`register_when_gymnasium_loads` reconciles
the two: if gymnasium is already imported, the ids are registered at once; otherwise a
one-shot import hook registers them right after ``import gymnasium`` finishes, whoever imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["register_when_gymnasium_loads"]


def _register() -> None:
    import robust_rl.envs  # noqa: F401  (importing it registers every id, idempotently)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs gymnasium's own loader, then registers robust_rl's ids."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register()


class _GymnasiumHook(importlib.abc.MetaPathFinder):
    """One-shot finder: wraps the loader of the top-level ``gymnasium`` package."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gymnasium":
            return None
        _remove_hook()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _GymnasiumHook)]


def register_when_gymnasium_loads() -> None:
    """Register the ids now if gymnasium is loaded, else as soon as it is imported."""
    if "gymnasium" in sys.modules:
        _register()
    elif not any(isinstance(f, _GymnasiumHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _GymnasiumHook())
