"""The shared estimator core: uniform ball sampling, boxes of parameters, set functionals and (multilevel) Monte Carlo
estimators of the entropic risk. Imports torch only; nothing here logs or prints.
"""

from robust_rl.risk.ball import sample_ball
from robust_rl.risk.functionals import (
    EntropicFunctional,
    SetFunctional,
    entropic_max,
    entropic_min,
    log_mean_exp,
    soft_min_of_max,
    soft_min_then_max,
)
from robust_rl.risk.gibbs import GibbsSample, sample_worst_case
from robust_rl.risk.levels import (
    LEVEL_SAMPLING,
    LevelDraw,
    LevelSampler,
    expected_evaluations,
    level_probabilities,
    sample_levels,
    systematic_counts,
)
from robust_rl.risk.mlmc import (
    EntropicRiskResult,
    FunctionalEstimator,
    MLMCEstimate,
    entropic_risk,
    estimate_functional,
)
from robust_rl.risk.pgd import attack_mode, ball_ascent
from robust_rl.risk.samplers import BOX_DISTRIBUTIONS, BoxSampler, Sampler
from robust_rl.risk.spec import EstimatorSpec

__all__ = [
    "BOX_DISTRIBUTIONS",
    "LEVEL_SAMPLING",
    "BoxSampler",
    "EntropicFunctional",
    "EntropicRiskResult",
    "EstimatorSpec",
    "FunctionalEstimator",
    "GibbsSample",
    "LevelDraw",
    "LevelSampler",
    "MLMCEstimate",
    "Sampler",
    "SetFunctional",
    "attack_mode",
    "ball_ascent",
    "entropic_max",
    "entropic_min",
    "entropic_risk",
    "estimate_functional",
    "expected_evaluations",
    "level_probabilities",
    "log_mean_exp",
    "sample_ball",
    "sample_levels",
    "sample_worst_case",
    "soft_min_of_max",
    "soft_min_then_max",
    "systematic_counts",
]
