"""Phonons by Hessian of the SW energy: against finite differences of the forces, against phonopy's finite
displacements with the same potential (diamond Si, Γ and a q-path, 1 %), and Brillouin-zone folding."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.physics import phonons
from atomsmith.physics import stillinger_weber as sw
from atomsmith.structures.crystal import Crystal

A_SI = 5.431


def primitive_si(a: float = A_SI) -> Crystal:
    lattice = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return Crystal(lattice, [[0, 0, 0], [0.25, 0.25, 0.25]], [14, 14])


def conventional_si(a: float = A_SI) -> Crystal:
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    return Crystal(np.eye(3) * a, basis, [14] * 8)


def rattled(crystal: Crystal, seed: int = 0, noise: float = 0.1) -> Crystal:
    rng = np.random.default_rng(seed)
    lattice = crystal.lattice @ (np.eye(3) + 0.02 * rng.normal(size=(3, 3)))
    return Crystal.from_cartesian(lattice, crystal.frac_coords @ lattice + noise * rng.normal(size=(crystal.n_atoms, 3)),
                                  crystal.numbers)


def forces(crystal: Crystal) -> np.ndarray:
    with jax.enable_x64(True):
        return sw.evaluate(crystal)["forces"]


def test_hessian_matches_finite_differences_of_the_forces():
    # a distorted 8-atom cell (not at equilibrium, pairs at many lengths): central differences of -F in float64
    crystal = rattled(conventional_si(), seed=1)
    h = phonons.hessian(crystal)
    step = 1e-4
    fd = np.zeros_like(h)
    for atom in range(crystal.n_atoms):
        for axis in range(3):
            cols = []
            for sign in (1, -1):
                pos = crystal.positions.copy()
                pos[atom, axis] += sign * step
                cols.append(forces(Crystal.from_cartesian(crystal.lattice, pos, crystal.numbers)))
            fd[:, :, atom, axis] = -(cols[0] - cols[1]) / (2 * step)
    np.testing.assert_allclose(h, fd, atol=1e-5 * np.abs(h).max())
    # translation invariance: every row of the periodic Hessian sums to zero over atoms
    np.testing.assert_allclose(h.sum(axis=2), 0.0, atol=1e-9 * np.abs(h).max())


def test_gamma_of_diamond_has_three_acoustic_and_three_optical_modes():
    freqs = phonons.gamma_frequencies(primitive_si())
    np.testing.assert_allclose(freqs[:3], 0.0, atol=1e-4)
    np.testing.assert_allclose(freqs[3:], freqs[3], rtol=1e-8)  # triply degenerate optical mode (cubic symmetry)
    assert 14.0 < freqs[3] < 18.0  # SW silicon: ~16 THz (experiment: 15.5 THz)


def test_force_constants_at_gamma_equal_the_cell_hessian():
    fc = phonons.force_constants(primitive_si(), 3)
    np.testing.assert_allclose(fc.frequencies([[0, 0, 0]])[0], phonons.gamma_frequencies(primitive_si()), atol=1e-6)


def test_zone_folding_conventional_gamma_is_primitive_gamma_and_x():
    # The cubic 8-atom cell's Γ holds the primitive cell's Γ and its three X points (reduced in the primitive
    # reciprocal lattice: X = (0, 1/2, 1/2) and permutations): a check of the phase sum and of its image choice.
    fc = phonons.force_constants(primitive_si(), 3)
    folded = np.sort(fc.frequencies([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]).ravel())
    np.testing.assert_allclose(phonons.gamma_frequencies(conventional_si()), folded, atol=1e-5)


def test_frequencies_do_not_depend_on_the_supercell_once_it_holds_the_force_constants():
    path = phonons.q_path([[0, 0, 0], [0.5, 0, 0.5], [0.375, 0.375, 0.75], [0, 0, 0], [0.5, 0.5, 0.5]], 5)
    a = phonons.force_constants(primitive_si(), 3).frequencies(path)
    b = phonons.force_constants(primitive_si(), (4, 4, 4)).frequencies(path)
    np.testing.assert_allclose(a, b, atol=1e-6)


def _phonopy_frequencies(unit: Crystal, supercell: int, qpoints: np.ndarray) -> np.ndarray:
    """phonopy finite displacements (0.01 Å) with atomsmith's SW forces in float64."""
    phonopy = pytest.importorskip("phonopy", reason="phonopy (in the test extra) checks the Hessian phonons")
    from phonopy.structure.atoms import PhonopyAtoms

    atoms = PhonopyAtoms(symbols=unit.symbols, cell=unit.lattice, scaled_positions=unit.frac_coords,
                         masses=phonons.atomic_masses(unit.numbers))
    ph = phonopy.Phonopy(atoms, supercell_matrix=np.eye(3, dtype=int) * supercell, primitive_matrix=np.eye(3))
    ph.generate_displacements(distance=0.01)
    sets = []
    for cell in ph.supercells_with_displacements:
        sets.append(forces(Crystal(cell.cell, cell.scaled_positions, cell.numbers)))
    ph.forces = np.asarray(sets)
    ph.produce_force_constants()
    ph.run_qpoints(qpoints)
    return np.sort(ph.qpoints.frequencies, axis=1)


def test_hessian_phonons_match_phonopy_finite_displacements_on_a_q_path():
    # Γ-X-W-K-Γ-L of the fcc Brillouin zone (reduced in the primitive reciprocal lattice), 3x3x3 supercell
    path = phonons.q_path([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.25, 0.75], [0.375, 0.375, 0.75], [0, 0, 0],
                           [0.5, 0.5, 0.5]], 8)
    ours = phonons.force_constants(primitive_si(), 3).frequencies(path)
    theirs = _phonopy_frequencies(primitive_si(), 3, path)
    assert theirs.shape == ours.shape
    optical = theirs > 1.0  # THz: relative agreement; acoustic branches near Γ absolutely
    np.testing.assert_allclose(ours[optical], theirs[optical], rtol=0.01)
    np.testing.assert_allclose(ours[~optical], theirs[~optical], atol=0.01)
    assert np.abs(ours - theirs).max() < 0.02  # THz; in practice much closer (finite-displacement error only)


def test_q_path_rejects_a_single_point_and_counts_points():
    with pytest.raises(ValueError):
        phonons.q_path([[0, 0, 0]])
    path = phonons.q_path([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0]], 4)
    assert path.shape == (9, 3)
    np.testing.assert_allclose(path[4], [0.5, 0, 0])
    np.testing.assert_allclose(path[-1], [0.5, 0.5, 0])


def test_force_constants_reject_empty_supercells():
    with pytest.raises(ValueError, match="repetitions"):
        phonons.force_constants(primitive_si(), (0, 1, 1))
