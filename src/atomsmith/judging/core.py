"""The judge: relax each structure with a universal interatomic potential (CHGNet by default; any ase calculator
works) and report how far it moved and how low its energy went; optionally its phonons (phonopy).

Relaxation: ase's FIRE on positions and, unless ``relax_cell=False``, the cell (``FrechetCellFilter``), until the
largest force (and stress, through the filter) is below ``fmax`` eV/Å or ``steps`` steps have run.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from atomsmith.judging.extra import require_extra
from atomsmith.judging.metrics import compare_with_reference, rmsd_from_relaxation, still_matches, summarize
from atomsmith.structures.crystal import Crystal

_CHGNET: dict[str, Any] = {}


def chgnet_calculator():
    """The pretrained CHGNet (weights shipped in its wheel; no network) as an ase calculator on the CPU, loaded once
    per process."""
    require_extra("chgnet")
    if "calc" not in _CHGNET:
        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device and version
            from chgnet.model import CHGNet
            from chgnet.model.dynamics import CHGNetCalculator

            model = CHGNet.load(verbose=False, use_device="cpu")
            _CHGNET["calc"] = CHGNetCalculator(model=model, use_device="cpu")
    return _CHGNET["calc"]


def chgnet_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("chgnet")
    except Exception:  # noqa: BLE001
        return None


def _atoms(crystal: Crystal, calculator):
    atoms = crystal.to_ase()
    atoms.calc = calculator
    return atoms


def relax(crystal: Crystal, calculator, fmax: float = 0.1, steps: int = 500, relax_cell: bool = True
          ) -> tuple[Crystal, dict[str, Any]]:
    """Relax ``crystal`` with FIRE; returns the relaxed :class:`Crystal` and energies (eV/atom), largest forces
    (eV/Å), steps taken and whether it converged."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = _atoms(crystal, calculator)
    n = len(atoms)
    e0 = float(atoms.get_potential_energy()) / n
    f0 = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    converged = bool(optimizer.run(fmax=fmax, steps=steps))
    e1 = float(atoms.get_potential_energy()) / n
    f1 = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    relaxed = Crystal.from_ase(atoms)
    return relaxed, {"energy_per_atom_initial": e0, "energy_per_atom_relaxed": e1, "max_force_initial": f0,
                     "max_force_relaxed": f1, "steps": int(optimizer.nsteps), "converged": converged}


def ase_forces(calculator) -> Callable[[Sequence[Crystal]], list[np.ndarray]]:
    """A phonopy force function from an ase calculator (one structure at a time)."""
    def forces(cells: Sequence[Crystal]) -> list[np.ndarray]:
        return [np.asarray(_atoms(c, calculator).get_forces(), np.float64) for c in cells]

    return forces


def judge_structure(crystal: Crystal, calculator, *, index: int = 0, fmax: float = 0.1, steps: int = 500,
                    relax_cell: bool = True, phonons: bool = False, supercell: int | Sequence[int] = 2,
                    mesh: int | Sequence[int] = 4, imaginary_threshold: float = 0.1) -> dict[str, Any]:
    """One structure's record (see :func:`judge`); an ``error`` entry instead when the potential fails on it."""
    start = time.perf_counter()
    record: dict[str, Any] = {"index": index, "formula": crystal.formula, "n_atoms": crystal.n_atoms,
                              "reduced_formula": crystal.to_pymatgen().composition.reduced_formula}
    try:
        relaxed, energies = relax(crystal, calculator, fmax, steps, relax_cell)
        record.update(energies)
        rmsd, matched = rmsd_from_relaxation(crystal, relaxed)
        record.update(rmsd=rmsd, rmsd_matched=matched, still_matches=still_matches(crystal, relaxed),
                      volume_initial=float(crystal.volume), volume_relaxed=float(relaxed.volume),
                      volume_change=float(relaxed.volume / crystal.volume - 1.0))
        if phonons:
            from atomsmith.judging.phonons import phonon_stability

            try:
                record["phonons"] = phonon_stability(relaxed, ase_forces(calculator), supercell, mesh,
                                                     imaginary_threshold)
            except Exception as exc:  # noqa: BLE001 - record why, keep the relaxation numbers
                record["phonons"] = {"error": f"{type(exc).__name__}: {exc}"}
        record["relaxed"] = {"lattice": relaxed.lattice.tolist(), "frac_coords": relaxed.frac_coords.tolist(),
                             "numbers": relaxed.numbers.tolist()}
    except Exception as exc:  # noqa: BLE001 - a structure the potential cannot handle is reported, not fatal
        record = {k: record[k] for k in ("index", "formula", "n_atoms", "reduced_formula")}
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["seconds"] = time.perf_counter() - start
    return record


