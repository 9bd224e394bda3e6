"""Padded batches of periodic graphs with a few fixed bucket shapes, so jitted training never recompiles much.

A :class:`GraphBatch` is a flat (jraph-style) pytree: nodes and edges of all graphs concatenated, then padded.
Padding nodes belong to an extra padding graph (``graph_mask`` False) and padding edges join a padding node to
itself with zero shift (``edge_mask`` False), so segment sums never mix padding into real graphs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors import PeriodicGraph, neighbor_list
from atomsmith.structures.crystal import Crystal


@flax.struct.dataclass
class GraphBatch:
    """Padded batch of periodic graphs.

    Attributes:
      frac_coords: ``[N, 3]`` fractional coordinates.
      numbers: ``[N]`` int atomic numbers (0 for padding).
      node_graph: ``[N]`` int graph index of each node (padding nodes -> the last, padding graph).
      node_mask: ``[N]`` bool.
      lattices: ``[G, 3, 3]`` rows in Å (identity for padding graphs).
      graph_mask: ``[G]`` bool.
      n_atoms: ``[G]`` int.
      senders, receivers: ``[E]`` int (global node indices); edge vector = pos[s] - pos[r] + shift @ L.
      shifts: ``[E, 3]`` float image offsets.
      edge_mask: ``[E]`` bool.
      properties: name -> ``[G, ...]`` per-graph targets (NaN where missing).
      site_properties: name -> ``[N, ...]`` per-node targets.
    """

    frac_coords: jax.Array
    numbers: jax.Array
    node_graph: jax.Array
    node_mask: jax.Array
    lattices: jax.Array
    graph_mask: jax.Array
    n_atoms: jax.Array
    senders: jax.Array
    receivers: jax.Array
    shifts: jax.Array
    edge_mask: jax.Array
    properties: dict = flax.struct.field(default_factory=dict)
    site_properties: dict = flax.struct.field(default_factory=dict)

    @property
    def n_graphs(self) -> int:
        return int(self.graph_mask.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.node_mask.shape[0])

    def positions(self) -> jax.Array:
        """Cartesian positions ``[N, 3]`` Å (differentiable in ``frac_coords`` and ``lattices``)."""
        return jnp.einsum("ni,nij->nj", self.frac_coords, self.lattices[self.node_graph])

    def edge_vectors(self) -> jax.Array:
        """Edge vectors ``[E, 3]`` Å, recomputed from coordinates, lattices and shifts."""
        pos = self.positions()
        edge_lattice = self.lattices[self.node_graph[self.receivers]]
        return pos[self.senders] - pos[self.receivers] + jnp.einsum("ei,eij->ej", self.shifts, edge_lattice)


def bucket_size(n: int, minimum: int = 8) -> int:
    """Round ``n`` up to the ladder 8, 12, 16, 24, 32, 48, ... (powers of two and 1.5x them)."""
    n = max(int(n), minimum)
    p = 2 ** math.floor(math.log2(n))
    for candidate in (p, p * 3 // 2, 2 * p):
        if candidate >= n:
            return candidate
    return 2 * p


def pad_sizes(n_nodes: int, n_edges: int, n_graphs: int) -> tuple[int, int, int]:
    """Bucketed (nodes, edges, graphs), each with room for at least one padding element."""
    return bucket_size(n_nodes + 1), bucket_size(n_edges + 1), n_graphs + 1


def batch_graphs(crystals: Sequence[Crystal], graphs: Sequence[PeriodicGraph] | None = None, cutoff: float = 5.0,
                 sizes: tuple[int, int, int] | None = None, property_keys: Sequence[str] = (),
                 site_property_keys: Sequence[str] = (), dtype=np.float32) -> GraphBatch:
    """Concatenate and pad crystals into one :class:`GraphBatch` (host side, NumPy -> jnp).

    Args:
      crystals: the structures.
      graphs: their neighbour lists (computed with ``cutoff`` if not given).
      sizes: ``(n_nodes, n_edges, n_graphs)`` including padding; by default :func:`pad_sizes` buckets.
      property_keys: per-structure properties to carry (missing ones become NaN).
      site_property_keys: per-atom properties to carry.
    """
    if graphs is None:
        graphs = [neighbor_list(c, cutoff) for c in crystals]
    n_nodes = sum(c.n_atoms for c in crystals)
    n_edges = sum(g.n_edges for g in graphs)
    if sizes is None:
        sizes = pad_sizes(n_nodes, n_edges, len(crystals))
    max_nodes, max_edges, max_graphs = sizes
    if n_nodes > max_nodes - 1:
        raise ValueError(f"{n_nodes} nodes do not fit a batch of {max_nodes} (one node is kept for padding)")
    if n_edges > max_edges:
        raise ValueError(f"{n_edges} edges do not fit a batch of {max_edges}")
    if len(crystals) > max_graphs - 1:
        raise ValueError(f"{len(crystals)} graphs do not fit a batch of {max_graphs} (one is kept for padding)")

    pad_graph = max_graphs - 1
    frac = np.zeros((max_nodes, 3), dtype)
    numbers = np.zeros((max_nodes,), np.int32)
    node_graph = np.full((max_nodes,), pad_graph, np.int32)
    node_mask = np.zeros((max_nodes,), bool)
    lattices = np.tile(np.eye(3, dtype=dtype), (max_graphs, 1, 1))
    graph_mask = np.zeros((max_graphs,), bool)
    n_atoms = np.zeros((max_graphs,), np.int32)
    senders = np.full((max_edges,), max_nodes - 1, np.int32)
    receivers = np.full((max_edges,), max_nodes - 1, np.int32)
    shifts = np.zeros((max_edges, 3), dtype)
    edge_mask = np.zeros((max_edges,), bool)
    node_off = edge_off = 0
    for k, (crystal, graph) in enumerate(zip(crystals, graphs)):
        n, e = crystal.n_atoms, graph.n_edges
        frac[node_off:node_off + n] = crystal.frac_coords
        numbers[node_off:node_off + n] = crystal.numbers
        node_graph[node_off:node_off + n] = k
        node_mask[node_off:node_off + n] = True
        lattices[k] = crystal.lattice
        graph_mask[k] = True
        n_atoms[k] = n
        senders[edge_off:edge_off + e] = graph.senders + node_off
        receivers[edge_off:edge_off + e] = graph.receivers + node_off
        shifts[edge_off:edge_off + e] = graph.shifts
        edge_mask[edge_off:edge_off + e] = True
        node_off += n
        edge_off += e
    props = {}
    for key in property_keys:
        values = [np.asarray(c.properties.get(key, np.nan), np.float64) for c in crystals]
        shape = next((v.shape for v in values if not np.all(np.isnan(v))), ())
        arr = np.full((max_graphs, *shape), np.nan, dtype)
        for k, v in enumerate(values):
            arr[k] = np.broadcast_to(v, shape)
        props[key] = jnp.asarray(arr)
    site_props = {}
    for key in site_property_keys:
        first = np.asarray(crystals[0].site_properties[key])
        arr = np.zeros((max_nodes, *first.shape[1:]), dtype)
        off = 0
        for crystal in crystals:
            arr[off:off + crystal.n_atoms] = crystal.site_properties[key]
            off += crystal.n_atoms
        site_props[key] = jnp.asarray(arr)
    return GraphBatch(
        frac_coords=jnp.asarray(frac), numbers=jnp.asarray(numbers), node_graph=jnp.asarray(node_graph),
        node_mask=jnp.asarray(node_mask), lattices=jnp.asarray(lattices), graph_mask=jnp.asarray(graph_mask),
        n_atoms=jnp.asarray(n_atoms), senders=jnp.asarray(senders), receivers=jnp.asarray(receivers),
        shifts=jnp.asarray(shifts), edge_mask=jnp.asarray(edge_mask), properties=props, site_properties=site_props)


def iterate_batches(crystals: Sequence[Crystal], batch_size: int, cutoff: float, rng: np.random.Generator | None,
                    graphs: Sequence[PeriodicGraph] | None = None, sizes: tuple[int, int, int] | None = None,
                    property_keys: Sequence[str] = (), site_property_keys: Sequence[str] = ()):
    """Yield :class:`GraphBatch` es over ``crystals`` (shuffled if ``rng`` is given).

    With ``sizes=None`` each batch is padded to the smallest bucket that fits, so a training run sees only a
    handful of distinct shapes (one compilation each). Pass ``sizes`` (e.g. from :func:`fixed_sizes`) for one.
    """
    if graphs is None:
        graphs = [neighbor_list(c, cutoff) for c in crystals]
    order = np.arange(len(crystals)) if rng is None else rng.permutation(len(crystals))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield batch_graphs([crystals[i] for i in idx], [graphs[i] for i in idx], cutoff, sizes,
                           property_keys, site_property_keys)


def fixed_sizes(crystals: Sequence[Crystal], graphs: Sequence[PeriodicGraph], batch_size: int) -> tuple[int, int, int]:
    """One padded shape that fits any ``batch_size`` structures of this set (worst case, bucketed)."""
    nodes = sorted((c.n_atoms for c in crystals), reverse=True)[:batch_size]
    edges = sorted((g.n_edges for g in graphs), reverse=True)[:batch_size]
    return pad_sizes(sum(nodes), sum(edges), batch_size)
