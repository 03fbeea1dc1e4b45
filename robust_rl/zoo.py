"""The robust agents in RL Baselines3 Zoo: ``python -m robust_rl.zoo SCRIPT <the zoo's arguments>``.

``SCRIPT`` is one of the zoo's own: ``train``, ``enjoy``, ``record_video``,
``record_training``. Before it runs, the robust agents join the zoo's algorithms
(``rl_zoo3.ALGOS``, under the zoo's spelling ``robust_dqn``, ``robust_sac``, ``robust_td3``) and
its Optuna samplers (their parent's search space plus ``eta`` and the ball's ``radius``, in
units of each observation coordinate's std), as the zoo's documentation does for third-party
algorithms. ``record_training`` records each model in a process that registers them too (and
joins the videos with moviepy's ``ffmpeg`` when the system has none).

Hyperparameters: without ``--conf-file`` (``-conf``), ``train`` reads a file built for the run
from the zoo's own file for the algorithm and this package's shipped configurations, so that a
``robust_rl/*`` id is found by its exact name: the shipped config for the algorithm and task if
there is one (:func:`robust_rl.configs.default_config`), else the zoo's entry for the
gymnasium id it perturbs (``robust_rl/CartPole-v1`` takes ``CartPole-v1``'s). A robust agent
takes its parent's entries for every other id (RobustDQN on ``LunarLander-v3``: DQN's, with the
robust settings at their defaults). ``-conf NAME`` also takes a shipped config by name for the
``--env`` given (e.g. ``robust_sac_dynamics_pendulum`` for the physics-set target). The zoo ranks an Optuna
search on its own evaluation env, one MDP; ranking on a suite's validation MDPs (the tuning
protocol) is what ``robust-rl sweep`` does.

The zoo loads models with Stable-Baselines3's own loader (which runs the code a file names):
use it on runs of your own; ``robust-rl evaluate RUN_FOLDER`` reads a zoo run safely.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from robust_rl.agents import AGENTS
from robust_rl.errors import InvalidArgumentError, MissingFileError

__all__ = ["SCRIPTS", "hyperparams", "main", "register", "sample_robust_params", "zoo_name"]

_CALL = subprocess.call
#: the zoo's scripts this entry runs
SCRIPTS: tuple[str, ...] = ("train", "enjoy", "record_video", "record_training")


def zoo_name(agent: str) -> str:
    """The zoo's spelling of a registry name: ``robust-dqn`` -> ``robust_dqn``."""
    return agent.replace("-", "_")


def _robust_agents() -> dict[str, str]:
    """Zoo name -> registry name of every robust agent (an agent with an SB3 parent)."""
    return {zoo_name(n): n for n, s in AGENTS.items() if s.parent is not None and s.trains}


def sample_robust_params(
    parent: Callable[..., dict[str, Any]],
    trial: Any,
    n_actions: int,
    n_envs: int,
    additional_args: dict[str, Any],
) -> dict[str, Any]:
    """The parent's sampled hyperparameters plus the robust ones: ``eta`` log-uniform in
    [0.1, 100] and the ball's ``radius`` log-uniform in [0.001, 0.1] with
    ``radius_scale="std"`` (the observation ball; with a dynamics set in the config the radius
    is not used)."""
    params = parent(trial, n_actions, n_envs, additional_args)
    params["eta"] = trial.suggest_float("eta", 0.1, 100.0, log=True)
    params["radius"] = trial.suggest_float("radius", 1e-3, 0.1, log=True)
    params["radius_scale"] = "std"
    return params


def register() -> None:
    """Add the robust agents to the zoo's algorithms and samplers (again: no change)."""
    import rl_zoo3
    from rl_zoo3 import hyperparams_opt

    for zoo, name in _robust_agents().items():
        spec = AGENTS[name]
        rl_zoo3.ALGOS[zoo] = spec.load()
        parent = zoo_name(spec.parent or "")
        hyperparams_opt.HYPERPARAMS_SAMPLER[zoo] = functools.partial(
            sample_robust_params, hyperparams_opt.HYPERPARAMS_SAMPLER[parent]
        )
        hyperparams_opt.HYPERPARAMS_CONVERTER[zoo] = hyperparams_opt.HYPERPARAMS_CONVERTER[parent]


def _zoo_file(algo: str) -> dict[str, Any]:
    import rl_zoo3

    path = Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text())
    return dict(data) if isinstance(data, dict) else {}


def _task_ids() -> list[str]:
    from robust_rl.envs.tasks import TASKS

    return [t.id for t in TASKS]


