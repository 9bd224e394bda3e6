"""A guidance objective for a-Si assembly: Stillinger-Weber energy per atom of each structure in a GraphBatch.

Follows :class:`atomsmith.guidance.Objective` (``(batch, species_weights=None) -> [G]``, lower is better, 0 on padding
graphs), so it combines with the shared objectives (``w * a + b``) and works with ``guidance.value_and_grad``.
The batch's edges must reach the SW cutoff (3.77 Å for silicon); the value is
:func:`atomsmith.guidance.amorphous.sw_energy_per_atom` (terms from :mod:`atomsmith.physics`).
"""

from __future__ import annotations

import flax.struct
import jax

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.amorphous import sw_energy_per_atom
from atomsmith.guidance.base import Combinable
from atomsmith.physics.stillinger_weber import SILICON


@flax.struct.dataclass
class SWEnergyPerAtom(Combinable):
    """SW energy (eV) of each structure divided by its atom count (eV/atom); species are ignored (all Si).

    ``max_degree`` bounds the neighbours within the SW cutoff per atom (three-body table); an atom with more makes
    the value NaN rather than silently wrong.
    """

    params: object = flax.struct.field(pytree_node=False, default=SILICON)
    max_degree: int = flax.struct.field(pytree_node=False, default=32)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        del species_weights
        return sw_energy_per_atom(batch, self.params, self.max_degree)
