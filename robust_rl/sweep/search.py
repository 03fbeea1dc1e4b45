"""Hyperparameter search with Optuna: a TPE sampler and a median pruner on intermediate
validation evaluations, one study per variant, stored in ``OUT/study.db`` (SQLite).

One Optuna trial is one hyperparameter point of one variant, run over all of the sweep's seeds
(one after the other, in one task; the trial folders are ``<variant>__p<hash>__seed<k>``, the hash
of the point). Its objective is the mean over seeds of the mean return on the suite's
**validation** MDPs (``tune_episodes`` episodes from ``tune_seed``); the test MDPs, the grid and
the attacks are evaluated for the report only, never for the choice.

Pruning: during training each run evaluates on the validation split ``search.checkpoints``
times; intermediate value ``i * checkpoints + k`` is checkpoint ``k`` of the ``i``-th seed, so the
points are compared step by step. The tasks do not touch the database (a Ray worker may not see
it): each task receives the study's finished trials as they were when it started and prunes with
an in-memory copy of the study; the driver then reports the task's intermediate values and its
outcome to the stored study.

Every variant gets the same budget, ``search.n_trials`` finished (complete or pruned) points (or
``n_trials``). A point the sampler proposes again (likely in a small space of choices) is not run
twice and costs no budget: the study is told its known outcome and asked again; a space of
choices with fewer points than the budget ends when every point has run. Resume: running the
sweep again reopens the studies; finished points count against the budget and are not rerun,
points that were running when the search was interrupted are run again with the same
parameters (their finished seeds are read back, an unfinished seed continues from its
checkpoint), failed points are tried again with the same parameters (once per invocation: a
point that fails again waits for the next one), and new points are asked for until the budget
is spent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep.backends.base import Backend
from robust_rl.sweep.spec import SearchSpec, SweepSpec, Trial, VariantSpec, point_trials
from robust_rl.sweep.trials import TrialResult, check_trials, read_result, run_trial

__all__ = ["STUDY_FILE", "PruneSnapshot", "run_point", "run_search", "study_name"]

#: the SQLite database of the studies, in the output folder
STUDY_FILE = "study.db"


def study_name(spec: SweepSpec, variant: str) -> str:
    """The name of a variant's study in :data:`STUDY_FILE`."""
    return f"{spec.name}/{variant}"