def hyperparams(algo: str) -> dict[str, Any]:
    """The hyperparameter file ``train`` reads for the zoo algorithm ``algo`` (see the module
    docstring): env id -> hyperparameters."""
    from robust_rl.configs import default_config

    robust = _robust_agents()
    ours = robust.get(algo, algo.replace("_", "-"))
    out = _zoo_file(algo)
    if algo in robust:  # every id the parent has an entry for, with the robust defaults
        out = {**_zoo_file(zoo_name(AGENTS[ours].parent or "")), **out}
    for env_id in _task_ids():
        try:
            out[env_id] = yaml.safe_load(default_config(ours, env_id).read_text())
        except MissingFileError:
            base = env_id.split("/", 1)[-1]
            if base in out and env_id not in out:
                out[env_id] = dict(out[base])
    return out


def _option(argv: Sequence[str], *names: str, default: str | None = None) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one)."""
    value = default
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def _write_conf(data: dict[str, Any], algo: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="robust_rl_zoo_"))
    path = folder / f"{algo}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def train_argv(argv: Sequence[str]) -> list[str]:
    """``train``'s arguments with the hyperparameter file this entry provides."""
    from robust_rl.configs import shipped_configs

    algo = _option(argv, "--algo", default="ppo") or "ppo"
    conf = _option(argv, "--conf-file", "-conf")
    if conf is None:
        return [*argv, "--conf-file", _write_conf(hyperparams(algo), algo)]
    shipped = shipped_configs()
    name = conf[: -len(".yaml")] if conf.endswith(".yaml") else conf
    if Path(conf).exists() or name not in shipped:
        return list(argv)
    env = _option(argv, "--env", default="CartPole-v1") or "CartPole-v1"
    data = {env: yaml.safe_load(shipped[name].read_text())}
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in ("--conf-file", "-conf") and i + 1 < len(out) and out[i + 1] == conf:
            out[i + 1] = _write_conf(data, algo)
        elif arg.startswith(("--conf-file=", "-conf=")):
            out[i] = f"{arg.split('=', 1)[0]}={_write_conf(data, algo)}"
    return out


class _RecordVideoInThisEntry:
    """``subprocess.call`` while ``record_training`` runs: its ``record_video`` started through
    this entry, so that the new process knows the robust agents."""

    @staticmethod
    def call(cmd: Sequence[str], *args: Any, **kwargs: Any) -> int:
        cmd = list(cmd)
        if cmd[1:3] == ["-m", "rl_zoo3.record_video"]:
            cmd = [sys.executable, "-m", "robust_rl.zoo", "record_video", *cmd[3:]]
        return _CALL(cmd, *args, **kwargs)


def _ffmpeg_on_path() -> None:
    """``record_training`` joins the videos with the ``ffmpeg`` command: without one on the
    PATH, the binary that moviepy's ``imageio-ffmpeg`` ships is put there (for this process)."""
    import os
    import shutil

    if shutil.which("ffmpeg") is not None:
        return
    try:
        import imageio_ffmpeg
    except ImportError:
        return
    folder = Path(tempfile.mkdtemp(prefix="robust_rl_ffmpeg_"))
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of the zoo's :data:`SCRIPTS` with the robust agents registered."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SCRIPTS:
        given = args[0] if args else "nothing"
        print(
            f"usage: python -m robust_rl.zoo {{{','.join(SCRIPTS)}}} <the zoo's arguments>\n"
            f"robust_rl.zoo: error: SCRIPT must be one of {', '.join(SCRIPTS)}, got {given}",
            file=sys.stderr,
        )
        return 2
    try:
        import rl_zoo3  # noqa: F401
    except ImportError:
        print(
            "robust_rl.zoo: error: RL Baselines3 Zoo is not installed; "
            'pip install "robust-rl[zoo]"',
            file=sys.stderr,
        )
        return 2
    register()
    script, rest = args[0], args[1:]
    if script == "train":
        try:
            rest = train_argv(rest)
        except InvalidArgumentError as exc:
            print(f"robust_rl.zoo: error: {exc}", file=sys.stderr)
            return 2
    import runpy

    sys.argv = [f"rl_zoo3.{script}", *rest]
    call = subprocess.call
    if script == "record_training":  # it starts record_video as `python -m rl_zoo3.record_video`
        _ffmpeg_on_path()
        subprocess.call = _RecordVideoInThisEntry.call  # type: ignore[assignment]
    try:
        runpy.run_module(f"rl_zoo3.{script}", run_name="__main__", alter_sys=True)
    finally:
        subprocess.call = call
    return 0


if __name__ == "__main__":
    sys.exit(main())
