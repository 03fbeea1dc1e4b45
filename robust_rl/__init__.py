"""robust_rl: adversarially robust learning with entropic regularisation.

The estimator core :mod:`robust_rl.risk` (torch only) serves the robust DQN agent
(:class:`robust_rl.RobustDQN`; for continuous actions :class:`robust_rl.RobustSAC` and
:class:`robust_rl.RobustTD3`) and the robust classifier (:mod:`robust_rl.supervised`).
Importing :mod:`robust_rl` registers the perturbed environments (:mod:`robust_rl.envs`) with
gymnasium: at once if gymnasium is loaded, else when it is first imported, so that
``import robust_rl.risk`` loads neither gymnasium nor Stable-Baselines3. Stable-Baselines3 is
imported only when a robust agent is first used.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# In a source checkout ``robust_rl.envs`` is the top-level ``envs/`` folder (pyproject.toml maps
# it). When Python takes this package from the checkout itself (started in the repository root
# beside a regular install), no installer's mapping applies: a finder maps that one name there.
_here = os.path.dirname(os.path.abspath(__file__))
_checkout_envs = os.path.join(os.path.dirname(_here), "envs")
if not os.path.isdir(os.path.join(_here, "envs")) and os.path.isfile(
    os.path.join(_checkout_envs, "__init__.py")
):
    import importlib.abc
    import importlib.util
    import sys

    class _CheckoutEnvsFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
            if fullname != "robust_rl.envs":
                return None
            return importlib.util.spec_from_file_location(
                fullname,
                os.path.join(_checkout_envs, "__init__.py"),
                submodule_search_locations=[_checkout_envs],
            )

    if not any(type(f).__name__ == "_CheckoutEnvsFinder" for f in sys.meta_path):
        sys.meta_path.append(_CheckoutEnvsFinder())

from robust_rl._registration import register_when_gymnasium_loads  # noqa: E402

register_when_gymnasium_loads()

if TYPE_CHECKING:
    from robust_rl import envs, risk
    from robust_rl.common.dynamics import DynamicsSet, ObservationBall
    from robust_rl.dqn import RobustDQN
    from robust_rl.sac import RobustSAC
    from robust_rl.td3 import RobustTD3

__all__ = [
    "DynamicsSet",
    "ObservationBall",
    "RobustDQN",
    "RobustSAC",
    "RobustTD3",
    "__version__",
    "envs",
    "risk",
]


def __getattr__(name: str) -> Any:
    from robust_rl.agents import AGENTS  # the agents this package defines, imported on first use

    for spec in AGENTS.values():
        if spec.module.startswith("robust_rl.") and spec.class_name == name:
            return spec.load()
    if name in ("DynamicsSet", "ObservationBall"):
        from robust_rl.common import dynamics

        return getattr(dynamics, name)
    if name in ("envs", "risk"):
        return importlib.import_module(f"robust_rl.{name}")
    raise AttributeError(f"module 'robust_rl' has no attribute {name!r}")