@dataclass(frozen=True)
class PruneSnapshot:
    """What a task needs to prune on its own: the pruner's settings and the finished trials.

    :param n_startup_trials: finished trials before anything is pruned.
    :param trials: the study's complete and pruned trials (``optuna.trial.FrozenTrial``).
    """

    n_startup_trials: int
    trials: tuple[Any, ...]

    def open(self) -> Callable[[int, float], bool]:
        """A fresh ``should_prune(step, value)`` on an in-memory copy of the study."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize",
            pruner=optuna.pruners.MedianPruner(n_startup_trials=self.n_startup_trials),
        )
        study.add_trials(self.trials)
        trial = study.ask()

        def should_prune(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return should_prune


def run_point(
    trials: Sequence[Trial], out_dir: str, prune: PruneSnapshot | None = None
) -> list[TrialResult]:
    """Run one point's trials (one per seed) in order; stop at the first pruned or failed one.

    :param trials: the point's trials, seeds in the sweep's order.
    :param out_dir: the sweep's output folder.
    :param prune: the pruning snapshot, or None (no pruning).
    """
    should_prune = prune.open() if prune is not None else None
    results = []
    for i, trial in enumerate(trials):
        pruner = None
        if should_prune is not None:
            offset = i * trial.checkpoints

            def pruner(k: int, value: float, offset: int = offset) -> bool:
                return should_prune(offset + k, value)

        res = run_trial(trial, out_dir, pruner=pruner)
        if should_prune is not None and res.status == "skipped":
            for k, v in sorted(res.intermediate.items()):  # replay a finished seed's values
                should_prune(i * trial.checkpoints + k, v)
        results.append(res)
        if res.status in ("pruned", "failed"):
            break
    return results


def _fingerprint(spec: SweepSpec, variant: VariantSpec) -> dict[str, Any]:
    """What a stored study must agree with (the budget ``n_trials`` may change)."""
    search = asdict(spec.search)
    search.pop("n_trials")
    data = {
        "seeds": list(spec.seeds),
        "evaluation": asdict(spec.evaluation),
        "search": search,
        "variant": asdict(variant),
    }
    return json.loads(json.dumps(data, default=str))


def _open_study(spec: SweepSpec, variant: VariantSpec, storage: Any, index: int) -> Any:
    import optuna

    name = study_name(spec, variant.name)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        pruner=_pruner(spec.search),
    )
    fingerprint = _fingerprint(spec, variant)
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", fingerprint)
    elif stored != fingerprint:
        changed = sorted(k for k in fingerprint if fingerprint[k] != stored.get(k))
        raise InvalidArgumentError(
            f"study {name!r} in {STUDY_FILE} was made by a different sweep file (changed: "
            f"{', '.join(changed)}); choose another --out, or delete the output folder"
        )
    # seeded, and never replaying the draws of an earlier invocation
    study.sampler = optuna.samplers.TPESampler(
        seed=spec.search.sampler_seed + 1000 * index + len(study.trials)
    )
    return study


def _pruner(search: SearchSpec) -> Any:
    import optuna

    if search.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=search.n_startup_trials)


def check_search(spec: SweepSpec, n_trials: int | None) -> None:
    """Refuse a sweep without ``search.method: optuna`` or an ``n_trials`` that is not a
    positive integer (before any backend is opened)."""
    if spec.search.method != "optuna":
        raise InvalidArgumentError("run_search needs a sweep with search.method: optuna")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise InvalidArgumentError(f"n_trials must be a positive integer, got {n_trials!r}")


def run_search(
    spec: SweepSpec,
    out_dir: str | os.PathLike[str],
    runner: Backend,
    *,
    on_result: Callable[[TrialResult], None] | None = None,
    n_trials: int | None = None,
) -> list[TrialResult]:
    """Run (or continue) the Optuna search of ``spec`` (see the module docstring) on an open
    backend; :func:`~robust_rl.sweep.runner.run_sweep` opens and closes it.

    :param spec: a sweep with ``search.method: optuna``.
    :param out_dir: output folder: trial folders and :data:`STUDY_FILE`.
    :param runner: the backend (:func:`~robust_rl.sweep.backends.open_backend`); at most its
        ``max_parallel`` points are in flight at once.
    :param on_result: called with each trial's result (one per seed) as it arrives.
    :param n_trials: points per variant, overriding ``search.n_trials``.
    :return: the results of every finished point's trials, by variant and trial number.
    :raises ValueError: a bad argument or a study made by another sweep file.
    """
    import optuna

    check_search(spec, n_trials)
    budget = n_trials if n_trials is not None else spec.search.n_trials
    out = Path(out_dir).resolve()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / STUDY_FILE}")
    search = _Search(spec, storage, budget)
    while True:
        while runner.pending() < runner.max_parallel:
            point = search.next_point()
            if point is None:
                break
            check_trials(point[2], out)
            task = runner.submit(run_point, point[2], str(out), search.snapshot(point[0]))
            search.inflight[task] = point
        if not runner.pending():
            break
        for outcome in runner.wait():
            for res in search.record(outcome):
                if on_result is not None:
                    on_result(res)
    return _all_results(spec, search.studies, search.collected, out)


class _Search:
    """The state of one invocation of :func:`run_search`: a study per variant, the points to
    resume or ask for, and the points in flight."""

    def __init__(self, spec: SweepSpec, storage: Any, budget: int) -> None:
        self.spec = spec
        self.studies = {
            v.name: _open_study(spec, v, storage, i) for i, v in enumerate(spec.variants)
        }
        self.spaces = {v.name: {p.name: p.distribution() for p in v.space} for v in spec.variants}
        self.sizes = {v.name: _space_size(v) for v in spec.variants}
        #: interrupted points first, then new ones, round robin over the variants
        self.resume: dict[str, list[Any]] = {}
        self.to_ask: dict[str, int] = {}
        self.collected: dict[tuple[str, int], list[TrialResult]] = {}
        self.inflight: dict[int, tuple[str, Any, list[Trial]]] = {}
        for v in spec.variants:
            self._plan(v, budget)

    def _plan(self, v: VariantSpec, budget: int) -> None:
        """Which of ``v``'s points this invocation resumes, and how many it asks for; failed
        points are tried again (once per invocation), as failed grid trials are."""
        from optuna.trial import TrialState

        study = self.studies[v.name]
        trials = study.trials
        running = [t for t in trials if t.state == TrialState.RUNNING]
        ok = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        self.resume[v.name] = running
        distinct = {_key(t.params) for t in ok}  # a repeated proposal counts once
        self.to_ask[v.name] = max(0, budget - len(distinct) - len(running))
        done = [t.params for t in ok + running + waiting]
        retry = [t.params for t in trials if t.state == TrialState.FAIL]
        for params in [p for i, p in enumerate(retry) if p not in done + retry[:i]]:
            if len(waiting) < self.to_ask[v.name]:
                study.enqueue_trial(params)
                waiting.append(params)

    def ask_new(self, v: VariantSpec) -> Any:
        """A point not run before (a repeat is told its known outcome and costs no budget);
        ``None`` when the space is exhausted or the sampler keeps repeating itself."""
        from optuna.trial import TrialState

        study = self.studies[v.name]
        for _ in range(_MAX_REPEATS):
            known = {
                _key(t.params): t
                for t in study.get_trials(deepcopy=False)
                if t.state != TrialState.FAIL
            }
            size = self.sizes[v.name]
            if size is not None and len(known) >= size:
                return None  # every point of a finite space has been run
            trial = study.ask(self.spaces[v.name])
            earlier = known.get(_key(trial.params))
            if earlier is None:
                return trial
            if earlier.state == TrialState.COMPLETE:
                study.tell(trial, earlier.value)
            elif earlier.state == TrialState.PRUNED:
                study.tell(trial, state=TrialState.PRUNED)
            else:  # still running: its outcome is not known yet
                study.tell(trial, state=TrialState.FAIL)
        return None

    def next_point(self) -> tuple[str, Any, list[Trial]] | None:
        """The next point to run, from the variant with the fewest points in flight."""
        import optuna

        order = sorted(
            self.spec.variants,
            key=lambda v: sum(x[0] == v.name for x in self.inflight.values()),
        )
        for v in order:
            trial: Any
            if self.resume[v.name]:
                frozen = self.resume[v.name].pop(0)
                trial = optuna.trial.Trial(self.studies[v.name], frozen._trial_id)
                params = frozen.params
            elif self.to_ask[v.name] > 0:
                self.to_ask[v.name] -= 1
                trial = self.ask_new(v)
                if trial is None:
                    self.to_ask[v.name] = 0
                    continue
                params = trial.params
            else:
                continue
            return v.name, trial, point_trials(self.spec, v, v.decode(params))
        return None

    def snapshot(self, vname: str) -> PruneSnapshot | None:
        """What the pruner of a point of ``vname`` compares against (None without pruning)."""
        from optuna.trial import TrialState

        if self.spec.search.pruner == "none":
            return None
        done = self.studies[vname].get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )
        return PruneSnapshot(self.spec.search.n_startup_trials, tuple(done))

    def record(self, outcome: Any) -> list[TrialResult]:
        """Tell the study a finished point's outcome; its trials' results."""
        vname, trial, trials = self.inflight.pop(outcome.task)
        if outcome.error is not None:
            err = f"{type(outcome.error).__name__}: {outcome.error}"
            results = [TrialResult(t, "failed", error=err) for t in trials]
        else:
            results = list(outcome.value)
        _tell(self.studies[vname], trial, trials, results)
        self.collected[(vname, trial.number)] = results
        return results


#: repeated proposals tolerated in a row before a variant's search stops asking
_MAX_REPEATS = 100


def _key(params: dict[str, Any]) -> str:
    """A point's parameters as a hashable key (list values included)."""
    return json.dumps(params, sort_keys=True, default=str)


