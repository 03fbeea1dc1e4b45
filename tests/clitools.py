"""Helpers shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path


def train_argv(algo: str, env: str, config: Path | str, out: Path | str, *extra: str) -> list[str]:
    """The arguments of ``robust-rl train --algo ALGO --env ENV --config CONFIG --out OUT``,
    followed by ``extra``."""
    return [
        "train",
        "--algo",
        algo,
        "--env",
        env,
        "--config",
        str(config),
        "--out",
        str(out),
        *extra,
    ]
