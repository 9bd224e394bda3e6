"""Local atomic environments: the n nearest neighbours of an atom within r_cut, as relative vectors.

Used by the environment VAEs (Gram-matrix and equivariant) and by infilling. Built on the shared neighbour list,
so every periodic image is a separate candidate neighbour.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from atomsmith.graphs.neighbors import neighbor_list
from atomsmith.structures.crystal import Crystal


class EnvironmentError_(ValueError):
    """An environment request that cannot be met (e.g. fewer than n neighbours within r_cut)."""


@dataclasses.dataclass(frozen=True)
class Environments:
    """Environments of several centre atoms.

    Attributes:
      vectors: ``[n_centres, n_neighbors, 3]`` Å, neighbour minus centre, sorted by distance.
      centre_numbers: ``[n_centres]`` atomic numbers of the centres.
      neighbor_numbers: ``[n_centres, n_neighbors]`` atomic numbers of the neighbours.
      centres: ``[n_centres]`` index of the centre atom in its crystal.
      neighbor_indices: ``[n_centres, n_neighbors]`` index of each neighbour atom (its image is implicit).
    """

    vectors: np.ndarray
    centre_numbers: np.ndarray
    neighbor_numbers: np.ndarray
    centres: np.ndarray
    neighbor_indices: np.ndarray


def local_environments(crystal: Crystal, n_neighbors: int, r_cut: float, centres: np.ndarray | None = None,
                       strict: bool = True) -> Environments:
    """The ``n_neighbors`` nearest neighbours (over periodic images) of each centre atom within ``r_cut`` Å.

    Args:
      crystal: the structure.
      n_neighbors: how many neighbours to keep (closest first; ties broken by atom index, then image).
      r_cut: radius in Å.
      centres: atom indices to use as centres (all atoms by default).
      strict: if True, a centre with fewer than ``n_neighbors`` neighbours within ``r_cut`` raises; if False such
        centres are dropped.
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    graph = neighbor_list(crystal, r_cut)
    vectors = graph.vectors(crystal)
    dist = np.linalg.norm(vectors, axis=1)
    centres = np.arange(crystal.n_atoms) if centres is None else np.asarray(centres)
    out_v, out_c, out_nn, out_idx, out_ni = [], [], [], [], []
    for c in centres:
        sel = np.flatnonzero(graph.receivers == c)
        if sel.size < n_neighbors:
            if strict:
                raise EnvironmentError_(
                    f"atom {c} ({crystal.symbols[c]}) has only {sel.size} neighbours within {r_cut} Å; "
                    f"{n_neighbors} are needed (raise r_cut or lower n_neighbors)")
            continue
        order = sel[np.lexsort((graph.senders[sel], dist[sel]))][:n_neighbors]
        out_v.append(vectors[order])
        out_c.append(crystal.numbers[c])
        out_nn.append(crystal.numbers[graph.senders[order]])
        out_idx.append(c)
        out_ni.append(graph.senders[order])
    if not out_v:
        return Environments(np.zeros((0, n_neighbors, 3)), np.zeros((0,), np.int64),
                            np.zeros((0, n_neighbors), np.int64), np.zeros((0,), np.int64),
                            np.zeros((0, n_neighbors), np.int64))
    return Environments(np.stack(out_v), np.array(out_c), np.stack(out_nn), np.array(out_idx), np.stack(out_ni))
