"""Perturbed environments, installed as :mod:`robust_rl.envs` (see the README)."""

__all__: list[str] = []
