"""Run one trial: train, evaluate on the sweep's suite, write ``result.json`` atomically.

A trial's folder ``out/<trial.name>/`` holds the model, its checkpoint, TensorBoard logs,
``config.yaml``, ``train_info.json`` and ``result.json``: the trial, its status, its
intermediate validation means and its whole evaluation in compact form
(:meth:`~robust_rl.evaluation.EvaluationResults.to_dict` with ``compact=True``), which is all a
resume and a table need (``robust-rl report <trial>/result.json --out DIR`` renders its tables
and figures). ``result.json`` marks the trial finished: running the sweep again reads it back
instead of training (a ``result.json`` written by a different trial, e.g. after the sweep file
changed, is refused rather than reused). An unfinished trial continues from its last checkpoint
when that checkpoint belongs to the same run, else starts afresh.

Every trial is evaluated on the suite's **validation** split (``tune_episodes`` episodes from
``tune_seed``: the number sweeps rank on) and on the **test** split, the grid and the attacks
(``episodes`` from ``seed``: the numbers tables report), all in one
:class:`~robust_rl.evaluation.EvaluationResults` whose model name is the trial's name.

With ``trial.checkpoints > 0`` the trial also evaluates on the validation split during training
(after every ``n_timesteps / checkpoints`` steps), records the mean return in
``intermediate.json`` and asks a pruner whether to stop; a stopped trial is ``"pruned"``.
With ``trial.select == "best"`` the model of the checkpoint with the highest validation mean so
far is kept in ``best_model.zip`` (written atomically), and the trial is evaluated with it: the
policy is chosen on the validation split, as RL Zoo's ``EvalCallback`` keeps its best model, and
reported on the test split. ``result.json`` records the chosen checkpoint (``selected``).
"""

from __future__ import annotations

import copy
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from robust_rl.errors import InvalidArgumentError
from robust_rl.io import atomic_write_text, json_text
from robust_rl.sweep.spec import EvaluationSpec, Trial

__all__ = [
    "BEST_MODEL_FILE",
    "INTERMEDIATE_FILE",
    "RESULT_FILE",
    "STATUSES",
    "TrialResult",
    "check_trials",
    "checkpoint_freq",
    "evaluate_trial",
    "policy_file",
    "read_result",
    "run_trial",
    "stale_error",
]

RESULT_FILE = "result.json"
INTERMEDIATE_FILE = "intermediate.json"
BEST_MODEL_FILE = "best_model.zip"
#: ``done`` (run now), ``skipped`` (finished earlier, read back), ``pruned``, ``failed``; the
#: summary's ``trials.csv`` records a read-back trial as ``done`` (its outcome, not the invocation's)
STATUSES: tuple[str, ...] = ("done", "skipped", "pruned", "failed")

#: ``pruner(checkpoint_index, validation_mean) -> stop?`` (see :mod:`robust_rl.sweep.search`)
PruneFn = Callable[[int, float], bool]


