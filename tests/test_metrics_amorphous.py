"""Amorphous structure statistics against exact crystal values, an ideal gas, and a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest

from atomsmith.metrics import amorphous
from atomsmith.structures.crystal import Crystal

A_SI = 5.431


def diamond(reps: int = 1) -> Crystal:
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    return Crystal(np.eye(3) * A_SI, basis, [14] * 8).supercell(reps)


def test_diamond_statistics_are_exact():
    stats = amorphous.amorphous_statistics([diamond()], r_max=6.0, n_bins=600)
    assert stats.coordination_mean == 4.0 and stats.coordination_fractions == {4: 1.0}
    assert stats.angle_mean == pytest.approx(109.4712, abs=1e-3)
    assert stats.angle_std == pytest.approx(0.0, abs=1e-4)
    assert stats.angle_mean_fourfold == pytest.approx(109.4712, abs=1e-3)
    bond = A_SI * np.sqrt(3) / 4
    assert stats.bond_length_mean == pytest.approx(bond, abs=1e-9)
    assert stats.first_peak == pytest.approx(bond, abs=0.01)
    assert stats.density_mean == pytest.approx(2.329, abs=0.001)
    assert len(amorphous.bond_angles(diamond())) == 8 * 6  # 4 bonds -> 6 angles per atom


def test_pair_distribution_counts_shells():
    # integrating rho g(r) over the shell volumes of the first shell gives the 4 neighbours, the second shell 12
    crystal = diamond()
    r, g = amorphous.pair_distribution(crystal, r_max=4.2, n_bins=420)
    dr = r[1] - r[0]
    rho = crystal.n_atoms / crystal.volume
    shell = 4 / 3 * np.pi * ((r + dr / 2) ** 3 - (r - dr / 2) ** 3)
    running = np.cumsum(shell * g * rho)
    assert running[np.searchsorted(r, 3.0)] == pytest.approx(4.0, abs=1e-9)
    assert running[-1] == pytest.approx(16.0, abs=1e-9)


def test_pair_distribution_of_ideal_gas_is_one():
    rng = np.random.default_rng(0)
    crystals = [Crystal(np.eye(3) * 12.0, rng.random((300, 3)), [14] * 300) for _ in range(4)]
    r, g = amorphous.pair_distribution(crystals, r_max=6.0, n_bins=12)
    assert np.all(np.abs(g[2:] - 1.0) < 0.1)  # shells beyond 1 Å hold enough pairs for 10%


def test_pair_distribution_matches_brute_force_small_cell():
    # a cell smaller than r_max: every image must count
    rng = np.random.default_rng(1)
    lattice = np.array([[3.1, 0.0, 0.0], [0.8, 2.9, 0.0], [0.3, 0.5, 3.3]])
    crystal = Crystal(lattice, rng.random((3, 3)), [14] * 3)
    r_max, n_bins = 5.0, 10
    r, g = amorphous.pair_distribution(crystal, r_max=r_max, n_bins=n_bins)
    shifts = np.stack(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = crystal.positions
    d = np.linalg.norm(pos[None, :, None] - pos[:, None, None] + (shifts @ lattice)[None, None], axis=-1).ravel()
    d = d[(d > 1e-9) & (d < r_max)]
    edges = np.linspace(0, r_max, n_bins + 1)
    counts = np.histogram(d, edges)[0]
    expected = counts / (4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3) * crystal.n_atoms ** 2 / crystal.volume)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_first_peak_refines_between_bins():
    r = np.linspace(0, 5, 101)  # 0.05 Å bins; the maximum bin is 2.35
    g = np.exp(-((r - 2.37) / 0.15) ** 2)
    assert amorphous.first_peak(r, g) == pytest.approx(2.37, abs=0.002)
    with pytest.raises(ValueError, match="no peak"):
        amorphous.first_peak(r, np.zeros_like(r))


def test_coordination_and_angles_of_distorted_cell():
    rng = np.random.default_rng(2)
    base = diamond()
    crystal = Crystal.from_cartesian(base.lattice, base.positions + 0.08 * rng.normal(size=(8, 3)), base.numbers)
    z = amorphous.coordination_numbers(crystal)
    assert z.tolist() == [4] * 8
    angles, centers = amorphous.bond_angles(crystal, return_centers=True)
    assert 100 < angles.mean() < 115 and angles.std() > 0.5
    np.testing.assert_array_equal(np.bincount(centers), [6] * 8)
    # a longer cutoff reaches the second shell: 16 neighbours, 120 angles per atom
    assert amorphous.coordination_numbers(diamond(), 4.0).tolist() == [16] * 8
    assert len(amorphous.bond_angles(diamond(), 4.0)) == 8 * 120


def test_errors():
    with pytest.raises(ValueError, match="at least one"):
        amorphous.amorphous_statistics([])
    with pytest.raises(ValueError):
        amorphous.pair_distribution(diamond(), r_max=-1.0)
