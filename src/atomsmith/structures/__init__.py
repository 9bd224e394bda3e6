"""The one structure type (:class:`Crystal`), its validation errors, conversions and structure files.

Modules: :mod:`~atomsmith.structures.crystal` (``Crystal``), :mod:`~atomsmith.structures.errors` (typed errors),
:mod:`~atomsmith.structures.convert` (pymatgen / ase), :mod:`~atomsmith.structures.io` (``read`` / ``write`` of
CIF, extxyz, POSCAR; one module per format: ``cif``, ``extxyz``, ``poscar``).
"""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.structures.crystal": ("Crystal", "DEFAULT_MIN_DISTANCE"),
    "atomsmith.structures.errors": ("MalformedFileError", "OverlappingAtomsError", "StructureError"),
    "atomsmith.structures.io": ("FORMATS", "read", "read_one", "write", "write_directory"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