def _crystals(samples) -> list:
    if isinstance(samples, (str, os.PathLike)):
        from atomsmith.metrics.samples import load_samples

        return load_samples(samples)
    return list(samples)


def judge(samples: Sequence[Crystal] | str | os.PathLike, reference: Sequence[Crystal] | str | None = None, *,
          fmax: float = 0.1, steps: int = 500, relax_cell: bool = True, phonons: bool = False,
          supercell: int | Sequence[int] = 2, mesh: int | Sequence[int] = 4, imaginary_threshold: float = 0.1,
          reference_limit: int | None = 100, limit: int | None = None, threshold: float = 0.1,
          calculator=None, progress: bool = False) -> dict[str, Any]:
    """Judge generated structures with a physical model (CHGNet unless ``calculator`` is given).

    Per structure (``result["structures"]``, input order): energy per atom before and after FIRE relaxation
    (eV/atom), largest force before and after (eV/Å), steps and convergence, MatterGen's RMSD between generated
    and relaxed structure (Å, :func:`~atomsmith.judging.metrics.rmsd_from_relaxation`), whether it still matches
    (pymatgen ``StructureMatcher``), volume change (fraction), the relaxed cell, and with ``phonons=True`` the
    phonopy finite-displacement stability of the relaxed cell (``supercell``, Γ-centred ``mesh``, stable when no
    frequency is below ``-imaginary_threshold`` THz). Per set (``result["summary"]``): medians and fractions
    (:func:`~atomsmith.judging.metrics.summarize`). With ``reference`` (``"NAME:SPLIT"``, a file, or crystals; its
    first ``reference_limit`` structures, relaxed the same way): energy above the reference structure of the same
    composition, and the relaxed-energy distributions (``result["reference"]``).

    Raises :class:`~atomsmith.judging.extra.MissingExtraError` (naming ``atomsmith[judge]``) when CHGNet or phonopy
    is needed and not installed.
    """
    if phonons:
        require_extra("phonopy")
    if fmax <= 0 or steps < 0:
        raise ValueError(f"fmax must be positive and steps non-negative, got fmax={fmax}, steps={steps}")
    calc = calculator if calculator is not None else chgnet_calculator()
    crystals = _crystals(samples)[:limit]
    if not crystals:
        raise ValueError("no structures to judge")
    ref_crystals = None
    ref_name = None
    if reference is not None:
        if isinstance(reference, str):
            from atomsmith.metrics.evaluate import load_reference

            ref_name = reference
            ref_crystals = load_reference(reference, limit=reference_limit)
        else:
            ref_crystals = list(reference)[:reference_limit]
    options = dict(fmax=fmax, steps=steps, relax_cell=relax_cell)
    phonon_options = dict(phonons=phonons, supercell=supercell, mesh=mesh, imaginary_threshold=imaginary_threshold)
    start = time.perf_counter()
    records = []
    for i, crystal in _progress(list(enumerate(crystals)), "relaxing samples", progress):
        if not isinstance(crystal, Crystal):  # a BrokenSample from the reader
            records.append({"index": i, "error": f"not a buildable crystal: {getattr(crystal, 'reason', crystal)}"})
            continue
        records.append(judge_structure(crystal, calc, index=i, **options, **phonon_options))
    sample_seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "judge": "chgnet" if calculator is None else type(calc).__name__,
        "chgnet_version": chgnet_version() if calculator is None else None,
        "options": {**options, **phonon_options, "reference_limit": reference_limit, "threshold": threshold},
        "summary": summarize(records),
        "structures": records,
        "timing_s": {"samples": sample_seconds,
                     "per_structure": sample_seconds / len(records)},
    }
    if ref_crystals is not None:
        start = time.perf_counter()
        ref_records = [judge_structure(c, calc, index=i, **options)
                       for i, c in _progress(list(enumerate(ref_crystals)), "relaxing reference", progress)]
        result["reference"] = {"name": ref_name, **compare_with_reference(records, ref_records, threshold)}
        result["timing_s"]["reference"] = time.perf_counter() - start
    return result


def _progress(items: list, description: str, show: bool):
    if not show:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=False)
