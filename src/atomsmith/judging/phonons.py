"""Dynamical stability by finite displacements (phonopy) with any force field, as PhononBench does with universal
potentials: force constants of a supercell, frequencies on a Γ-centred q-mesh, stable when no frequency is below
``-threshold`` THz (imaginary modes are negative numbers, phonopy's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from atomsmith.structures.crystal import Crystal

#: ``forces(supercells) -> [forces [n_atoms, 3] eV/Å]`` for a list of displaced supercells.
ForceFunction = Callable[[Sequence[Crystal]], Sequence[np.ndarray]]


def _reps(value: int | Sequence[int]) -> np.ndarray:
    reps = np.broadcast_to(np.asarray(value, np.int64), (3,)).copy()
    if np.any(reps < 1):
        raise ValueError(f"supercell repetitions must be >= 1, got {tuple(reps)}")
    return reps


def phonopy_frequencies(crystal: Crystal, forces: ForceFunction, supercell: int | Sequence[int] = 2,
                        mesh: int | Sequence[int] = 4, distance: float = 0.01, symprec: float = 1e-3,
                        qpoints: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Frequencies (THz, ``[K, 3n]``, sorted per q) and the number of displaced supercells evaluated.

    Args:
      crystal: the (relaxed) unit cell.
      forces: force field on a list of supercells.
      supercell: repetitions along the three lattice vectors.
      mesh: Γ-centred q-mesh (ignored when ``qpoints`` is given).
      distance: displacement in Å.  symprec: phonopy's symmetry tolerance (fewer displacements by symmetry).
      qpoints: ``[K, 3]`` reduced q-points instead of the mesh.
    """
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    from atomsmith.physics.phonons import atomic_masses

    atoms = PhonopyAtoms(symbols=crystal.symbols, cell=crystal.lattice, scaled_positions=crystal.frac_coords,
                         masses=atomic_masses(crystal.numbers))
    ph = Phonopy(atoms, supercell_matrix=np.diag(_reps(supercell)), primitive_matrix=np.eye(3), symprec=symprec)
    ph.generate_displacements(distance=distance)
    cells = [Crystal(c.cell, c.scaled_positions, c.numbers) for c in ph.supercells_with_displacements]
    ph.forces = np.asarray([np.asarray(f, np.float64) for f in forces(cells)])
    ph.produce_force_constants()
    if qpoints is not None:
        ph.run_qpoints(np.atleast_2d(qpoints))
        freqs = ph.qpoints.frequencies
    else:
        ph.run_mesh(_reps(mesh), is_gamma_center=True)
        freqs = ph.mesh.frequencies
    return np.sort(np.asarray(freqs, np.float64), axis=1), len(cells)


def phonon_stability(crystal: Crystal, forces: ForceFunction, supercell: int | Sequence[int] = 2,
                     mesh: int | Sequence[int] = 4, threshold: float = 0.1, distance: float = 0.01) -> dict[str, Any]:
    """``{"stable", "min_frequency_thz", "n_imaginary", "n_displacements", ...}`` from :func:`phonopy_frequencies`:
    stable when no frequency on the mesh is below ``-threshold`` THz; ``n_imaginary`` counts the (q, mode) pairs
    below it."""
    freqs, n_cells = phonopy_frequencies(crystal, forces, supercell, mesh, distance)
    low = float(freqs.min())
    return {"stable": bool(low >= -threshold), "min_frequency_thz": low,
            "n_imaginary": int(np.sum(freqs < -threshold)), "max_frequency_thz": float(freqs.max()),
            "n_displacements": n_cells, "supercell": [int(r) for r in _reps(supercell)],
            "mesh": [int(m) for m in _reps(mesh)], "threshold_thz": float(threshold)}
