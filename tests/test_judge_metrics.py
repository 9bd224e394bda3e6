"""The judge's machinery without CHGNet: MatterGen's RMSD, matching, summaries and the reference comparison, the
phonopy stability check (with SW forces, against the Hessian phonons), and the whole judge() pipeline driven by an
SW ase calculator (diamond stays, a rattled cell relaxes back, planar silicene shows an imaginary mode). The same
checks with CHGNet are in tests/test_judge_chgnet.py."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from atomsmith.judging import MissingExtraError, require_extra
from atomsmith.judging import extra as extra_module
from atomsmith.judging.core import judge
from atomsmith.judging.metrics import compare_with_reference, rmsd_from_relaxation, still_matches, summarize
from atomsmith.physics import phonons
from atomsmith.physics import stillinger_weber as sw
from atomsmith.structures.crystal import Crystal

A_SI = 5.431


def diamond(a: float = A_SI) -> Crystal:
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    return Crystal(np.eye(3) * a, basis, [14] * 8)


def primitive_si(a: float = A_SI) -> Crystal:
    lattice = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return Crystal(lattice, [[0, 0, 0], [0.25, 0.25, 0.25]], [14, 14])


def planar_silicene(a: float = 3.86, vacuum: float = 12.0) -> Crystal:
    lattice = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, vacuum]])
    return Crystal(lattice, [[1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]], [14, 14])


def rattled(crystal: Crystal, seed: int = 0, noise: float = 0.1) -> Crystal:
    rng = np.random.default_rng(seed)
    return Crystal.from_cartesian(crystal.lattice, crystal.positions + noise * rng.normal(size=(crystal.n_atoms, 3)),
                                  crystal.numbers)


class SWCalculator(Calculator):
    """atomsmith's SW silicon as an ase calculator (float64)."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        with jax.enable_x64(True):
            out = sw.evaluate(Crystal.from_ase(self.atoms))
        s = out["stress"]
        self.results = {"energy": out["energy"], "free_energy": out["energy"], "forces": out["forces"],
                        "stress": np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])}


def sw_forces(cells):
    with jax.enable_x64(True):
        return [sw.evaluate(c)["forces"] for c in cells]


def test_rmsd_is_zero_for_the_same_structure_and_in_angstrom_for_a_displacement():
    crystal = diamond()
    rmsd, matched = rmsd_from_relaxation(crystal, crystal)
    assert matched and rmsd < 1e-6
    # primitive Si with one atom moved by 0.2 Å: the matcher removes the mean displacement, leaving +-0.1 Å
    unit = primitive_si()
    moved = unit.positions.copy()
    moved[1, 0] += 0.2
    rmsd, matched = rmsd_from_relaxation(Crystal.from_cartesian(unit.lattice, moved, unit.numbers), unit)
    assert matched
    assert rmsd == pytest.approx(0.1, rel=0.02)
    # MatterGen's matcher reduces both sides to primitive cells within pymatgen's 0.25 Å tolerance, so the same
    # move of one atom in the 8-atom cell is averaged over the four atoms it folds onto: 0.2 / 8 Å
    moved = crystal.positions.copy()
    moved[0, 0] += 0.2
    rmsd, _ = rmsd_from_relaxation(Crystal.from_cartesian(crystal.lattice, moved, crystal.numbers), crystal)
    assert rmsd == pytest.approx(0.025, rel=0.02)


def test_rmsd_of_unrelated_structures_is_the_cutoff():
    rmsd, matched = rmsd_from_relaxation(diamond(), planar_silicene())
    assert not matched
    volume_per_atom = planar_silicene().volume / 2
    assert rmsd > 0.3 * volume_per_atom ** (1 / 3)


def test_still_matches():
    assert still_matches(diamond(), rattled(diamond(), noise=0.02))
    assert not still_matches(diamond(), planar_silicene())


def _record(e0, e1, formula="Si", rmsd=0.1, matched=True, volume_change=0.01, converged=True, **extra):
    return {"energy_per_atom_initial": e0, "energy_per_atom_relaxed": e1, "reduced_formula": formula, "rmsd": rmsd,
            "rmsd_matched": matched, "still_matches": matched, "volume_change": volume_change, "steps": 10,
            "converged": converged, **extra}


