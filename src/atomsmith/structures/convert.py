"""Conversions between :class:`Crystal` and pymatgen ``Structure`` / ase ``Atoms`` (the only place they live).

Round trips are lossless: lattice and fractional coordinates are copied as float64 arrays, properties travel as
pymatgen ``properties`` / ``site_properties`` and ase ``info`` / ``arrays``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atomsmith.structures import errors
from atomsmith.structures.crystal import MIN_VOLUME, Crystal

# ase keeps these per-atom arrays itself; they are not user site properties.
_ASE_OWN_ARRAYS = {"numbers", "positions", "momenta", "masses", "initial_magmoms", "initial_charges", "tags"}


def to_pymatgen(crystal: Crystal):
    """:class:`Crystal` -> ``pymatgen.core.Structure`` (fractional coordinates kept as they are, not wrapped)."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(crystal.lattice), crystal.symbols, crystal.frac_coords, coords_are_cartesian=False,
                     site_properties={k: list(v) for k, v in crystal.site_properties.items()} or None,
                     properties=dict(crystal.properties))


def from_pymatgen(structure: Any) -> Crystal:
    """``pymatgen.core.Structure`` -> :class:`Crystal`.

    Raises :class:`PartialOccupancyError` for disordered structures and :class:`UnknownElementError` for dummy
    species (e.g. ``X``).
    """
    if not structure.is_ordered:
        bad = [i for i, site in enumerate(structure) if not site.is_ordered]
        raise errors.PartialOccupancyError(
            f"sites {bad[:10]} have partial or mixed occupancy ({structure[bad[0]].species_string}); "
            "order the structure first (e.g. pymatgen OrderDisorderedStructureTransformation)")
    numbers = []
    for i, site in enumerate(structure):
        element = site.specie
        z = getattr(element, "Z", None)
        if z is None or not 1 <= int(z) <= 118:
            raise errors.UnknownElementError(f"site {i} has species {site.species_string!r}, not a chemical element")
        numbers.append(int(z))
    site_props = {k: np.asarray(v) for k, v in structure.site_properties.items()
                  if all(x is not None for x in v)}
    props = dict(getattr(structure, "properties", {}) or {})
    return Crystal(np.array(structure.lattice.matrix), np.array(structure.frac_coords), np.array(numbers),
                   properties=props, site_properties=site_props)


def to_ase(crystal: Crystal):
    """:class:`Crystal` -> ``ase.Atoms`` with ``pbc=True``; properties go to ``info``, site properties to arrays."""
    from ase import Atoms

    atoms = Atoms(numbers=crystal.numbers, cell=crystal.lattice, pbc=True)
    atoms.set_scaled_positions(crystal.frac_coords)
    # set_scaled_positions wraps nothing but goes through Cartesian; store the exact fractional coordinates too.
    atoms.positions[:] = crystal.frac_coords @ crystal.lattice
    for key, value in crystal.properties.items():
        atoms.info[key] = value
    for key, value in crystal.site_properties.items():
        atoms.arrays[key] = np.asarray(value)
    return atoms


def from_ase(atoms: Any) -> Crystal:
    """``ase.Atoms`` -> :class:`Crystal`. The cell must be fully periodic (3 lattice vectors)."""
    if not np.all(atoms.pbc) and atoms.cell.rank < 3:
        raise errors.SingularCellError(
            f"ase Atoms has pbc={atoms.pbc.tolist()} and a cell of rank {atoms.cell.rank}; atomsmith needs a 3D cell")
    lattice = np.array(atoms.cell[:], np.float64)
    if atoms.cell.rank == 3 and np.all(np.isfinite(lattice)) and abs(np.linalg.det(lattice)) < MIN_VOLUME:
        raise errors.SingularCellError(
            f"lattice is singular (volume {np.linalg.det(lattice):.3g} Å^3); rows must be three independent vectors")
    frac = np.linalg.solve(lattice.T, np.asarray(atoms.positions, np.float64).T).T if atoms.cell.rank == 3 \
        else np.zeros((len(atoms), 3))
    props = {k: v for k, v in atoms.info.items() if _is_plain(v)}
    site = {k: np.array(v) for k, v in atoms.arrays.items() if k not in _ASE_OWN_ARRAYS}
    if atoms.calc is not None:
        results = getattr(atoms.calc, "results", {})
        for key, value in results.items():
            value = np.asarray(value)
            if value.ndim and value.shape[0] == len(atoms) and key in ("forces", "charges", "magmoms"):
                site.setdefault(key, value)
            elif key in ("energy", "free_energy", "stress"):
                props.setdefault(key, value)
    return Crystal.right_handed(lattice, frac, atoms.numbers, properties=props, site_properties=site)


def _is_plain(value: Any) -> bool:
    if isinstance(value, (str, int, float, np.floating, np.integer)):
        return True
    try:
        return np.asarray(value).dtype.kind in "fiub"
    except Exception:  # noqa: BLE001 - anything ase stored that numpy cannot read is skipped
        return False
