"""Run independent rollout tasks in-process, over spawned worker processes, or as Ray tasks.

A task is ``(model name, env id, params, n_episodes, seed)``; the result is its returns. Models
travel to workers as *payloads*: the path of a saved model (loaded once per worker, its class
read from the file), or the cloudpickled object for anything else with ``predict``. A live SB3
model is first saved to a temporary ``.zip``. With ``n_workers = k`` on the local backend, this
process and ``k - 1`` spawned workers share the tasks (this process starts at once while the
workers import torch and load the model). Workers use the ``spawn`` start method (torch is
loaded, so ``fork`` is unsafe) and one torch thread each. Each task's result depends only on
the task, so the returns do not depend on the number of workers or the backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robust_rl._progress import Progress
from robust_rl._ray import WORKER_ENV, import_ray, join_cluster, task_env
from robust_rl.errors import InvalidArgumentError
from robust_rl.evaluation.lockstep import lockstep_returns, lockstep_supported
from robust_rl.evaluation.rollouts import ModelLike, evaluate_returns, resolve_model

__all__ = ["Backend", "RolloutTask", "run_tasks"]

#: ``"local"``: this process (``n_workers=1``) or spawned processes; ``"ray"``: Ray tasks.
Backend = Literal["local", "ray"]

#: environment of every worker: one thread per process


@dataclass(frozen=True)
class RolloutTask:
    """One :func:`~robust_rl.evaluation.rollouts.evaluate_returns` call, by model name."""

    model: str
    env_id: str
    params: Mapping[str, float]
    n_episodes: int
    seed: int
    deterministic: bool = True
    max_episode_steps: int | None = None
    batch_size: int = 32


Payload = tuple[Literal["path", "pickle"], Any]

_WORKER_MODELS: dict[str, Any] = {}
_WORKER_PAYLOADS: dict[str, Payload] = {}


def _init_worker(payloads: dict[str, Payload]) -> None:
    import torch

    for k, v in WORKER_ENV.items():
        os.environ[k] = v
    torch.set_num_threads(1)
    _WORKER_PAYLOADS.clear()
    _WORKER_PAYLOADS.update(payloads)


def _model_from(payload: Payload) -> Any:
    kind, value = payload
    if kind == "path":
        return resolve_model(value)
    import cloudpickle

    return cloudpickle.loads(value)


def _digest(payload: Payload) -> str:
    kind, value = payload
    data = value if isinstance(value, bytes) else str(value).encode()
    return kind + ":" + hashlib.sha1(data).hexdigest()


def _worker_model(name: str, payloads: Mapping[str, Payload]) -> Any:
    """The model ``name`` of ``payloads``, loaded once per process (cached by content)."""
    key = _digest(payloads[name])
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = _model_from(payloads[name])
    return _WORKER_MODELS[key]


def _run_worker_task(task: RolloutTask) -> np.ndarray:
    return _run_one(task, _worker_model(task.model, _WORKER_PAYLOADS))


def _run_one(task: RolloutTask, model: Any) -> np.ndarray:
    return evaluate_returns(
        model,
        task.env_id,
        task.n_episodes,
        task.seed,
        params=task.params,
        deterministic=task.deterministic,
        max_episode_steps=task.max_episode_steps,
        batch_size=task.batch_size,
    )


@contextlib.contextmanager
def _payloads(models: Mapping[str, ModelLike]) -> Iterator[dict[str, Payload]]:
    from stable_baselines3.common.base_class import BaseAlgorithm

    with tempfile.TemporaryDirectory(prefix="robust_rl_eval_") as tmp:
        out: dict[str, Payload] = {}
        for i, (name, model) in enumerate(models.items()):
            if isinstance(model, (str, os.PathLike)):
                out[name] = ("path", str(Path(model).resolve()))
            elif isinstance(model, BaseAlgorithm):
                path = Path(tmp) / f"model{i}.zip"
                model.save(path)
                out[name] = ("path", str(path))
            else:
                import cloudpickle

                out[name] = ("pickle", cloudpickle.dumps(model))
        yield out


def run_tasks(
    models: Mapping[str, ModelLike],
    tasks: Sequence[RolloutTask],
    *,
    n_workers: int = 1,
    backend: Backend = "local",
    address: str | None = None,
    lockstep: bool | None = None,
    progress: bool = False,
    desc: str = "evaluate",
) -> list[np.ndarray]:
    """Returns of every task, in task order.

    :param models: ``{name: model or saved model path}``; tasks refer to them by name.
    :param tasks: the rollouts to run.
    :param n_workers: processes in all (``"local"``: this one plus ``n_workers - 1`` spawned
        workers; ``1`` runs everything here) or concurrent Ray tasks.
    :param backend: ``"local"`` or ``"ray"``.
    :param address: Ray cluster address (``"auto"``, ``"HOST:6379"``); ``None`` starts a
        private local Ray with ``n_workers`` CPUs and shuts it down afterwards.
    :param lockstep: run the tasks of each model together on the task's batched simulator, in
        this process (:mod:`robust_rl.evaluation.lockstep`: one ``predict`` per step on every
        unfinished (MDP, episode) row; the same returns as the scalar path, asserted in the
        tests). ``None``: whenever every task is on one env id with a batched simulator and the
        backend is ``"local"``; a MuJoCo robot's rows are then stepped by ``n_workers`` native
        threads (on 2 cores faster than 2 worker processes: 1.7× on InvertedPendulum, 4.1× on
        Hopper, ``experiments/results/bench_evaluation``), a classic task's are vectorised
        (``n_workers`` unused); ``False``: one env per episode (the reference path, over
        ``n_workers`` processes, and the only one for Ray).
    :param progress: draw a progress bar (tasks done, rate, ETA) on stderr, labelled ``desc``.
    :raises ValueError: bad ``n_workers`` or ``backend``; Ray not installed.
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise InvalidArgumentError(f"n_workers must be a positive integer, got {n_workers!r}")
    if backend not in ("local", "ray"):
        raise InvalidArgumentError(f"backend must be 'local' or 'ray', got {backend!r}")
    if address is not None and backend != "ray":
        raise InvalidArgumentError("address is only used with backend='ray'")
    if not tasks:
        return []
    env_ids = {t.env_id for t in tasks}
    if lockstep is None:
        lockstep = backend == "local" and len(env_ids) == 1 and lockstep_supported(*env_ids)
    if lockstep and backend != "local":
        raise InvalidArgumentError("lockstep runs in this process: use backend='local'")
    with Progress(sum(t.n_episodes for t in tasks), desc, progress, unit="episode") as bar:
        if lockstep:
            live = {name: resolve_model(m, f"models[{name!r}]") for name, m in models.items()}
            return _run_lockstep(live, tasks, bar, threads=n_workers)
        if backend == "local" and n_workers == 1:
            live = {name: resolve_model(m, f"models[{name!r}]") for name, m in models.items()}
            out = []
            for t in tasks:
                out.append(_run_one(t, live[t.model]))
                bar.update(t.n_episodes)
            return out
        with _payloads(models) as payloads:
            if backend == "ray":
                result = _run_ray(payloads, tasks, n_workers, address)
                bar.update(sum(t.n_episodes for t in tasks))
                return result
            live = {name: resolve_model(m, f"models[{name!r}]") for name, m in models.items()}
            return _run_processes(live, payloads, tasks, n_workers, bar)


