"""Robust DQN for Stable-Baselines3."""

from robust_rl.dqn.robust_dqn import TARGET_FORMS, TD_LOSSES, RobustDQN

__all__ = ["TARGET_FORMS", "TD_LOSSES", "RobustDQN"]
