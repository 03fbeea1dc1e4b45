"""Robust SAC for Stable-Baselines3."""

from robust_rl.sac.robust_sac import RobustSAC

__all__ = ["RobustSAC"]
