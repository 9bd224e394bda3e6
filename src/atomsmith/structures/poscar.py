"""POSCAR (VASP 5, with an element line): one structure per file, the lattice matrix kept as written."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from atomsmith.structures import errors
from atomsmith.structures.convert import from_pymatgen, to_pymatgen
from atomsmith.structures.crystal import Crystal
from atomsmith.structures.text import read_text

__all__ = ["dumps", "read", "to_poscar"]


def read(path: str | os.PathLike, source: str) -> list[Crystal]:
    """The structure of the POSCAR / CONTCAR file ``path`` (``.gz`` too), as a one-element list; ``source`` names the
    file in error messages."""
    from pymatgen.io.vasp import Poscar

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            structure = Poscar.from_str(read_text(path)).structure
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse POSCAR: {exc}") from exc
    if any("cannot be determined" in str(w.message) for w in caught):
        # VASP 4 style file without an element line: pymatgen would silently make every atom H, He, ...
        raise errors.MalformedFileError(
            f"{source}: the POSCAR has no element symbols (line 6 must name the species, e.g. 'Ba Ti O')")
    try:
        return [from_pymatgen(structure)]
    except errors.StructureError as exc:
        raise type(exc)(f"{source}: {exc}") from exc


def to_poscar(crystal: Crystal) -> str:
    """POSCAR text of one crystal (12 significant figures, atoms in their order)."""
    from pymatgen.io.vasp import Poscar

    return Poscar(to_pymatgen(crystal), sort_structure=False).get_str(significant_figures=12)


def dumps(crystals: Sequence[Crystal]) -> str:
    """POSCAR text of the one crystal in ``crystals``; :class:`ValueError` for any other number."""
    if len(crystals) != 1:
        raise ValueError(f"POSCAR holds one structure, got {len(crystals)}; write a directory or use extxyz/cif")
    return to_poscar(crystals[0])
