"""What the judge measures on a generated structure and its relaxed counterpart, and the per-set summary.

RMSD between generated and relaxed structure follows MatterGen (Zeni et al., Nature 2025; its evaluation code):
the generated structure is first symmetrised (spglib refined cell, then primitive, then LLL-reduced), both are
compared by pymatgen's ``StructureMatcher(ltol=0.5, stol=0.5, angle_tol=10, primitive_cell=True, scale=False,
attempt_supercell=True)``, and the matcher's RMS distance, which is normalised by ``(V / n)^(1/3)``, is converted
back to Å with the mean of the two cells' lattice parameters (with the mean volume per atom when symmetrisation
changed the number of atoms in the cell, where MatterGen's formula would average two different cells). When the matcher finds no alignment the RMSD is the
cut-off itself, ``0.5 (V / n)^(1/3)`` Å (MatterGen's convention), and ``rmsd_matched`` is False.
Like MatterGen's, the matcher first reduces both structures to primitive cells within pymatgen's 0.25 Å
tolerance, so in a supercell a displacement smaller than that is averaged over the images it folds onto.

"Still matches" uses pymatgen's default ``StructureMatcher()`` (ltol 0.2, stol 0.3, angle_tol 5; CDVAE's tolerances
are looser) between the generated and the relaxed structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from atomsmith.structures.crystal import Crystal

#: MatterGen's structure-matcher tolerance for the RMSD (in units of (V/n)^(1/3)).
RMSD_STOL = 0.5


def _symmetrised(structure):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        refined = SpacegroupAnalyzer(structure).get_refined_structure()
        return refined.get_primitive_structure().get_reduced_structure(reduction_algo="LLL")
    except Exception:  # noqa: BLE001 - spglib fails on overlapping atoms: compare the structure as it is
        return structure


def rmsd_from_relaxation(generated: Crystal, relaxed: Crystal) -> tuple[float, bool]:
    """``(rmsd Å, matched)``: MatterGen's RMSD between a generated structure and its relaxed form (module docs)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Lattice

    original = _symmetrised(generated.to_pymatgen())
    final = relaxed.to_pymatgen()
    matcher = StructureMatcher(ltol=0.5, stol=RMSD_STOL, angle_tol=10, primitive_cell=True, scale=False,
                               attempt_supercell=True, allow_subset=False)
    match = matcher.get_rms_dist(final, original)
    if len(final) == len(original):  # MatterGen: the cell with the mean lattice parameters, per atom
        mean = Lattice.from_parameters(*((np.array(final.lattice.parameters)
                                          + np.array(original.lattice.parameters)) / 2))
        length = (mean.volume / len(final)) ** (1.0 / 3.0)
    else:  # symmetrisation changed the cell: mean volume per atom (MatterGen would mix two cells' parameters)
        length = ((final.volume / len(final) + original.volume / len(original)) / 2) ** (1.0 / 3.0)
    if match is None:
        return float(RMSD_STOL * length), False
    return float(match[0] * length), True


def still_matches(generated: Crystal, relaxed: Crystal) -> bool:
    """pymatgen's default ``StructureMatcher().fit(generated, relaxed)``."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return bool(StructureMatcher().fit(generated.to_pymatgen(), relaxed.to_pymatgen()))


def _median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(values)) if values else None


def _fraction(flags: Sequence[bool | None]) -> float | None:
    flags = [bool(f) for f in flags if f is not None]
    return float(np.mean(flags)) if flags else None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-set medians and fractions of per-structure judge records (failed records count in ``n_failed``)."""
    ok = [r for r in records if "error" not in r]
    out: dict[str, Any] = {
        "n_structures": len(records),
        "n_failed": len(records) - len(ok),
        "median_energy_per_atom_initial": _median([r["energy_per_atom_initial"] for r in ok]),
        "median_energy_per_atom_relaxed": _median([r["energy_per_atom_relaxed"] for r in ok]),
        "median_energy_drop_per_atom": _median([r["energy_per_atom_initial"] - r["energy_per_atom_relaxed"]
                                                for r in ok]),
        "median_rmsd": _median([r["rmsd"] for r in ok]),
        "median_abs_volume_change": _median([abs(r["volume_change"]) for r in ok]),
        "median_steps": _median([r["steps"] for r in ok]),
        "fraction_converged": _fraction([r["converged"] for r in ok]),
        "fraction_rmsd_matched": _fraction([r["rmsd_matched"] for r in ok]),
        "fraction_still_matching": _fraction([r["still_matches"] for r in ok]),
    }
    with_phonons = [r["phonons"] for r in ok if "phonons" in r]
    if with_phonons:
        done = [p for p in with_phonons if "error" not in p]
        out["n_phonons"] = len(with_phonons)
        out["n_phonons_failed"] = len(with_phonons) - len(done)
        out["fraction_phonon_stable"] = _fraction([p["stable"] for p in done])
        out["median_min_frequency_thz"] = _median([p["min_frequency_thz"] for p in done])
    return out


def compare_with_reference(records: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]],
                           threshold: float = 0.1) -> dict[str, Any]:
    """Sample records against reference records relaxed the same way.

    ``energy_above_reference`` of a sample: its relaxed energy per atom minus the lowest relaxed energy per atom of
    the reference structures with the same reduced formula (None where the reference has none). Returns that
    per sample (in input order), its median, the fraction of samples with a same-formula reference, the fractions
    at or below the reference (``<= 0``) and within ``threshold`` eV/atom of it, and the relaxed-energy
    distributions (medians, 1-D Wasserstein distance between the two sets of energies per atom).
    """
    from scipy.stats import wasserstein_distance

    ref_ok = [r for r in reference if "error" not in r]
    lowest: dict[str, float] = {}
    for r in ref_ok:
        formula = r["reduced_formula"]
        lowest[formula] = min(lowest.get(formula, np.inf), r["energy_per_atom_relaxed"])
    above = []
    for r in records:
        if "error" in r or r["reduced_formula"] not in lowest:
            above.append(None)
        else:
            above.append(float(r["energy_per_atom_relaxed"] - lowest[r["reduced_formula"]]))
    known = [a for a in above if a is not None]
    sample_energies = [r["energy_per_atom_relaxed"] for r in records if "error" not in r]
    ref_energies = [r["energy_per_atom_relaxed"] for r in ref_ok]
    return {
        "n_reference": len(reference),
        "n_reference_failed": len(reference) - len(ref_ok),
        "energy_above_reference": above,
        "fraction_with_reference_formula": float(len(known) / len(records)) if records else None,
        "median_energy_above_reference": _median(known),
        "fraction_at_or_below_reference": _fraction([a <= 1e-6 for a in known]) if known else None,
        "fraction_within_threshold": _fraction([a <= threshold for a in known]) if known else None,
        "threshold_ev_per_atom": threshold,
        "median_reference_energy_per_atom_relaxed": _median(ref_energies),
        "wasserstein_relaxed_energy_per_atom": (float(wasserstein_distance(sample_energies, ref_energies))
                                                if sample_energies and ref_energies else None),
    }
