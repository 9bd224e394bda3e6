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


# ---- peaks, S(q) and targets ---------------------------------------------------------------------------------------

BRAGG = {"111": 3, "220": 8, "311": 11}  # h^2 + k^2 + l^2 of the first three diamond reflections


def shipped_asi_cell() -> Crystal:
    from atomsmith.physics.asi_set import load_shipped

    return load_shipped(64)[0]


def test_peak_positions_of_noisy_peaks():
    rng = np.random.default_rng(0)
    x = np.arange(0.0, 8.0, 0.02)
    clean = 1 + 4 * np.exp(-((x - 2.35) / 0.08) ** 2 / 2) + 1.2 * np.exp(-((x - 3.8) / 0.2) ** 2 / 2) \
        + 0.4 * np.exp(-((x - 5.7) / 0.3) ** 2 / 2)
    noisy = clean + rng.normal(0, 0.05, x.shape)
    peaks = amorphous.peak_positions(x, noisy, 3, x_min=1.5, smooth_width=0.05, min_prominence=0.1)
    assert np.all(np.abs(peaks - [2.35, 3.8, 5.7]) < [0.01, 0.02, 0.05]), peaks
    # unsmoothed, the noise makes spurious maxima; a prominence threshold alone still skips them
    assert np.sum(np.diff(np.sign(np.diff(noisy))) < 0) > 20
    # fewer peaks than asked: NaN
    two = amorphous.peak_positions(x, noisy, 4, x_min=1.5, x_max=5.0, smooth_width=0.05, min_prominence=0.1)
    assert np.isnan(two[2:]).all() and np.isfinite(two[:2]).all()
    with pytest.raises(ValueError, match="uniform"):
        amorphous.peak_positions(np.array([0.0, 1.0, 3.0]), np.zeros(3))


def test_direct_structure_factor_of_diamond_has_bragg_peaks_only_at_allowed_reflections():
    crystal = diamond(2)  # 64 atoms
    norm, s = amorphous.structure_factor_reciprocal(crystal, q_max=8.0)
    unit = 2 * np.pi / A_SI
    # allowed diamond reflections below 8 / unit: hkl all odd, or all even with h + k + l = 4m
    allowed = [3, 8, 11, 16, 19, 24, 27, 32, 35, 40, 43]
    bright = s > 1e-6
    np.testing.assert_allclose(np.unique(np.round(norm[bright], 6)), np.round(unit * np.sqrt(allowed), 6))
    # |F|^2 / N with F = sum over the 64 atoms: (111) and (311) 32, (220) 64; (200) and (222) are forbidden
    for n, value in ((3, 32.0), (8, 64.0), (11, 32.0), (4, 0.0), (12, 0.0)):
        at = np.abs(norm - unit * np.sqrt(n)) < 1e-6
        assert at.any() and np.allclose(s[at & bright] if value else s[at], value, atol=1e-6), n
    q, shell, counts = amorphous.structure_factor_direct(crystal, q_max=4.5, dq=0.05)
    peaks = q[np.nan_to_num(shell) > 1.0]
    np.testing.assert_allclose(peaks, unit * np.sqrt(list(BRAGG.values())), atol=0.025)
    assert counts.sum() == np.sum(norm < 4.5)


def test_structure_factor_from_gr_of_diamond_peaks_at_bragg_positions():
    q = np.arange(1.0, 4.5, 0.005)
    _, s = amorphous.structure_factor(diamond(), q, r_max=30.0)
    # Bragg peaks reach S ~ 5-6 at R = 30 Å; the Lorch side-lobes between them stay below 0.5 in prominence
    peaks = amorphous.peak_positions(q, s, 3, x_min=1.0, min_prominence=1.0)
    np.testing.assert_allclose(peaks, 2 * np.pi / A_SI * np.sqrt(list(BRAGG.values())), atol=0.01)
    assert np.max(s[q < 1.8]) < 0.5  # nothing below (111)