def test_summary_and_reference_comparison():
    records = [_record(-4.0, -4.2), _record(-3.0, -3.5, rmsd=0.3, matched=False, volume_change=-0.05,
                                              converged=False), {"error": "boom"}, _record(-1.0, -2.0, "NaCl")]
    summary = summarize(records)
    assert summary["n_structures"] == 4 and summary["n_failed"] == 1
    assert summary["median_energy_per_atom_relaxed"] == pytest.approx(-3.5)
    assert summary["median_energy_drop_per_atom"] == pytest.approx(0.5)
    assert summary["median_abs_volume_change"] == pytest.approx(0.01)
    assert summary["fraction_converged"] == pytest.approx(2 / 3)
    assert summary["fraction_still_matching"] == pytest.approx(2 / 3)
    reference = [_record(0, -4.25), _record(0, -4.1), {"error": "x"}]
    ref = compare_with_reference(records, reference, threshold=0.1)
    assert ref["energy_above_reference"][0] == pytest.approx(0.05)
    assert ref["energy_above_reference"][1] == pytest.approx(0.75)
    assert ref["energy_above_reference"][2] is None and ref["energy_above_reference"][3] is None
    assert ref["fraction_with_reference_formula"] == pytest.approx(0.5)
    assert ref["fraction_within_threshold"] == pytest.approx(0.5)
    assert ref["fraction_at_or_below_reference"] == 0.0
    assert ref["n_reference_failed"] == 1
    assert ref["median_reference_energy_per_atom_relaxed"] == pytest.approx(-4.175)
    assert ref["wasserstein_relaxed_energy_per_atom"] > 0


def test_phonopy_stability_with_sw_forces_matches_the_hessian_phonons():
    pytest.importorskip("phonopy")
    from atomsmith.judging.phonons import phonon_stability, phonopy_frequencies

    q = np.array([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0.5], [0.25, 0.1, 0.3]])
    freqs, _ = phonopy_frequencies(primitive_si(), sw_forces, supercell=3, qpoints=q)
    ours = phonons.force_constants(primitive_si(), 3).frequencies(q)
    np.testing.assert_allclose(freqs, ours, atol=0.02)
    stable = phonon_stability(primitive_si(), sw_forces, supercell=3, mesh=3)
    assert stable["stable"] and stable["n_imaginary"] == 0 and stable["min_frequency_thz"] > -0.1
    flat = phonon_stability(planar_silicene(), sw_forces, supercell=(3, 3, 1), mesh=(3, 3, 1))
    assert not flat["stable"] and flat["min_frequency_thz"] < -1.0 and flat["n_imaginary"] > 0


def test_judge_pipeline_with_an_sw_calculator():
    pytest.importorskip("phonopy")
    crystals = [diamond(), rattled(diamond(), 1), planar_silicene()]
    result = judge(crystals, reference=[diamond()], calculator=SWCalculator(), fmax=0.01, steps=300,
                   phonons=True, supercell=(2, 2, 1), mesh=(2, 2, 1))
    stay, back, flat = result["structures"]
    assert stay["energy_per_atom_initial"] == pytest.approx(-4.3366, abs=1e-4)
    assert stay["rmsd"] < 1e-3 and stay["still_matches"] and abs(stay["volume_change"]) < 1e-3
    assert stay["converged"] and stay["steps"] == 0
    assert back["energy_per_atom_initial"] > -4.30  # rattled: higher ...
    assert back["energy_per_atom_relaxed"] == pytest.approx(-4.3366, abs=2e-3)  # ... and relaxed back to diamond
    assert back["still_matches"] and back["converged"]
    assert flat["phonons"]["stable"] is False  # stays flat (zero forces by symmetry), unstable buckling mode
    assert result["summary"]["fraction_phonon_stable"] == pytest.approx(2 / 3)
    assert result["reference"]["energy_above_reference"][0] == pytest.approx(0.0, abs=1e-4)
    assert result["reference"]["energy_above_reference"][1] == pytest.approx(0.0, abs=2e-3)
    assert result["judge"] == "SWCalculator" and result["timing_s"]["per_structure"] > 0


def test_judge_rejects_bad_options_and_reports_broken_samples():
    with pytest.raises(ValueError, match="fmax"):
        judge([diamond()], calculator=SWCalculator(), fmax=0.0)
    with pytest.raises(ValueError, match="no structures"):
        judge([], calculator=SWCalculator())
    from atomsmith.metrics.samples import BrokenSample

    broken = BrokenSample(numbers=np.array([14]), reason="zero volume", source="x.cif")
    result = judge([broken, diamond()], calculator=SWCalculator())
    assert "zero volume" in result["structures"][0]["error"]
    assert result["summary"]["n_failed"] == 1


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setattr(extra_module, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"atomsmith\[judge\]"):
        require_extra()
    with pytest.raises(MissingExtraError, match="chgnet"):
        judge([diamond()])  # the default calculator is CHGNet
