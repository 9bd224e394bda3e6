"""Differentiable guidance objectives shared by every generator (diffusion, VAEs, MCTS).

See :mod:`atomsmith.guidance.base` for the interface (``objective(batch, species_weights=None) -> [G]``,
:func:`value_and_grad`) and :mod:`atomsmith.guidance.objectives` for the objectives.
"""

from atomsmith.guidance.base import Combinable, GuidanceGradients, Objective, WeightedSum, value_and_grad
from atomsmith.guidance.objectives import (
    MinDistance,
    PropertyExtremum,
    PropertyRange,
    PropertyTarget,
    TensorMatch,
    maximize,
    minimize,
    property_per_structure,
)

__all__ = [
    "Combinable",
    "GuidanceGradients",
    "MinDistance",
    "Objective",
    "PropertyExtremum",
    "PropertyRange",
    "PropertyTarget",
    "TensorMatch",
    "WeightedSum",
    "maximize",
    "minimize",
    "property_per_structure",
    "value_and_grad",
]
