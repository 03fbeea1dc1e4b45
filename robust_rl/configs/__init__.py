"""The hyperparameter files shipped with the package (RL-Zoo style YAML, one per algorithm and
task; the robust ones are the winners of sweeps on validation MDPs).

``robust-rl train --algo ALGO --env ID`` without ``--config`` uses :func:`default_config`
(``<algo>_<task>.yaml``, e.g. ``robust_dqn_cartpole.yaml`` for ``robust-dqn`` on
``robust_rl/CartPole-v1``); ``--config NAME`` takes a shipped file by name (with or without
``.yaml``) or any YAML path.

>>> default_config("robust-dqn", "robust_rl/CartPole-v1").name
'robust_dqn_cartpole.yaml'
>>> "sac_pendulum" in shipped_configs()
True
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from robust_rl.errors import MissingFileError

__all__ = ["CONFIG_DIR", "default_config", "resolve_config", "shipped_configs", "task_slug"]

#: the folder of the shipped files
CONFIG_DIR = Path(__file__).resolve().parent


def shipped_configs() -> dict[str, Path]:
    """Shipped config name (file stem) -> path, sorted by name."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def task_slug(env_id: str) -> str:
    """The task part of a shipped config's name: ``robust_rl/InvertedPendulum-v5`` ->
    ``inverted_pendulum`` (namespace and version dropped, CamelCase to snake_case)."""
    name = env_id.rsplit("/", 1)[-1]
    name = re.sub(r"-v\d+$", "", name).replace("-", "_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def default_config(algo: str, env_id: str) -> Path:
    """The shipped config for ``algo`` on ``env_id``.

    :raises MissingFileError: none is shipped for that pair (the message lists those that are).
    """
    name = f"{algo.replace('-', '_')}_{task_slug(env_id)}"
    configs = shipped_configs()
    # underscores do not matter: cartpole and cart_pole, inverted_pendulum and invertedpendulum
    found = [p for stem, p in configs.items() if stem.replace("_", "") == name.replace("_", "")]
    if not found:
        raise MissingFileError(
            f"no built-in config for --algo {algo} on --env {env_id} (looked for {name}.yaml); "
            f"give --config FILE or one of the shipped: {', '.join(configs)}"
        )
    return found[0]


def resolve_config(value: str | os.PathLike[str] | None, algo: str, env_id: str) -> Path:
    """What ``--config`` names: ``None`` -> :func:`default_config`; an existing file -> itself;
    a shipped name (``robust_sac_pendulum`` or ``robust_sac_pendulum.yaml``) -> that file.

    :raises MissingFileError: neither a file nor a shipped name (the message lists the names).
    """
    if value is None:
        return default_config(algo, env_id)
    path = Path(value)
    if path.exists():
        return path
    configs = shipped_configs()
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and stem in configs:
        return configs[stem]
    raise MissingFileError(
        f"--config {value}: no such file and no shipped config of that name; shipped: "
        f"{', '.join(configs)}"
    )
