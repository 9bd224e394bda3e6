"""Physics in JAX: the Stillinger-Weber potential, MD (velocity Verlet + Langevin), FIRE relaxation, melt-quench
amorphous silicon.

Modules: :mod:`~atomsmith.physics.stillinger_weber`, :mod:`~atomsmith.physics.verlet` (neighbour list with a skin),
:mod:`~atomsmith.physics.md`, :mod:`~atomsmith.physics.relax`, :mod:`~atomsmith.physics.melt_quench`,
:mod:`~atomsmith.physics.asi_set` (cached sets and the shipped cells).
"""

from atomsmith.physics.asi_set import load_shipped, make_asi_set
from atomsmith.physics.md import MDConfig, MDState, init_state, run
from atomsmith.physics.melt_quench import MeltQuenchConfig, melt_quench
from atomsmith.physics.relax import FireConfig, fire_relax
from atomsmith.physics.stillinger_weber import (
    PARAMETER_SETS,
    SILICON,
    VINK,
    SWModel,
    SWParams,
    evaluate,
    parameter_set,
    sw_energy_forces_stress,
)

__all__ = [
    "PARAMETER_SETS", "SILICON", "VINK", "FireConfig", "MDConfig", "MDState", "MeltQuenchConfig", "SWModel",
    "SWParams", "evaluate", "fire_relax", "init_state", "load_shipped", "make_asi_set", "melt_quench",
    "parameter_set", "run", "sw_energy_forces_stress",
]
