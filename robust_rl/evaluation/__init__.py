"""Robustness evaluation of any Stable-Baselines3 agent: suites, grids, observation attacks.

Modules (one job each):

* :mod:`~robust_rl.evaluation.rollouts`: seeded episodes of a policy on one MDP;
* :mod:`~robust_rl.evaluation.suites`: the suite registry (named test MDPs, uncertainty set,
  validation MDPs) and YAML suites;
* :mod:`~robust_rl.evaluation.suite_eval`: :func:`evaluate_suite`;
* :mod:`~robust_rl.evaluation.grids`: :func:`evaluate_grid`, parallel over processes or Ray;
* :mod:`~robust_rl.evaluation.attacks`: observation attacks (random, PGD, critic, MAD);
* :mod:`~robust_rl.evaluation.attack_eval`: :func:`evaluate_attacks` (return versus ε);
* :mod:`~robust_rl.evaluation.results`: :class:`EvaluationResults`, the one results type;
* :mod:`~robust_rl.evaluation.report`: PNG figures and :func:`save_results`;
* :mod:`~robust_rl.evaluation.models`: :func:`load_model` reads the algorithm from the file;
* :mod:`~robust_rl.evaluation.normalization`: a run's ``VecNormalize`` statistics in front of
  its model (:class:`NormalizedModel`);
* :mod:`~robust_rl.evaluation.stats`: :func:`compare_means` tells two agents apart over seeds.

.. code-block:: python

    from robust_rl.evaluation import evaluate_grid, evaluate_suite, save_results

    models = {"ppo": "runs/ppo/model.zip"}           # or live SB3 models
    res = evaluate_suite(models, "inverted-pendulum", n_episodes=20).merge(
        evaluate_grid(models, "inverted-pendulum", points=10, n_episodes=5, n_workers=2),
        name="report",
    )
    print(res.summary("ppo").grid_worst)
    save_results(res, "report/")                     # report.json/.csv/.md/.png
"""

from robust_rl.evaluation._parallel import Backend, RolloutTask, run_tasks
from robust_rl.evaluation.attack_eval import (
    evaluate_attacks,
    observation_scale,
    random_observation_scale,
)
from robust_rl.evaluation.attacks import (
    ATTACKS,
    AttackedPredictor,
    AttackName,
    ObservationAttack,
    attacks_for,
    critic_attack,
    mad_attack,
    pgd_attack,
    q_attack,
    random_attack,
    resolve_attack,
)
from robust_rl.evaluation.grids import evaluate_grid, grid_label
from robust_rl.evaluation.models import (
    MODEL_CLASSES,
    ModelClass,
    load_model,
    read_model_class,
    register_model_class,
)
from robust_rl.evaluation.normalization import (
    NormalizedModel,
    ObservationNormalization,
    find_vecnormalize,
    load_vecnormalize,
)
from robust_rl.evaluation.report import attack_png, grid_png, save_results
from robust_rl.evaluation.results import (
    CSV_COLUMNS,
    EvaluationResults,
    EvaluationRow,
    ModelSummary,
    RowKind,
    aggregate_over_seeds,
    strip_seed_suffix,
)
from robust_rl.evaluation.rollouts import (
    EnvSource,
    ModelLike,
    Predictor,
    RecurrentPredictor,
    evaluate_returns,
    make_env,
    resolve_model,
)
from robust_rl.evaluation.stats import Comparison, compare_means
from robust_rl.evaluation.suite_eval import evaluate_suite
from robust_rl.evaluation.suites import (
    GRID_SEPARATION,
    MAX_GRID_POINTS,
    MAX_GRID_SIZE,
    MDP,
    SUITES,
    Split,
    Suite,
    default_validation,
    get_suite,
    grid_points,
    grid_values,
    load_suite,
    on_inclusive_grid,
    register_suite,
    suite_names,
)

__all__ = [
    "ATTACKS",
    "CSV_COLUMNS",
    "GRID_SEPARATION",
    "MAX_GRID_POINTS",
    "MAX_GRID_SIZE",
    "MDP",
    "MODEL_CLASSES",
    "SUITES",
    "AttackName",
    "AttackedPredictor",
    "Backend",
    "Comparison",
    "EnvSource",
    "EvaluationResults",
    "EvaluationRow",
    "ModelClass",
    "ModelLike",
    "ModelSummary",
    "NormalizedModel",
    "ObservationAttack",
    "ObservationNormalization",
    "Predictor",
    "RecurrentPredictor",
    "RolloutTask",
    "RowKind",
    "Split",
    "Suite",
    "aggregate_over_seeds",
    "attack_png",
    "attacks_for",
    "compare_means",
    "critic_attack",
    "default_validation",
    "evaluate_attacks",
    "evaluate_grid",
    "evaluate_returns",
    "evaluate_suite",
    "find_vecnormalize",
    "get_suite",
    "grid_label",
    "grid_png",
    "grid_points",
    "grid_values",
    "load_model",
    "load_suite",
    "load_vecnormalize",
    "mad_attack",
    "make_env",
    "observation_scale",
    "on_inclusive_grid",
    "pgd_attack",
    "q_attack",
    "random_attack",
    "random_observation_scale",
    "read_model_class",
    "register_model_class",
    "register_suite",
    "resolve_attack",
    "resolve_model",
    "run_tasks",
    "save_results",
    "strip_seed_suffix",
    "suite_names",
]
