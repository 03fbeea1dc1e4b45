"""Run a grid sweep's trials on a backend: finished trials are read back, the rest run.

See :func:`run_sweep`, which also dispatches an Optuna sweep to :mod:`robust_rl.sweep.search`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from robust_rl._files import FolderLock
from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep.backends import check_max_parallel, open_backend
from robust_rl.sweep.spec import SweepSpec, Trial, expand_sweep
from robust_rl.sweep.trials import TrialResult, check_trials, read_result, run_trial

__all__ = ["run_sweep", "run_trials"]


def run_trials(
    trials: Sequence[Trial],
    out_dir: str | os.PathLike[str],
    *,
    backend: str = "local",
    max_parallel: int = 2,
    address: str | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> list[TrialResult]:
    """Run every trial (finished ones are read back, not rerun); results in trial order.

    :param trials: the trials (e.g. :func:`~robust_rl.sweep.spec.expand_sweep`).
    :param out_dir: output folder, one sub-folder per trial; made absolute (Ray workers).
    :param backend: ``"local"`` or ``"ray"`` (see :mod:`robust_rl.sweep.backends`).
    :param max_parallel: trials at once (each pins torch to one thread).
    :param address: Ray cluster address (``backend="ray"`` only); None: a private Ray.
    :param on_result: called with each result as it arrives.
    :raises ValueError: a bad argument, duplicate names, a stale ``result.json`` or an
        unreachable cluster, before any trial runs.
    """
    check_max_parallel(max_parallel)
    out = Path(out_dir).resolve()
    check_trials(trials, out)
    results: dict[str, TrialResult] = {}

    def report(res: TrialResult) -> None:
        results[res.trial.name] = res
        if on_result is not None:
            on_result(res)

    runner = open_backend(backend, max_parallel, address)
    try:
        todo = []
        for trial in trials:
            previous = read_result(trial, out)
            if previous is None:
                todo.append(trial)
            else:
                report(previous)
        out.mkdir(parents=True, exist_ok=True)
        queue = list(todo)
        tasks: dict[int, Trial] = {}
        while queue or runner.pending():
            while queue and runner.pending() < max_parallel:
                trial = queue.pop(0)
                tasks[runner.submit(run_trial, trial, str(out))] = trial
            for outcome in runner.wait():
                trial = tasks.pop(outcome.task)
                if outcome.error is not None:  # the worker died (run_trial never raises)
                    err = f"{type(outcome.error).__name__}: {outcome.error}"
                    report(TrialResult(trial, "failed", error=err))
                else:
                    report(outcome.value)
    finally:
        runner.close()
    return [results[t.name] for t in trials]


def run_sweep(
    sweep: SweepSpec | Sequence[Trial],
    out_dir: str | os.PathLike[str],
    *,
    backend: str = "local",
    max_parallel: int = 2,
    address: str | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
    n_trials: int | None = None,
) -> list[TrialResult]:
    """Run a sweep: every trial of a grid sweep, or the Optuna search of an Optuna sweep.

    :param sweep: a validated sweep (:func:`~robust_rl.sweep.parsing.load_sweep`), or trials.
    :param out_dir: output folder (trial folders; an Optuna sweep's study database).
    :param backend: ``"local"`` or ``"ray"``.
    :param max_parallel: trials (grid) or points (Optuna) in flight at once.
    :param address: Ray cluster address (``backend="ray"`` only).
    :param on_result: called with each trial's result as it arrives.
    :param n_trials: Optuna only: points per variant, overriding ``search.n_trials``.
    :return: the results (grid: in trial order; Optuna: by variant and Optuna trial number).
    """
    with FolderLock(out_dir, "a sweep (robust_rl.sweep.run_sweep)"):
        return _run_sweep(sweep, out_dir, backend, max_parallel, address, on_result, n_trials)


def _run_sweep(
    sweep: SweepSpec | Sequence[Trial],
    out_dir: str | os.PathLike[str],
    backend: str,
    max_parallel: int,
    address: str | None,
    on_result: Callable[[TrialResult], None] | None,
    n_trials: int | None,
) -> list[TrialResult]:
    if isinstance(sweep, SweepSpec) and sweep.search.method == "optuna":
        from robust_rl.sweep.search import check_search, run_search

        check_search(sweep, n_trials)
        runner = open_backend(backend, max_parallel, address)
        try:
            return run_search(sweep, out_dir, runner, on_result=on_result, n_trials=n_trials)
        finally:
            runner.close()
    if n_trials is not None:
        raise InvalidArgumentError("n_trials applies to search.method optuna only")
    trials = expand_sweep(sweep) if isinstance(sweep, SweepSpec) else list(sweep)
    return run_trials(
        trials,
        out_dir,
        backend=backend,
        max_parallel=max_parallel,
        address=address,
        on_result=on_result,
    )