def _run_lockstep(
    live: Mapping[str, Any], tasks: Sequence[RolloutTask], bar: Progress, threads: int = 1
) -> list[np.ndarray]:
    """Tasks that differ only in their MDP's parameters run as one lockstep batch (a MuJoCo
    robot's rows stepped by ``threads`` native threads)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, t in enumerate(tasks):
        key = (t.model, t.env_id, t.n_episodes, t.seed, t.deterministic, t.max_episode_steps)
        groups.setdefault(key, []).append(i)
    out: list[np.ndarray | None] = [None] * len(tasks)
    for (name, env_id, n_episodes, seed, deterministic, cap), members in groups.items():
        results = lockstep_returns(
            live[name],
            env_id,
            [tasks[i].params for i in members],
            n_episodes,
            seed,
            deterministic=deterministic,
            max_episode_steps=cap,
            threads=threads,
            on_done=bar.update,
        )
        for i, returns in zip(members, results, strict=True):
            out[i] = returns
    return [r for r in out if r is not None]


def _run_processes(
    live: Mapping[str, Any],
    payloads: dict[str, Payload],
    tasks: Sequence[RolloutTask],
    n_workers: int,
    bar: Progress,
) -> list[np.ndarray]:
    """This process and ``n_workers - 1`` spawned workers share the tasks.

    The workers take tasks from a queue kept at two per worker; this process runs the next
    task itself in between, on the live models. So no core waits while the workers start
    (importing torch and loading the model take seconds), and one process start is saved.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    results: list[np.ndarray | None] = [None] * len(tasks)
    pending: dict[Future[np.ndarray], int] = {}
    queue_len = 2 * (n_workers - 1)
    nxt = 0
    with ProcessPoolExecutor(
        max_workers=n_workers - 1, mp_context=ctx, initializer=_init_worker, initargs=(payloads,)
    ) as pool:
        while nxt < len(tasks) or pending:
            while nxt < len(tasks) and len(pending) < queue_len:
                pending[pool.submit(_run_worker_task, tasks[nxt])] = nxt
                nxt += 1
            if nxt < len(tasks):
                results[nxt] = _run_one(tasks[nxt], live[tasks[nxt].model])
                bar.update(tasks[nxt].n_episodes)
                nxt += 1
                done: Collection[Future[np.ndarray]] = [f for f in pending if f.done()]
            else:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                i = pending.pop(f)
                results[i] = f.result()
                bar.update(tasks[i].n_episodes)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _run_ray(
    payloads: dict[str, Payload],
    tasks: Sequence[RolloutTask],
    n_workers: int,
    address: str | None,
) -> list[np.ndarray]:
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        kwargs["runtime_env"] = {"env_vars": task_env()}
        if address is None:
            ray.init(num_cpus=n_workers, **kwargs)
        else:
            join_cluster(ray, address, **kwargs)
        started = True
    try:

        @ray.remote(num_cpus=1)
        def _task(batch: list[RolloutTask], ref: dict[str, Payload]) -> list[np.ndarray]:
            import torch

            torch.set_num_threads(1)
            return [_run_one(t, _worker_model(t.model, ref)) for t in batch]

        ref = ray.put(payloads)
        n_batches = max(1, min(len(tasks), 4 * n_workers))
        batches = [list(tasks[i::n_batches]) for i in range(n_batches)]
        outs = ray.get([_task.remote(b, ref) for b in batches])
        result: list[np.ndarray] = [np.empty(0)] * len(tasks)
        for i, out in enumerate(outs):
            for j, r in enumerate(out):
                result[i + j * n_batches] = r
        return result
    finally:
        if started:
            ray.shutdown()
