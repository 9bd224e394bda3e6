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
from atomsmith.physics.stillinger_weber import SILICON, _cutoff_exp, _inside, degree_table, pair_term


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
        p = self.params
        n_nodes = batch.n_nodes
        vectors = batch.edge_vectors()  # [E, 3]
        r = jnp.sqrt(jnp.where(batch.edge_mask, jnp.sum(vectors ** 2, axis=-1), 1.0))
        inside = _inside(r, batch.edge_mask, p)
        node_pair = 0.5 * jax.ops.segment_sum(pair_term(r, inside, p), batch.receivers, num_segments=n_nodes)
        # three-body: edges grouped by centre (a stable sort keeps the batch's own order within a centre)
        key = jnp.where(inside, batch.receivers, n_nodes)
        order = jnp.argsort(key, stable=True)
        table, overflow = degree_table(key[order], inside[order], n_nodes, self.max_degree)
        n_edges = r.shape[0]
        table = jnp.where(table < n_edges, jnp.concatenate([order, jnp.zeros((1,), order.dtype)])[table], n_edges)
        pad = lambda x, v: jnp.concatenate([x, jnp.full((1,) + x.shape[1:], v, x.dtype)])  # noqa: E731
        vec_t = pad(vectors, 0.0)[table]  # [N, D, 3]
        r_t = pad(r, 1.0)[table]
        in_t = pad(inside, False)[table]
        f_t = _cutoff_exp(r_t, in_t, p.gamma, p)
        cos = jnp.sum(vec_t[:, :, None, :] * vec_t[:, None, :, :], axis=-1) / (r_t[:, :, None] * r_t[:, None, :])
        upper = jnp.triu(jnp.ones((self.max_degree, self.max_degree), bool), k=1)
        angular = jnp.where(upper, (cos - p.cos_theta0) ** 2, 0.0)
        node_three = p.lam * p.epsilon * jnp.sum(angular * f_t[:, :, None] * f_t[:, None, :], axis=(1, 2))
        node_energy = jnp.where(batch.node_mask, node_pair + node_three, 0.0)
        energy = jax.ops.segment_sum(node_energy, batch.node_graph, num_segments=batch.n_graphs)
        per_atom = energy / jnp.maximum(batch.n_atoms, 1).astype(energy.dtype)
        per_atom = jnp.where(overflow, jnp.nan, per_atom)
        return jnp.where(batch.graph_mask, per_atom, 0.0)
