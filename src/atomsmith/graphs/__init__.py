"""Periodic graphs: host neighbour lists (NumPy, explicit image shifts), the fixed-capacity JAX neighbour list,
padded batches and local environments.

Modules: :mod:`~atomsmith.graphs.neighbors`, :mod:`~atomsmith.graphs.neighbors_jax`,
:mod:`~atomsmith.graphs.batching`, :mod:`~atomsmith.graphs.environments`. Names are resolved lazily, so that the
NumPy path imports no JAX.
"""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.graphs.neighbors": ("PeriodicGraph", "edge_vectors", "image_counts", "neighbor_list"),
    "atomsmith.graphs.neighbors_jax": ("NeighborSpec", "neighbor_list_jax"),
    "atomsmith.graphs.batching": ("GraphBatch", "batch_graphs", "bucket_size"),
    "atomsmith.graphs.environments": ("Environments", "local_environments"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
