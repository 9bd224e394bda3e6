"""Local environments as graphs for the shared encoder (used by both environment VAEs).

An environment (centre at the origin plus ``n`` neighbour vectors, Å) becomes an open-boundary cluster of
``n + 1`` atoms: node 0 is the centre, nodes ``1..n`` the neighbours, every ordered pair of atoms an edge (the
encoder's radial cutoff decides which edges carry messages), identity 'lattices' and zero image shifts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.batching import GraphBatch


def cluster_graph(vectors: jax.Array, numbers: jax.Array | None = None) -> GraphBatch:
    """Environments ``[B, n, 3]`` Å as one :class:`GraphBatch` of ``B`` clusters plus one padding graph.

    Args:
      vectors: ``[B, n, 3]`` neighbour minus centre, Å.
      numbers: ``[B, n + 1]`` int atomic numbers (centre first, then the neighbours in the order of ``vectors``);
        all Si (14) when omitted.

    Node ``b * (n + 1)`` is the centre of environment ``b`` at the origin. Edge vectors are
    ``pos[sender] - pos[receiver]`` (zero shifts), so the encoder's output is a function of the geometry only.
    """
    b, n, _ = vectors.shape
    m = n + 1
    pos = jnp.concatenate([jnp.zeros((b, 1, 3), vectors.dtype), vectors], axis=1).reshape(b * m, 3)
    if numbers is None:
        numbers = jnp.full((b * m,), 14, jnp.int32)
    else:
        assert numbers.shape == (b, m), (numbers.shape, (b, m))
        numbers = jnp.asarray(numbers, jnp.int32).reshape(b * m)
    i, j = np.where(~np.eye(m, dtype=bool))
    offsets = (np.arange(b) * m)[:, None]
    senders = jnp.asarray((offsets + j[None]).reshape(-1), jnp.int32)
    receivers = jnp.asarray((offsets + i[None]).reshape(-1), jnp.int32)
    return GraphBatch(
        frac_coords=pos, numbers=numbers,
        node_graph=jnp.asarray(np.repeat(np.arange(b), m), jnp.int32), node_mask=jnp.ones((b * m,), bool),
        lattices=jnp.tile(jnp.eye(3, dtype=vectors.dtype), (b + 1, 1, 1)),
        graph_mask=jnp.asarray(np.arange(b + 1) < b), n_atoms=jnp.asarray(np.r_[np.full(b, m), 0], jnp.int32),
        senders=senders, receivers=receivers, shifts=jnp.zeros((len(i) * b, 3), vectors.dtype),
        edge_mask=jnp.ones((len(i) * b,), bool))
