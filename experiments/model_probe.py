"""What the scripts that probe a saved SAC / TD3 model's networks share
(``target_noise_bias.py``, ``robust_gap_scan.py``): their arguments, the model and the states
they probe, and how they write their table (:func:`write_report`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC, TD3

from robust_rl.errors import InvalidArgumentError
from robust_rl.provenance import write_record


def rollout(
    env_id: str, n: int, seed: int, policy: Callable[[np.ndarray], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` observations reached, ``(n, *obs_shape)`` float32, and the ``(n,)`` rewards received
    on the way, with ``policy`` or uniformly random actions (action space seeded ``seed``);
    episodes are reset with seeds ``seed``, ``seed + 1``, …"""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    states, rewards, episode = [], [], 0
    obs, _ = env.reset(seed=seed)
    while len(states) < n:
        action = env.action_space.sample() if policy is None else policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        states.append(np.asarray(obs, dtype=np.float32))
        rewards.append(float(reward))
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
    env.close()
    return np.stack(states), np.asarray(rewards)


@dataclass
class Probe:
    """A loaded model and the next states its deterministic policy reaches."""

    model: SAC | TD3
    states: th.Tensor
    """``(n, *obs_shape)`` float32 observations reached"""
    rewards: np.ndarray
    """``(n,)`` the rewards received on the way"""
    ent_coef: th.Tensor | None
    """SAC's entropy coefficient α (``None`` for TD3)"""


def load_probe(cls: type[SAC] | type[TD3], path: Path, env_id: str, n: int, seed: int) -> Probe:
    """Load a saved model of class ``cls`` on the CPU and run its deterministic policy on
    ``env_id`` for ``n`` steps (:func:`rollout`)."""
    model = cls.load(path, device="cpu")
    states, rewards = rollout(env_id, n, seed, lambda o: model.predict(o, deterministic=True)[0])
    ent_coef = None
    if isinstance(model, SAC):
        log = model.log_ent_coef
        ent_coef = th.exp(log.detach()) if log is not None else th.tensor([float(model.ent_coef)])
    return Probe(model, th.as_tensor(states), rewards, ent_coef)


@dataclass
class ProbeArgs:
    """The command-line arguments every probe script takes (:func:`probe_parser`)."""

    model: Path
    env: str
    states: int
    repeats: int
    seed: int
    out: Path
    force: bool


def probe_parser(
    doc: str, *, model_help: str, states: int, repeats: int, repeats_help: str, out: str
) -> argparse.ArgumentParser:
    """A parser with the arguments of :class:`ProbeArgs` (the script adds its own): the first
    line of ``doc`` as description, the given defaults."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help=model_help)
    p.add_argument("--env", required=True, help="the env id the model was trained on")
    p.add_argument("--states", type=int, default=states, help="next states collected")
    p.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(out))
    p.add_argument("--force", action="store_true")
    return p


def refuse_existing(path: Path, force: bool) -> None:
    """Refuse to replace ``path`` unless ``force`` (before any work is done)."""
    if path.exists() and not force:
        raise InvalidArgumentError(f"{path} already exists; pass --force to replace it")


def write_report(
    path: Path, lines: list[str], script: str, argv: list[str] | None, wall_s: float, force: bool
) -> None:
    """Write a probe's table with the command (``python experiments/<script> <argv>``), the
    machine and ``wall_s`` (:func:`robust_rl.provenance.write_record`); print it."""
    write_record(
        path,
        lines,
        f"experiments/{script}",
        argv,
        wall_s=wall_s,
        torch_threads=th.get_num_threads(),
        force=force,
    )
