"""Phonons by Hessian: the harmonic force constants of atomsmith's differentiable Stillinger-Weber energy from
``jax.hessian``, the dynamical matrix at Γ and at any wave vector, frequencies in THz.

Harmonic theory. With ``u_{i,R}`` the displacement of atom ``i`` of the cell at lattice vector ``R``, the force
constants are ``Phi_{iα,jβ}(R) = d^2 E / du_{i,0,α} du_{j,R,β}`` (eV/Å^2) and the dynamical matrix is::

    D_{iα,jβ}(q) = sum_R Phi_{iα,jβ}(R) exp(2πi q·R) / sqrt(m_i m_j)         (q in reduced coordinates)

whose eigenvalues are ``ω^2``; frequencies ``ν = sign(ω^2) sqrt|ω^2| / 2π`` (negative numbers are imaginary
modes, phonopy's convention), in THz with masses in amu: ``sqrt(eV / (Å^2 amu)) / 2π = 15.633302 THz``.

- **Γ**: the Hessian of the periodic energy of the cell itself (every periodic image moves with its atom) is
  ``sum_R Phi(R)``, so :func:`gamma_frequencies` needs no supercell.
- **Any q**: :func:`force_constants` takes the Hessian of a ``n1 x n2 x n3`` supercell and keeps, for each pair
  (atom ``i`` of the home cell, atom ``j`` of cell ``R``), the block and the shortest images ``R + T`` of the
  vector ``r_j + R - r_i`` under the supercell's translations ``T`` (a block shared by several equally short images
  is split equally between them, as phonopy does). The phase sum is exact at every q when the force constants
  reach less than half the supercell (SW silicon: second neighbours at 3.84 Å, through the three-body term).

The energy's edge list is built once on the host (``graphs.neighbors``) with a small skin; the Hessian is taken at
fixed lattice, in float64.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors import neighbor_list
from atomsmith.physics.stillinger_weber import SILICON, SWParams, sw_energy_from_edges
from atomsmith.structures.crystal import Crystal

#: ``sqrt(eV / (Å^2 amu)) / (2π)`` in THz (CODATA 2018; phonopy's factor for eV, Å and amu).
THZ_PER_SQRT_EV_A2_AMU = 15.633302
#: Edges are listed to ``cutoff + SKIN`` Å (the Hessian is taken at the given positions; the skin only guards
#: against pairs a rounding error away from the cutoff).
SKIN = 0.05


def _edges(crystal: Crystal, params: SWParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Edges grouped by centre (as :func:`sw_node_energies` needs) and a table width covering every atom."""
    graph = neighbor_list(crystal, params.cutoff + SKIN)
    order = np.argsort(graph.receivers, kind="stable")
    receivers, senders, shifts = graph.receivers[order], graph.senders[order], graph.shifts[order]
    degree = np.bincount(receivers, minlength=crystal.n_atoms).max(initial=0)
    return senders, receivers, shifts, int(max(4, -(-degree // 4) * 4))


@functools.partial(jax.jit, static_argnums=(5, 6))
def _hessian_jit(positions, lattice, senders, receivers, shifts, params, max_degree):
    mask = jnp.ones(senders.shape, bool)

    def energy(pos):
        return sw_energy_from_edges(pos, lattice, senders, receivers, shifts, mask, params, max_degree)[0]

    return jax.hessian(energy)(positions)


def hessian(crystal: Crystal, params: SWParams = SILICON) -> np.ndarray:
    """``[n, 3, n, 3]`` Hessian (eV/Å^2) of the periodic SW energy of ``crystal`` in its Cartesian positions at fixed
    lattice (images move with their atoms), in float64."""
    senders, receivers, shifts, max_degree = _edges(crystal, params)
    with jax.enable_x64(True):
        h = _hessian_jit(jnp.asarray(crystal.positions, jnp.float64), jnp.asarray(crystal.lattice, jnp.float64),
                         jnp.asarray(senders), jnp.asarray(receivers), jnp.asarray(shifts, jnp.float64), params,
                         max_degree)
        h = np.asarray(h, np.float64)
    return 0.5 * (h + h.transpose(2, 3, 0, 1))


def atomic_masses(numbers: Sequence[int]) -> np.ndarray:
    """Masses in amu (ase's table; Si 28.085)."""
    from ase.data import atomic_masses as table

    return np.asarray(table[np.asarray(numbers, np.int64)], np.float64)


def frequencies_thz(dynamical_matrix: np.ndarray) -> np.ndarray:
    """Sorted frequencies (THz, negative = imaginary) of Hermitian dynamical matrices ``[..., 3n, 3n]``
    (eV / (Å^2 amu))."""
    eig = np.linalg.eigvalsh(dynamical_matrix)
    return np.sign(eig) * np.sqrt(np.abs(eig)) * THZ_PER_SQRT_EV_A2_AMU


def _mass_weighted(blocks: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """``[n, 3, n, 3]`` blocks -> ``[3n, 3n]`` ``Phi / sqrt(m_i m_j)``."""
    n = masses.shape[0]
    inv = 1.0 / np.sqrt(masses)
    return (blocks * inv[:, None, None, None] * inv[None, None, :, None]).reshape(3 * n, 3 * n)


def gamma_frequencies(crystal: Crystal, params: SWParams = SILICON, masses: Sequence[float] | None = None
                      ) -> np.ndarray:
    """``[3n]`` sorted frequencies at Γ (THz; negative = imaginary) of ``crystal`` with the SW energy; three are the
    (zero) acoustic modes. ``masses`` in amu (default :func:`atomic_masses`)."""
    m = atomic_masses(crystal.numbers) if masses is None else np.asarray(masses, np.float64)
    return frequencies_thz(_mass_weighted(hessian(crystal, params), m))


@dataclasses.dataclass(frozen=True)
class ForceConstants:
    """Force constants of a unit cell from a supercell Hessian, ready for the phase sum.

    Attributes:
      unit: the unit cell (:class:`Crystal`, ``n`` atoms).
      supercell: ``(n1, n2, n3)`` repetitions used.
      blocks: ``[P, 3, 3]`` eV/Å^2, one per (home atom ``i``, atom ``j``, image) term.
      pairs: ``[P, 2]`` int ``(i, j)``.
      vectors: ``[P, 3]`` lattice vector ``R + T`` of each term in reduced coordinates of ``unit``.
      weights: ``[P]`` 1 / (number of equally short images of that pair).
      masses: ``[n]`` amu.
    """

    unit: Crystal
    supercell: tuple[int, int, int]
    blocks: np.ndarray
    pairs: np.ndarray
    vectors: np.ndarray
    weights: np.ndarray
    masses: np.ndarray

    def dynamical_matrix(self, qpoints: np.ndarray) -> np.ndarray:
        """``[K, 3n, 3n]`` complex Hermitian dynamical matrices (eV / (Å^2 amu)) at ``qpoints [K, 3]`` (reduced
        coordinates of the unit cell's reciprocal lattice)."""
        q = np.atleast_2d(np.asarray(qpoints, np.float64))
        n = self.unit.n_atoms
        phase = np.exp(2j * np.pi * q @ self.vectors.T) * self.weights  # [K, P]
        inv = 1.0 / np.sqrt(self.masses)
        scaled = self.blocks * (inv[self.pairs[:, 0]] * inv[self.pairs[:, 1]])[:, None, None]  # [P, 3, 3]
        d = np.zeros((q.shape[0], n, 3, n, 3), np.complex128)
        for i in range(n):
            for j in range(n):
                sel = (self.pairs[:, 0] == i) & (self.pairs[:, 1] == j)
                d[:, i, :, j, :] = np.einsum("kp,pab->kab", phase[:, sel], scaled[sel])
        d = d.reshape(q.shape[0], 3 * n, 3 * n)
        return 0.5 * (d + np.conj(np.swapaxes(d, 1, 2)))

    def frequencies(self, qpoints: np.ndarray) -> np.ndarray:
        """``[K, 3n]`` sorted frequencies (THz; negative = imaginary) at ``qpoints [K, 3]`` (reduced)."""
        return frequencies_thz(self.dynamical_matrix(qpoints))


def force_constants(unit: Crystal, supercell: int | Sequence[int] = 3, params: SWParams = SILICON,
                    masses: Sequence[float] | None = None, tolerance: float = 1e-4) -> ForceConstants:
    """Force constants of ``unit`` from the SW Hessian of its ``supercell`` (see module docstring).

    Args:
      unit: the unit cell (primitive or not); q-points are then reduced in its reciprocal lattice.
      supercell: repetitions ``(n1, n2, n3)`` (an int repeats along all three); the force constants must reach less
        than half of the supercell for the phase sum to be exact away from its commensurate q-points.
      params: SW parameters.  masses: amu (default :func:`atomic_masses`).
      tolerance: Å, images whose lengths differ by less are equally short.
    """
    reps = tuple(int(r) for r in np.broadcast_to(np.asarray(supercell, np.int64), (3,)))
    if min(reps) < 1:
        raise ValueError(f"supercell repetitions must be >= 1, got {reps}")
    n = unit.n_atoms
    big = unit.supercell(reps)  # atom (i, cell c) is index c * n + i; cell 0 is R = 0
    cells = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    h = hessian(big, params)  # [N, 3, N, 3]
    images = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) * np.asarray(reps)
    blocks, pairs, vectors, weights = [], [], [], []
    for i in range(n):
        for c, cell in enumerate(cells):
            for j in range(n):
                block = h[i, :, c * n + j, :]
                if not np.any(block):
                    continue
                candidates = cell[None, :] + images  # [T, 3] reduced lattice vectors R + T
                d = (unit.frac_coords[j] - unit.frac_coords[i] + candidates) @ unit.lattice
                length = np.linalg.norm(d, axis=1)
                shortest = candidates[length < length.min() + tolerance]
                for vector in shortest:
                    blocks.append(block)
                    pairs.append((i, j))
                    vectors.append(vector)
                    weights.append(1.0 / len(shortest))
    m = atomic_masses(unit.numbers) if masses is None else np.asarray(masses, np.float64)
    return ForceConstants(unit=unit, supercell=reps, blocks=np.asarray(blocks, np.float64).reshape(-1, 3, 3),
                          pairs=np.asarray(pairs, np.int64).reshape(-1, 2),
                          vectors=np.asarray(vectors, np.float64).reshape(-1, 3),
                          weights=np.asarray(weights, np.float64), masses=m)


def q_path(points: Sequence[Sequence[float]], n_per_segment: int = 20) -> np.ndarray:
    """``[K, 3]`` q-points on straight segments through ``points`` (reduced), ``n_per_segment`` per segment, ends
    included once."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise ValueError("need at least two q-points of three reduced coordinates")
    t = np.linspace(0.0, 1.0, n_per_segment, endpoint=False)[:, None]
    path = [a + t * (b - a) for a, b in zip(pts[:-1], pts[1:])]
    return np.concatenate([*path, pts[-1:]])
