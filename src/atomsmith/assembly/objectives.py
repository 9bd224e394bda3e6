"""A guidance objective for a-Si assembly: Stillinger-Weber energy per atom of each structure in a GraphBatch.

Follows :class:`atomsmith.guidance.Objective` (``(batch, species_weights=None) -> [G]``, lower is better, 0 on padding
graphs), so it combines with the shared objectives (``w * a + b``) and works with ``guidance.value_and_grad``.
The batch's edges must reach the SW cutoff (3.77 Å for silicon); the terms reuse :mod:`atomsmith.physics`.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.base import Combinable
from atomsmith.physics.stillinger_weber import SILICON, sw_node_energies


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
        n_nodes = batch.n_nodes
        # the per-atom table needs the real edges grouped by centre; a stable sort keeps the batch's own order
        order = jnp.argsort(jnp.where(batch.edge_mask, batch.receivers, n_nodes), stable=True)
        node_energy, overflow = sw_node_energies(batch.edge_vectors()[order], batch.receivers[order],
                                                 batch.edge_mask[order], n_nodes, self.params, self.max_degree)
        node_energy = jnp.where(batch.node_mask, node_energy, 0.0)
        energy = jax.ops.segment_sum(node_energy, batch.node_graph, num_segments=batch.n_graphs)
        per_atom = energy / jnp.maximum(batch.n_atoms, 1).astype(energy.dtype)
        per_atom = jnp.where(overflow, jnp.nan, per_atom)
        return jnp.where(batch.graph_mask, per_atom, 0.0)
