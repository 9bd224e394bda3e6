"""An assembly state as a one-structure :class:`GraphBatch`, built inside ``jit`` (fixed edge capacity)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.graphs.neighbors_jax import NeighborSpec, neighbor_list_jax


def neighbor_spec(lattice, n_atoms: int, cutoff: float, max_neighbors: int = 48) -> NeighborSpec:
    """Static spec for graphs of this cell: capacity ``max_neighbors * n_atoms`` edges."""
    import numpy as np

    return NeighborSpec.for_lattice(np.asarray(lattice, np.float64), cutoff, max_neighbors * n_atoms)


def state_graph(positions: jax.Array, occupied: jax.Array, numbers: jax.Array, lattice: jax.Array,
                spec: NeighborSpec) -> tuple[GraphBatch, jax.Array]:
    """``(batch, overflow)``: graph 0 holds the occupied slots of ``positions [N, 3]`` Å; empty slots and one extra
    node (index N) are padding nodes of padding graph 1. ``numbers [N]`` atomic numbers. Node order is slot order."""
    n = positions.shape[0]
    dtype = positions.dtype
    frac = positions @ jnp.linalg.inv(lattice)
    nbrs = neighbor_list_jax(frac, lattice, spec, atom_mask=occupied)
    pad_node = n
    senders = jnp.where(nbrs.mask, nbrs.senders, pad_node)
    receivers = jnp.where(nbrs.mask, nbrs.receivers, pad_node)
    node_mask = jnp.concatenate([occupied, jnp.zeros((1,), bool)])
    batch = GraphBatch(
        frac_coords=jnp.concatenate([frac, jnp.zeros((1, 3), dtype)]),
        numbers=jnp.concatenate([jnp.where(occupied, numbers, 0), jnp.zeros((1,), numbers.dtype)]),
        node_graph=jnp.where(node_mask, 0, 1).astype(jnp.int32),
        node_mask=node_mask,
        lattices=jnp.stack([lattice, jnp.eye(3, dtype=dtype)]),
        graph_mask=jnp.asarray([True, False]),
        n_atoms=jnp.stack([jnp.sum(occupied).astype(jnp.int32), jnp.asarray(0, jnp.int32)]),
        senders=senders.astype(jnp.int32), receivers=receivers.astype(jnp.int32),
        shifts=jnp.where(nbrs.mask[:, None], nbrs.shifts, 0.0).astype(dtype), edge_mask=nbrs.mask)
    return batch, nbrs.overflow
