"""Differentiable guidance objectives shared by every generator (diffusion, VAEs, MCTS).

See :mod:`atomsmith.guidance.base` for the interface (``objective(batch, species_weights=None) -> [G]``,
:func:`value_and_grad`) and :mod:`atomsmith.guidance.objectives` for the objectives.
"""

from atomsmith.guidance.amorphous import FourFoldFraction, FourFoldTarget, SWEnergyTarget
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
from atomsmith.guidance.stability import GammaStability
from atomsmith.guidance.tensors import AnisotropyTarget, deviatoric_norm, tensor_anisotropy

__all__ = [
    "AnisotropyTarget",
    "Combinable",
    "FourFoldFraction",
    "FourFoldTarget",
    "GammaStability",
    "GuidanceGradients",
    "MinDistance",
    "Objective",
    "PropertyExtremum",
    "PropertyRange",
    "PropertyTarget",
    "SWEnergyTarget",
    "TensorMatch",
    "WeightedSum",
    "deviatoric_norm",
    "maximize",
    "minimize",
    "property_per_structure",
    "tensor_anisotropy",
    "value_and_grad",
]
