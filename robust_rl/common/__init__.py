"""What the robust agents share: observation perturbation and the robust-agent base."""

from robust_rl.common.observations import (
    ObservationPerturbation,
    RadiusSpec,
    UnsupportedSpaceError,
)
from robust_rl.common.robust import RADIUS_SCALES, ROBUST_SETTINGS, RobustAgentMixin

__all__ = [
    "RADIUS_SCALES",
    "ROBUST_SETTINGS",
    "ObservationPerturbation",
    "RadiusSpec",
    "RobustAgentMixin",
    "UnsupportedSpaceError",
]
