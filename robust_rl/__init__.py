"""robust_rl: adversarially robust learning with entropic regularisation.

The estimator core :mod:`robust_rl.risk` (torch only) serves the robust DQN agent and the
robust classifier.
"""

from __future__ import annotations

__version__ = "0.1.0"

from robust_rl import envs, risk

__all__ = ["__version__", "envs", "risk"]
