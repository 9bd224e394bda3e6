"""Structural statistics of amorphous (and any periodic) cells: pair distribution g(r), bond angles, coordination,
density. Host-side NumPy on the shared neighbour list (:func:`atomsmith.graphs.neighbors.neighbor_list`), so every
periodic image counts and small cells are exact.

Definitions (single species):

* ``g(r) = n(r) / (4 pi r^2 dr rho N)`` with ``n(r)`` the number of ordered pairs (i, j-image) with distance in
  ``[r, r + dr)``, ``rho = N / V`` and ``N`` the number of atoms (averaged over cells by pooling pairs and atoms);
* coordination of atom i: number of neighbours (images counted separately) closer than ``cutoff``;
* bond angles: every angle j-i-k between two distinct bonds of atom i shorter than ``cutoff``, in degrees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from atomsmith.graphs.neighbors import neighbor_list
from atomsmith.structures.crystal import Crystal

#: Bond cutoff for silicon used throughout (Å): between the first (2.35 Å) and second (3.84 Å) shells, near the
#: first minimum of g(r) in amorphous Si.
SI_BOND_CUTOFF = 2.85


def _as_list(crystals: Crystal | Iterable[Crystal]) -> list[Crystal]:
    items = [crystals] if isinstance(crystals, Crystal) else list(crystals)
    if not items:
        raise ValueError("need at least one crystal")
    for c in items:
        if c.n_atoms == 0:
            raise ValueError("a crystal with no atoms has no structure statistics")
    return items


def pair_distribution(crystals: Crystal | Iterable[Crystal], r_max: float = 8.0, n_bins: int = 400
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r) pooled over ``crystals``.

    Returns ``(r, g)``: bin centres ``[n_bins]`` in Å and g(r) ``[n_bins]`` (dimensionless; -> 1 at large r in a
    homogeneous system).
    """
    items = _as_list(crystals)
    if r_max <= 0 or n_bins < 1:
        raise ValueError(f"need r_max > 0 and n_bins >= 1, got {r_max}, {n_bins}")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    counts = np.zeros(n_bins)
    norm = 0.0  # sum over cells of N * rho
    for c in items:
        d = neighbor_list(c, r_max).distances(c)
        counts += np.histogram(d, bins=edges)[0]
        norm += c.n_atoms * c.n_atoms / c.volume
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (shell * norm)


def first_peak(r: np.ndarray, g: np.ndarray, r_min: float = 1.5, r_max: float = 3.0) -> float:
    """Position (Å) of the highest g(r) value within ``[r_min, r_max]``, refined by a parabola through the
    maximum and its two neighbouring bins."""
    r, g = np.asarray(r), np.asarray(g)
    window = np.nonzero((r >= r_min) & (r <= r_max))[0]
    if window.size == 0 or np.max(g[window]) <= 0:
        raise ValueError(f"g(r) has no peak in [{r_min}, {r_max}] Å")
    k = window[np.argmax(g[window])]
    if 0 < k < len(r) - 1:
        y0, y1, y2 = g[k - 1], g[k], g[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            return float(r[k] + 0.5 * (y0 - y2) / denom * (r[k + 1] - r[k]))
    return float(r[k])


def coordination_numbers(crystal: Crystal, cutoff: float = SI_BOND_CUTOFF) -> np.ndarray:
    """``[n_atoms]`` int: neighbours closer than ``cutoff`` Å (periodic images counted separately)."""
    graph = neighbor_list(_as_list(crystal)[0], cutoff)
    return np.bincount(graph.receivers, minlength=crystal.n_atoms)


def bond_angles(crystal: Crystal, cutoff: float = SI_BOND_CUTOFF, return_centers: bool = False
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """All bond angles j-i-k (degrees) between pairs of distinct bonds shorter than ``cutoff`` Å at each atom i.

    Returns a flat array of ``sum_i z_i (z_i - 1) / 2`` angles, and with ``return_centers`` also the index of the
    centre atom i of each angle.
    """
    crystal = _as_list(crystal)[0]
    graph = neighbor_list(crystal, cutoff)
    vectors = graph.vectors(crystal)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines, centers = [np.zeros(0)], [np.zeros(0, np.int64)]
    starts = np.searchsorted(graph.receivers, np.arange(crystal.n_atoms + 1))  # receivers are sorted
    for i in range(crystal.n_atoms):
        u = unit[starts[i]:starts[i + 1]]
        if len(u) < 2:
            continue
        a, b = np.triu_indices(len(u), k=1)
        cosines.append(np.einsum("ij,ij->i", u[a], u[b]))
        centers.append(np.full(len(a), i))
    angles = np.degrees(np.arccos(np.clip(np.concatenate(cosines), -1.0, 1.0)))
    return (angles, np.concatenate(centers)) if return_centers else angles


@dataclasses.dataclass(frozen=True)
class AmorphousStats:
    """Pooled statistics of a set of cells (see :func:`amorphous_statistics`)."""

    n_cells: int
    n_atoms: int
    density_mean: float  # g/cm^3
    density_std: float
    coordination_mean: float
    coordination_fractions: dict  # {z: fraction of atoms}
    angle_mean: float  # degrees
    angle_std: float
    angle_mean_fourfold: float  # degrees, angles centred on four-fold atoms only
    angle_std_fourfold: float
    first_peak: float  # Å
    bond_length_mean: float  # Å, bonds shorter than the cutoff
    cutoff: float

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["coordination_fractions"] = {str(k): v for k, v in self.coordination_fractions.items()}
        return d


def amorphous_statistics(crystals: Sequence[Crystal] | Crystal, cutoff: float = SI_BOND_CUTOFF,
                         r_max: float = 8.0, n_bins: int = 400) -> AmorphousStats:
    """Density, coordination (mean and distribution), bond-angle mean/std (all angles, and those centred on
    four-fold atoms), mean bond length and first g(r) peak, pooled over all atoms / angles of ``crystals``."""
    items = _as_list(crystals)
    coordination = np.concatenate([coordination_numbers(c, cutoff) for c in items])
    angles, fourfold = [], []
    for c in items:
        a, centers = bond_angles(c, cutoff, return_centers=True)
        angles.append(a)
        fourfold.append(a[coordination_numbers(c, cutoff)[centers] == 4])
    angles, fourfold = np.concatenate(angles), np.concatenate(fourfold)
    bonds = np.concatenate([neighbor_list(c, cutoff).distances(c) for c in items])
    r, g = pair_distribution(items, r_max, n_bins)
    densities = np.array([c.density for c in items])
    values, counts = np.unique(coordination, return_counts=True)
    return AmorphousStats(
        n_cells=len(items), n_atoms=int(coordination.size),
        density_mean=float(densities.mean()), density_std=float(densities.std()),
        coordination_mean=float(coordination.mean()),
        coordination_fractions={int(v): float(c) / coordination.size for v, c in zip(values, counts)},
        angle_mean=float(angles.mean()) if angles.size else float("nan"),
        angle_std=float(angles.std()) if angles.size else float("nan"),
        angle_mean_fourfold=float(fourfold.mean()) if fourfold.size else float("nan"),
        angle_std_fourfold=float(fourfold.std()) if fourfold.size else float("nan"),
        first_peak=first_peak(r, g), bond_length_mean=float(bonds.mean()) if bonds.size else float("nan"),
        cutoff=float(cutoff))