@dataclass(frozen=True)
class TrialResult:
    """Outcome of one trial.

    :param trial: the trial.
    :param status: one of :data:`STATUSES`.
    :param evaluation: every evaluation of the trial's model (validation and test splits, grid,
        attacks), or None (failed or pruned).
    :param intermediate: ``{checkpoint index: mean validation return}`` during training.
    :param wall_time_s: training and evaluation time (of the run that finished it).
    :param error: the error and a short traceback of a failed trial.
    """

    trial: Trial
    status: str
    evaluation: Any = None  # EvaluationResults (imported lazily: it loads gymnasium)
    intermediate: dict[int, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    error: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # EvaluationResults holds read-only mappings that do not pickle: send its dict form
        evaluation = None if self.evaluation is None else self.evaluation.to_dict()
        fields = (self.trial, self.status, evaluation, self.intermediate, self.wall_time_s)
        return (_rebuild, (*fields, self.error))

    @property
    def ok(self) -> bool:
        """Whether the trial finished with an evaluation (``done`` or ``skipped``)."""
        return self.status in ("done", "skipped") and self.evaluation is not None

    def summary(self) -> Any:
        """The trial's :class:`~robust_rl.evaluation.ModelSummary` (None if not :attr:`ok`)."""
        return self.evaluation.summary(self.trial.name) if self.ok else None

    @property
    def tune_score(self) -> float | None:
        """Mean return over the validation MDPs: what sweeps rank on (None if not :attr:`ok`)."""
        s = self.summary()
        if s is None or not s.validation:
            return None
        return float(np.mean(list(s.validation.values())))


def _rebuild(
    trial: Trial,
    status: str,
    evaluation: dict[str, Any] | None,
    intermediate: dict[int, float],
    wall_time_s: float,
    error: str | None,
) -> TrialResult:
    """Inverse of :meth:`TrialResult.__reduce__`."""
    results = None
    if evaluation is not None:
        from robust_rl.evaluation import EvaluationResults

        results = EvaluationResults.from_dict(evaluation)
    return TrialResult(trial, status, results, intermediate, wall_time_s, error)


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _changed(
    recorded: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Keys (dotted inside mappings) whose values differ between two trial records."""
    out = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict) and key in ("config", "evaluation"):
            out += _changed(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(prefix + key)
    return out


def _record_of(trial: Trial, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``trial`` as JSON, without the fields a record written before they existed lacks and
    that hold their default (such a record describes the same trial)."""
    defaults = {f.name: f.default for f in fields(Trial) if f.default is not MISSING}
    current = _as_json(asdict(trial))
    return {
        k: v for k, v in current.items() if k in recorded or k not in defaults or v != defaults[k]
    }


def stale_error(trial: Trial, out_dir: str | os.PathLike[str]) -> str | None:
    """Why ``out_dir/<trial>/result.json`` does not belong to ``trial`` (None if it does)."""
    done = Path(out_dir) / trial.name / RESULT_FILE
    try:
        recorded = json.loads(done.read_text())["trial"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{done} is unreadable ({type(exc).__name__}: {exc}); delete it to rerun the trial"
    changed = _changed(recorded, _record_of(trial, recorded))
    if changed:
        return (
            f"{done} was written by a different trial (changed: {', '.join(changed)}); "
            "delete that trial's folder to rerun it, or choose another --out"
        )
    return None


def read_result(trial: Trial, out_dir: str | os.PathLike[str]) -> TrialResult | None:
    """The recorded result of a finished trial (status ``skipped`` or ``pruned``), None if it
    has not finished, status ``failed`` if its ``result.json`` belongs to another trial."""
    done = Path(out_dir) / trial.name / RESULT_FILE
    if not done.is_file():
        return None
    stale = stale_error(trial, out_dir)
    if stale is not None:
        return TrialResult(trial, "failed", error=f"InvalidArgumentError: {stale}")
    from robust_rl.evaluation import EvaluationResults

    data = json.loads(done.read_text())
    evaluation = data.get("evaluation")
    return TrialResult(
        trial,
        "pruned" if data.get("status") == "pruned" else "skipped",
        None if evaluation is None else EvaluationResults.from_dict(evaluation),
        {int(k): float(v) for k, v in data.get("intermediate", {}).items()},
        float(data.get("wall_time_s", 0.0)),
    )


def _validation_mean(model: Any, name: str, ev: EvaluationSpec, n_episodes: int) -> float:
    from robust_rl.evaluation import evaluate_suite

    res = evaluate_suite(
        {name: model}, ev.suite, n_episodes=n_episodes, seed=ev.tune_seed, split="validation"
    )
    return float(np.mean([row.mean for row in res.rows]))


def evaluate_trial(model: Any, name: str, ev: EvaluationSpec) -> Any:
    """Evaluate ``model`` as ``ev`` says, in one :class:`~robust_rl.evaluation.EvaluationResults`.

    :param model: a trained SB3 model (or a saved model's path).
    :param name: the model's name in the results (the trial's name).
    :param ev: the sweep's evaluation spec.
    """
    from robust_rl.evaluation import evaluate_grid, evaluate_suite

    models = {name: model}
    parts = [
        evaluate_suite(
            models, ev.suite, n_episodes=ev.tune_episodes, seed=ev.tune_seed, split=ev.tune_split
        ),
        evaluate_suite(
            models, ev.suite, n_episodes=ev.episodes, seed=ev.seed, split=ev.report_split
        ),
    ]
    if ev.grid_points:
        parts.append(
            evaluate_grid(
                models,
                ev.suite,
                n_episodes=ev.grid_episodes,
                seed=ev.seed,
                points=ev.grid_points,
                axes=list(ev.grid_axes) or None,
            )
        )
    for attack in ev.attacks:
        from robust_rl.evaluation import evaluate_attacks

        kwargs = {k: v for k, v in attack.items() if k != "episodes"}
        if "epsilons" in kwargs:
            kwargs["epsilons"] = tuple(kwargs["epsilons"])
        parts.append(
            evaluate_attacks(
                models,
                ev.suite,
                n_episodes=int(attack.get("episodes", ev.episodes)),
                seed=ev.seed,
                split=ev.report_split,
                **kwargs,
            )
        )
    return parts[0].merge(*parts[1:], name="evaluation")


def policy_file(select: str) -> str:
    """The file in a trial's folder holding the policy it is evaluated with: ``best_model.zip``
    under ``select: best``, else the final ``model.zip``."""
    from robust_rl.training import MODEL_FILE

    return BEST_MODEL_FILE if select == "best" else MODEL_FILE


def _marks(trial: Trial) -> list[int]:
    """The timesteps of the trial's checkpoints (the last one is the end of training)."""
    total = int(trial.config["n_timesteps"])
    return [max(1, total * (k + 1) // trial.checkpoints) for k in range(trial.checkpoints)]


def _best_checkpoint(recorded: Mapping[int, float]) -> int:
    """The checkpoint with the highest validation mean, the earliest among ties."""
    if not recorded:
        raise InvalidArgumentError("select: best found no validation checkpoint to choose from")
    best = max(recorded.values())
    return min(k for k, v in recorded.items() if v == best)


def _make_callback(
    trial: Trial, folder: Path, pruner: PruneFn | None, recorded: dict[int, float]
) -> Any:
    """An SB3 callback evaluating on the validation split at the trial's checkpoints."""
    from stable_baselines3.common.callbacks import BaseCallback

    from robust_rl.training import save_model

    marks = _marks(trial)

    class ValidationCheckpoints(BaseCallback):
        """Mean validation return at each checkpoint; stops training when the pruner says so."""

        pruned = False

        def _on_step(self) -> bool:
            for k, mark in enumerate(marks):
                if k in recorded or self.num_timesteps < mark:
                    continue
                value = _validation_mean(
                    self.model, trial.name, trial.evaluation, trial.checkpoint_episodes
                )
                if trial.select == "best" and value > max(recorded.values(), default=-np.inf):
                    save_model(self.model, folder / BEST_MODEL_FILE)
                recorded[k] = value
                atomic_write_text(
                    folder / INTERMEDIATE_FILE,
                    json.dumps({str(i): v for i, v in sorted(recorded.items())}),
                    force=True,
                )
                if pruner is not None and pruner(k, value):
                    self.pruned = True
                    return False
            return True

    return ValidationCheckpoints()


def check_trials(trials: Sequence[Trial], out: Path) -> None:
    """Refuse duplicate trial names, and finished trials in ``out`` written by other trials
    (checked before anything runs)."""
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("trial names must be unique (they name the trials' folders)")
    for trial in trials:
        if (out / trial.name / RESULT_FILE).is_file():
            stale = stale_error(trial, out)
            if stale is not None:
                raise InvalidArgumentError(stale)


def checkpoint_freq(n_timesteps: int) -> int:
    """Steps between a trial's checkpoints: a quarter of the run, at most 10,000 steps."""
    return max(1, min(10_000, n_timesteps // 4))


def _can_resume(trial: Trial, folder: Path) -> bool:
    import yaml

    from robust_rl.checkpoints import load_checkpoint
    from robust_rl.training import CHECKPOINT_FILE

    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return False
    try:
        meta = load_checkpoint(path).meta
        config = yaml.safe_load(yaml.safe_dump(dict(trial.config)))
        return not meta.mismatches(trial.algo, trial.env, trial.seed, config)
    except Exception:  # unreadable (e.g. written by an older version): start afresh
        return False


def run_trial(
    trial: Trial,
    out_dir: str | os.PathLike[str],
    torch_threads: int = 1,
    pruner: PruneFn | None = None,
) -> TrialResult:
    """Train, evaluate and record one trial in ``out_dir/<trial.name>/`` (never raises).

    :param trial: the trial.
    :param out_dir: the sweep's output folder.
    :param torch_threads: torch threads in this process.
    :param pruner: asked at each intermediate validation evaluation whether to stop.
    :return: ``skipped`` with the recorded results if it finished earlier, ``done``,
        ``pruned``, or ``failed`` with the error (also for a ``result.json`` of another trial).
    """
    import torch

    from robust_rl.training import load_model, train

    torch.set_num_threads(torch_threads)
    folder = Path(out_dir) / trial.name
    start = time.perf_counter()
    try:
        previous = read_result(trial, out_dir)
        if previous is not None:
            return previous
        recorded: dict[int, float] = {}
        resume = _can_resume(trial, folder)
        if resume and (folder / INTERMEDIATE_FILE).is_file():
            data = json.loads((folder / INTERMEDIATE_FILE).read_text())
            recorded = {int(k): float(v) for k, v in data.items()}
        callback = _make_callback(trial, folder, pruner, recorded) if trial.checkpoints else None
        result = train(
            trial.algo,
            trial.env,
            copy.deepcopy(trial.config),  # SB3 may add keys to policy_kwargs in place
            trial.seed,
            folder,
            tensorboard_log=str(folder / "tb"),
            force=True,
            resume=resume,
            callback=callback,
            checkpoint_freq=checkpoint_freq(int(trial.config["n_timesteps"])),
        )
        record: dict[str, Any] = {"trial": asdict(trial), "intermediate": recorded}
        if callback is not None and callback.pruned:
            record.update(status="pruned", evaluation=None)
            evaluation = None
        else:
            from robust_rl.evaluation import EvaluationResults

            model = result.model
            if trial.select == "best":
                selected = _best_checkpoint(recorded)
                record["selected"] = {
                    "checkpoint": selected,
                    "timesteps": _marks(trial)[selected],
                    "validation_mean": recorded[selected],
                }
                # the model the checkpoint measured (an off-policy agent trains once more
                # after its last step, so the final model differs even when the last is chosen)
                model = load_model(folder / BEST_MODEL_FILE, device=str(result.model.device))
            measured = evaluate_trial(model, trial.name, trial.evaluation)
            compact = measured.to_dict(compact=True)
            # what a resume reads back, so that a resumed sweep ranks on the same numbers
            evaluation = EvaluationResults.from_dict(compact)
            record.update(status="done", evaluation=compact)
        wall = time.perf_counter() - start
        record["wall_time_s"] = wall
        atomic_write_text(folder / RESULT_FILE, json_text(record), force=True)
        return TrialResult(trial, str(record["status"]), evaluation, dict(recorded), wall)
    except Exception as exc:  # a failed trial is reported, the sweep goes on
        return TrialResult(
            trial,
            "failed",
            wall_time_s=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
        )
