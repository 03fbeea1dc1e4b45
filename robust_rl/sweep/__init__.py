"""Sweeps: seeds × hyperparameters × algorithms, trained, evaluated on a suite and ranked.

A sweep file (:mod:`~robust_rl.sweep.spec`) names the variants (algorithm, config, grid axes or
an Optuna search space), the training seeds, the suite it tunes on (validation split) and reports
on (test split, grid, attacks), and the search. Modules, one job each:

* :mod:`~robust_rl.sweep.spec`: the sweep file's format and its parts (variants, search, trials);
* :mod:`~robust_rl.sweep.parsing`: the file read and validated (tuning protocol included);
* :mod:`~robust_rl.sweep.trials`: one trial: train, evaluate, write ``result.json``;
* :mod:`~robust_rl.sweep.runner`: a grid sweep's trials on a backend, with resume;
* :mod:`~robust_rl.sweep.search`: the Optuna search (TPE, median pruner, SQLite study);
* :mod:`~robust_rl.sweep.summary`: the ranked summary (Markdown, CSV, PNG);
* :mod:`~robust_rl.sweep.backends`: local worker processes (``spawn``) or Ray tasks.

.. code-block:: python

    from robust_rl.sweep import load_sweep, run_sweep, write_summary

    spec = load_sweep("experiments/sweeps/cartpole_radius_eta.yaml")
    results = run_sweep(spec, "out/", backend="local", max_parallel=2)
    write_summary(results, "out/", spec=spec, title=spec.name)
"""

from robust_rl.sweep.backends import BACKENDS
from robust_rl.sweep.parsing import load_sweep, parse_evaluation, parse_sweep
from robust_rl.sweep.runner import run_sweep, run_trials
from robust_rl.sweep.search import STUDY_FILE, run_search
from robust_rl.sweep.spec import (
    EvaluationSpec,
    SearchSpec,
    SweepSpec,
    Trial,
    VariantSpec,
    expand_sweep,
)
from robust_rl.sweep.summary import summarize, write_summary
from robust_rl.sweep.trials import RESULT_FILE, TrialResult, run_trial

__all__ = [
    "BACKENDS",
    "RESULT_FILE",
    "STUDY_FILE",
    "EvaluationSpec",
    "SearchSpec",
    "SweepSpec",
    "Trial",
    "TrialResult",
    "VariantSpec",
    "expand_sweep",
    "load_sweep",
    "parse_evaluation",
    "parse_sweep",
    "run_search",
    "run_sweep",
    "run_trial",
    "run_trials",
    "summarize",
    "write_summary",
]