def _space_size(variant: VariantSpec) -> int | None:
    """Number of points of a variant's search space if every parameter is a choice, else None."""
    import optuna

    size = 1
    for p in variant.space:
        dist = p.distribution()
        if not isinstance(dist, optuna.distributions.CategoricalDistribution):
            return None
        size *= len(dist.choices)
    return size


def _tell(study: Any, trial: Any, trials: Sequence[Trial], results: Sequence[TrialResult]) -> None:
    """Report a point's intermediate values and its outcome to the stored study."""
    from optuna.trial import TrialState

    for i, res in enumerate(results):
        for k, v in sorted(res.intermediate.items()):
            step = i * trials[i].checkpoints + k
            if step not in trial.storage.get_trial(trial._trial_id).intermediate_values:
                trial.report(v, step)
    statuses = [r.status for r in results]
    if "failed" in statuses:
        study.tell(trial, state=TrialState.FAIL)
    elif "pruned" in statuses:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        scores = [r.tune_score for r in results]
        if any(s is None for s in scores) or len(scores) != len(trials):
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, float(np.mean(cast("list[float]", scores))))


def _all_results(
    spec: SweepSpec,
    studies: dict[str, Any],
    collected: dict[tuple[str, int], list[TrialResult]],
    out: Path,
) -> list[TrialResult]:
    """Results of every finished point: this invocation's, and earlier ones' read back."""
    results: list[TrialResult] = []
    seen: set[str] = set()  # a point proposed twice (earlier versions ran it once) counts once
    for v in spec.variants:
        for frozen in studies[v.name].trials:
            key = (v.name, frozen.number)
            if key in collected:
                found = collected[key]
            elif frozen.state.is_finished():
                trials = point_trials(spec, v, v.decode(frozen.params))
                found = [r for r in (read_result(t, out) for t in trials) if r is not None]
            else:
                found = []
            results += [r for r in found if r.trial.name not in seen]
            seen.update(r.trial.name for r in found)
    return results
