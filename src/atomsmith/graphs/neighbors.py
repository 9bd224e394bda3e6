"""Host-side (NumPy) periodic neighbour lists, for data preparation.

Conventions used everywhere in atomsmith:

* an edge ``e`` goes from ``senders[e]`` (the neighbour, j) to ``receivers[e]`` (the centre, i);
* its vector is ``positions[j] - positions[i] + shifts[e] @ lattice`` (Å), pointing from the centre to the
  neighbour; ``shifts`` are integer image offsets;
* every pair within the cutoff appears in both directions, and an atom sees *each* periodic image of a
  neighbour separately (small or skewed cells give several edges between the same two atoms, and edges from an
  atom to its own images).

The edge vectors are not stored: differentiable code recomputes them from positions, lattice and shifts
(:func:`edge_vectors`), so forces, stresses and guidance gradients come from autodiff. The pair search itself is
:mod:`atomsmith.core.pairs` (plain arrays), shared with :meth:`Crystal.close_pairs`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from atomsmith.core.pairs import edge_vectors, periodic_pairs
from atomsmith.structures.crystal import Crystal

__all__ = ["PeriodicGraph", "brute_force_neighbor_list", "edge_vectors", "image_counts", "neighbor_list"]


@dataclasses.dataclass(frozen=True)
class PeriodicGraph:
    """Edges of one periodic structure within ``cutoff`` Å.

    Attributes:
      senders: ``[n_edges]`` int, neighbour index j.
      receivers: ``[n_edges]`` int, centre index i (sorted ascending).
      shifts: ``[n_edges, 3]`` int, image offset of the neighbour in lattice vectors.
      n_atoms: number of atoms.
      cutoff: radius in Å.
    """

    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    n_atoms: int
    cutoff: float

    @property
    def n_edges(self) -> int:
        return int(self.senders.shape[0])

    def vectors(self, crystal: Crystal) -> np.ndarray:
        """Edge vectors ``[n_edges, 3]`` in Å for this graph's crystal."""
        return edge_vectors(crystal.positions, crystal.lattice, self.senders, self.receivers, self.shifts)

    def distances(self, crystal: Crystal) -> np.ndarray:
        return np.linalg.norm(self.vectors(crystal), axis=-1)


def image_counts(lattice: np.ndarray, cutoff: float) -> np.ndarray:
    """How many images along each lattice vector can hold a neighbour within ``cutoff`` of any point in the cell.

    The spacing of lattice planes normal to reciprocal vector b_k is ``1 / |b_k|``, so images up to
    ``ceil(cutoff |b_k|)`` cells away (plus one for atoms anywhere in the unit cell) are enough.
    """
    reciprocal = np.linalg.inv(np.asarray(lattice, np.float64)).T  # rows b_k with a_i . b_k = delta_ik
    return np.ceil(cutoff * np.linalg.norm(reciprocal, axis=1)).astype(np.int64)


def neighbor_list(crystal: Crystal, cutoff: float, self_interaction: bool = False) -> PeriodicGraph:
    """All (i, j, image) pairs with ``|r_j + S L - r_i| < cutoff`` Å (see module docstring for conventions).

    The search is :func:`atomsmith.core.pairs.periodic_pairs` (ase's binned ``primitive_neighbor_list``: linear in
    the number of atoms, exact for any triclinic cell). ``self_interaction`` adds the zero-length i -> i edge
    (never wanted in message passing).
    """
    senders, receivers, shifts = periodic_pairs(crystal.lattice, crystal.positions, cutoff, self_interaction)
    return PeriodicGraph(senders=senders, receivers=receivers, shifts=shifts, n_atoms=crystal.n_atoms,
                         cutoff=float(cutoff))


def brute_force_neighbor_list(crystal: Crystal, cutoff: float) -> PeriodicGraph:
    """Reference O(n^2 * images) implementation used to test :func:`neighbor_list` and the JAX path."""
    counts = image_counts(crystal.lattice, cutoff) + 1
    grids = [np.arange(-c, c + 1) for c in counts]
    shifts = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)
    pos = crystal.positions
    # d[i, j, s] = pos[j] + shift_s @ L - pos[i]
    d = pos[None, :, None, :] - pos[:, None, None, :] + (shifts @ crystal.lattice)[None, None, :, :]
    dist = np.linalg.norm(d, axis=-1)
    mask = dist < cutoff
    zero = np.all(shifts == 0, axis=1)
    mask &= ~(np.eye(len(pos), dtype=bool)[:, :, None] & zero[None, None, :])
    i, j, s = np.nonzero(mask)
    return PeriodicGraph(senders=j, receivers=i, shifts=shifts[s], n_atoms=len(pos), cutoff=float(cutoff))
