"""Run a sweep's trials as Ray tasks: ``robust-rl sweep FILE --out DIR --backend ray``.

Ray is optional (``pip install 'robust-rl[ray]'``) and imported only here. Each trial is one Ray
task that reserves one CPU and runs :func:`robust_rl.sweep.run_trial` with torch pinned to one
thread (``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``, ``torch.set_num_threads(1)``), so Ray's
scheduler packs trials onto the cluster's CPUs; at most ``max_parallel`` trials are in flight at
once.

Where Ray runs:

* ``address=None``: a private local Ray instance with ``max_parallel`` CPUs, started here and shut
  down when the sweep ends (any ``RAY_ADDRESS`` in the environment is ignored);
* ``address="auto"`` (the cluster this node belongs to), ``"HOST:6379"`` or ``"ray://HOST:10001"``
  (Ray Client): an existing cluster, left running afterwards;
* if this process already called ``ray.init``, that Ray is used as it is, and left running.

On a cluster, every node needs the same robust_rl (and its dependencies) installed, and the output
folder must be on a filesystem that the driver and every worker node see at the same absolute path
(NFS, a cluster filesystem): workers write ``out/<trial>/`` there, the driver reads the finished
trials' ``result.json`` from it and writes the summary.

A worker that dies (out of memory, node lost) is retried by Ray (its default ``max_retries``); a
trial that still fails is reported as failed and the sweep goes on. Running the sweep again skips the
finished trials and continues unfinished ones from their last checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep import RESULT_FILE, Trial, TrialResult, run_trial

__all__ = ["WORKER_ENV", "run_with_ray"]

#: environment variables of every trial's task: one thread per trial (each task reserves one CPU)
WORKER_ENV: dict[str, str] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise InvalidArgumentError(
            "--backend ray needs Ray: pip install 'robust-rl[ray]'"
        ) from None
    return ray


def run_with_ray(
    trials: Sequence[Trial],
    out: Path,
    *,
    max_parallel: int,
    address: str | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> list[TrialResult]:
    """Run ``trials`` as Ray tasks and return their results in the order they finished.

    :param trials: the trials (see :func:`robust_rl.sweep.load_sweep`).
    :param out: output folder; made absolute here. On a cluster it must be a shared filesystem
        mounted at the same path on the driver and on every worker node.
    :param max_parallel: trials in flight at once (and the CPUs of a local Ray instance).
    :param address: ``None`` for a local Ray instance started (and shut down) here, else the
        address of a running cluster for ``ray.init(address=...)``.
    :param on_result: called in the driver with each result as it arrives.
    :raises ValueError: if Ray is not installed or the cluster at ``address`` cannot be reached.
    """
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise InvalidArgumentError(f"max_parallel must be a positive integer, got {max_parallel!r}")
    ray = _import_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: list[TrialResult] = []

    def report(res: TrialResult) -> None:
        results.append(res)
        if on_result is not None:
            on_result(res)

    # finished trials are read here: no task (nor worker start) for them
    todo = []
    for trial in trials:
        if (out / trial.name / RESULT_FILE).is_file():
            report(run_trial(trial, out))
        else:
            todo.append(trial)
    if not todo:
        return results

    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(
                address="local",
                num_cpus=max_parallel,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        else:
            try:
                ray.init(address=address, logging_level=logging.WARNING)
            except (ConnectionError, TimeoutError) as exc:
                raise InvalidArgumentError(
                    f"--address {address!r}: cannot connect to a Ray cluster ({exc})"
                ) from None
        started = True
    pending: dict[object, Trial] = {}
    queue = list(todo)
    try:
        task = ray.remote(num_cpus=1)(run_trial).options(runtime_env={"env_vars": WORKER_ENV})
        while queue or pending:
            while queue and len(pending) < max_parallel:
                trial = queue.pop(0)
                pending[task.remote(trial, str(out))] = trial
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                trial = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as exc:  # the worker died (run_trial itself never raises)
                    res = TrialResult(trial, "failed", error=f"{type(exc).__name__}: {exc}")
                report(res)
    except BaseException:  # Ctrl-C or a failing on_result: stop the trials still running
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or Ray gone: nothing left to stop
                pass
        raise
    finally:
        if started:
            ray.shutdown()
    return results