def test_structure_factor_from_gr_equals_the_reciprocal_sum_on_an_asi_cell():
    # exact identity (module docstring): the Lorch transform of the periodic g(r) is the direct S(G) smoothed by
    # the window's kernel; the difference is the g(r) binning (0.01 Å) and the omitted |G| tail
    cell = shipped_asi_cell()
    q = np.arange(0.5, 12.0, 0.05)
    for r_max in (8.0, 12.0):
        _, from_gr = amorphous.structure_factor(cell, q, r_max=r_max)
        direct = amorphous.structure_factor_windowed_direct(cell, q, r_max=r_max)
        assert np.max(np.abs(from_gr - direct)) < 0.005, r_max  # measured: 0.0007 (R = 8 Å), 0.0013 (R = 12 Å)
    assert np.ptp(from_gr) > 1.0  # not a flat line


def test_structure_factor_from_gr_follows_the_shell_averaged_direct_sum_on_an_asi_cell():
    # the physical comparison: the powder average of S(G) over shells of one 64-atom cell against the Lorch transform
    cell = shipped_asi_cell()
    q_shell, shell, counts = amorphous.structure_factor_direct(cell, q_max=10.0, dq=0.1)
    _, from_gr = amorphous.structure_factor(cell, q_shell, r_max=12.0)
    use = (q_shell > 1.5) & (counts >= 20)
    smoothed = amorphous.smooth(q_shell, np.nan_to_num(shell, nan=1.0), 0.2)
    # measured: rms 0.045; peaks 2.07 / 3.55 / 5.57 (shells) vs 2.00 / 3.53 / 5.58 Å^-1 (transform)
    assert np.sqrt(np.mean((smoothed[use] - from_gr[use]) ** 2)) < 0.07
    peaks_direct = amorphous.peak_positions(q_shell, smoothed, 3, **amorphous.SQ_PEAKS)
    peaks_gr = amorphous.peak_positions(q_shell, from_gr, 3, **amorphous.SQ_PEAKS)
    np.testing.assert_allclose(peaks_direct, peaks_gr, atol=0.1)


def test_statistics_of_an_asi_cell_include_sq_peaks():
    stats = amorphous.amorphous_statistics(shipped_asi_cell())
    assert stats.sq_r_max == 12.0 and np.isfinite(stats.sq_peaks).all()
    assert 1.8 < stats.sq_peaks[0] < 2.2 and 3.3 < stats.sq_peaks[1] < 3.8 and 5.3 < stats.sq_peaks[2] < 5.9
    assert 2.3 < stats.gr_peaks[0] < 2.5


def test_statistics_report_peaks_and_targets():
    stats = amorphous.amorphous_statistics([diamond()], r_max=6.0, n_bins=600, with_sq=False)
    np.testing.assert_allclose(stats.gr_peaks, A_SI * np.sqrt([3 / 16, 8 / 16, 11 / 16]), atol=0.01)
    assert np.isnan(stats.sq_peaks).all()  # skipped (a crystal's Lorch side-lobes would pass the a-Si thresholds)
    assert stats.first_peak == stats.gr_peaks[0] and stats.fourfold_fraction == 1.0 and stats.fivefold_fraction == 0
    d = stats.as_dict()
    assert d["gr_peaks"] == list(stats.gr_peaks) and d["fourfold_fraction"] == 1.0
    report = amorphous.compare_to_targets(stats)
    assert set(report) == set(amorphous.A_SI_TARGETS)
    assert report["coordination_mean"]["ok"] and report["fourfold_fraction"]["ok"]
    assert report["angle_std"]["ok"] and report["gr_peak_2"]["ok"]
    assert not report["density_mean"]["ok"]  # 2.329 g/cm^3 > 2.30
    assert not report["gr_peak_3"]["ok"] and not report["sq_peak_1"]["ok"]  # 4.50 Å; NaN
    assert report["gr_peak_3"]["value"] == pytest.approx(4.503, abs=0.01)
    rho = stats.density_mean  # bounds hold up to a relative 1e-4 (atomic-mass conventions), not beyond
    assert amorphous.compare_to_targets(stats, {"density_mean": (rho * (1 + 5e-5), 3.0)})["density_mean"]["ok"]
    assert not amorphous.compare_to_targets(stats, {"density_mean": (rho * (1 + 1e-3), 3.0)})["density_mean"]["ok"]
