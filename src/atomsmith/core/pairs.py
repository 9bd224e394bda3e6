"""The periodic pair search on plain arrays: every (centre, neighbour, image) within a cutoff.

The one search behind :meth:`atomsmith.structures.crystal.Crystal.close_pairs` (overlap checks) and
:func:`atomsmith.graphs.neighbors.neighbor_list` (graphs); it takes arrays, not a ``Crystal``, so that structures
and graphs both sit above it. Conventions (those of :mod:`atomsmith.graphs.neighbors`):

* an edge ``e`` goes from ``senders[e]`` (the neighbour, j) to ``receivers[e]`` (the centre, i);
* its vector is ``positions[j] - positions[i] + shifts[e] @ lattice`` (Å); ``shifts`` are integer image offsets;
* every pair within the cutoff appears in both directions, and each periodic image of a neighbour separately.
"""

from __future__ import annotations

import numpy as np


def edge_vectors(positions, lattice, senders, receivers, shifts):
    """``positions[senders] - positions[receivers] + shifts @ lattice``; works for NumPy and JAX arrays.

    Args:
      positions: ``[n_atoms, 3]`` Cartesian Å.
      lattice: ``[3, 3]`` rows a, b, c in Å.
      senders, receivers: ``[n_edges]`` int.
      shifts: ``[n_edges, 3]`` integer image offsets (any numeric dtype).
    Returns:
      ``[n_edges, 3]`` Å.
    """
    return positions[senders] - positions[receivers] + shifts @ lattice


def periodic_pairs(lattice: np.ndarray, positions: np.ndarray, cutoff: float, self_interaction: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j, image) with ``|r_j + S L - r_i| < cutoff`` Å in a cell periodic along all three vectors.

    Uses ase's binned ``primitive_neighbor_list`` (linear in the number of atoms, exact for any triclinic cell).

    Args:
      lattice: ``[3, 3]`` rows a, b, c in Å.
      positions: ``[n_atoms, 3]`` Cartesian Å.
      cutoff: radius in Å (> 0).
      self_interaction: add the zero-length i -> i edge (never wanted in message passing).
    Returns:
      ``(senders [n_edges], receivers [n_edges], shifts [n_edges, 3])``, int64, sorted by receiver, then sender.
    Raises:
      ValueError: ``cutoff <= 0``.
    """
    from ase.neighborlist import primitive_neighbor_list

    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    if len(positions) == 0:
        empty = np.zeros((0,), np.int64)
        return empty, empty, np.zeros((0, 3), np.int64)
    i, j, shifts = primitive_neighbor_list(
        "ijS", (True, True, True), lattice, positions, float(cutoff), self_interaction=self_interaction)
    order = np.lexsort((j, i))  # sort by receiver, then sender: deterministic and scatter-friendly
    return j[order].astype(np.int64), i[order].astype(np.int64), shifts[order].astype(np.int64)
