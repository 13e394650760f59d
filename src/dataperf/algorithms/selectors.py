"""The selection algorithms by command-line name."""

from __future__ import annotations

from dataperf.algorithms.nested_cv import NestedCVSelector
from dataperf.algorithms.noise_aware import NoiseAwareSelector
from dataperf.algorithms.selection import (
    ConfidenceSelector,
    FacilityLocationSelector,
    FPSCVSelector,
    PseudoLabelSelector,
    RandomSelector,
    Selector,
    UncertaintySelector,
)

__all__ = ["SELECTORS"]

SELECTORS: dict[str, type[Selector]] = {
    "random": RandomSelector,
    "confidence": ConfidenceSelector,
    "fps-cv": FPSCVSelector,
    "uncertainty": UncertaintySelector,
    "facility-location": FacilityLocationSelector,
    "pseudo-label": PseudoLabelSelector,
    "nested-cv": NestedCVSelector,
    "noise-aware": NoiseAwareSelector,
}
