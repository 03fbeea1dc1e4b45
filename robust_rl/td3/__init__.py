"""Robust TD3 for Stable-Baselines3."""

from robust_rl.td3.robust_td3 import RobustTD3

__all__ = ["RobustTD3"]
