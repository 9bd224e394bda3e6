"""Reading and writing structure files: CIF, extxyz and POSCAR, behind one :func:`read` and one :func:`write`.

* Readers return ``list[Crystal]`` (a CIF can hold several data blocks, an extxyz file several frames), check
  atoms for overlap by default, and turn every parser failure into one :class:`MalformedFileError` that names
  the file and the problem.
* Writers are atomic (:func:`atomsmith.core.files.atomic_write`): they write to a temporary file in the same
  directory and rename it, so an interrupted run never leaves a half-written file, and they refuse to overwrite
  unless ``overwrite=True``.

Files whose name ends in ``.gz`` (``samples.extxyz.gz``, ``structure.cif.gz``) are read and written through gzip;
the format is told by the suffix before ``.gz``.

Each format is one module with ``read(path, source)`` and ``dumps(crystals)``: :mod:`atomsmith.structures.cif`
(lattice *parameters*: a round trip keeps the metric ``L L^T`` but may re-orient the cell),
:mod:`atomsmith.structures.extxyz` and :mod:`atomsmith.structures.poscar` (both keep the lattice matrix).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from atomsmith.core.files import atomic_write, gzip_bytes, is_gzipped
from atomsmith.structures import cif, errors, extxyz, poscar
from atomsmith.structures.cif import cif_element, parse_cif, to_cif
from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE, Crystal
from atomsmith.structures.extxyz import to_extxyz
from atomsmith.structures.poscar import to_poscar
from atomsmith.structures.text import read_text

__all__ = ["FORMATS", "atomic_write", "cif_element", "detect_format", "is_gzipped", "parse_cif", "read", "read_one",
           "read_text", "to_cif", "to_extxyz", "to_poscar", "write", "write_directory"]

FORMATS = ("cif", "extxyz", "poscar")
_MODULES = {"cif": cif, "extxyz": extxyz, "poscar": poscar}
#: per-structure fields that extxyz readers treat as calculator results, and their shapes (old name, kept).
_EXTXYZ_CONFIG_SHAPES = extxyz.CONFIG_SHAPES


def detect_format(path: str | os.PathLike) -> str:
    """Format from the file name: ``*.cif`` -> cif, ``*.xyz``/``*.extxyz`` -> extxyz, ``POSCAR*``/``*.vasp`` -> poscar;
    a trailing ``.gz`` is ignored (``samples.extxyz.gz`` -> extxyz)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".cif"):
        return "cif"
    if name.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if name.startswith(("poscar", "contcar")) or name.endswith((".vasp", ".poscar")):
        return "poscar"
    raise errors.MalformedFileError(
        f"cannot tell the format of {str(path)!r} from its name: name it *.cif, *.extxyz / *.xyz, *.vasp or POSCAR "
        f"(or give the format: one of {', '.join(FORMATS)})")


def read(path: str | os.PathLike, format: str | None = None,
         min_distance: float | None = DEFAULT_MIN_DISTANCE) -> list[Crystal]:
    """Read every structure in a CIF / extxyz / POSCAR file.

    Args:
      path: file to read.
      format: one of ``"cif"``, ``"extxyz"``, ``"poscar"``; by default guessed from the name.
      min_distance: raise :class:`OverlappingAtomsError` if two atoms are closer (Å); ``None`` skips the check.
    """
    path = Path(path)
    if path.is_dir():  # before the format: a directory's name says nothing about it
        raise errors.MalformedFileError(f"{path} is a directory, not a structure file; give the files in it")
    fmt = (format or detect_format(path)).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    source = str(path)
    crystals = _MODULES[fmt].read(path, source)
    for k, crystal in enumerate(crystals):
        if crystal.n_atoms == 0:
            where = f"{source}" + (f" (structure {k})" if len(crystals) > 1 else "")
            raise errors.MalformedFileError(f"{where}: the structure has no atoms (empty or truncated file?)")
    if min_distance is not None:
        for k, crystal in enumerate(crystals):
            try:
                crystal.check_distances(min_distance)
            except errors.OverlappingAtomsError as exc:
                where = f"{source}" + (f" (structure {k})" if len(crystals) > 1 else "")
                raise errors.OverlappingAtomsError(f"{where}: {exc}") from exc
    return crystals


def read_one(path: str | os.PathLike, format: str | None = None,
             min_distance: float | None = DEFAULT_MIN_DISTANCE) -> Crystal:
    """Read a file that must hold exactly one structure."""
    crystals = read(path, format, min_distance)
    if len(crystals) != 1:
        raise errors.MalformedFileError(f"{path}: expected one structure, found {len(crystals)}")
    return crystals[0]


def _serialize(path: Path, items: list[Crystal], format: str | None) -> bytes:
    """The bytes of ``items`` as they will be written to ``path`` (format from ``format`` or the name; gzip for
    ``.gz``). Every serialization error happens here, before any file is opened."""
    fmt = (format or detect_format(path)).lower()
    if fmt not in _MODULES:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    text = _MODULES[fmt].dumps(items)
    return gzip_bytes(text.encode()) if is_gzipped(path) else text.encode()


def write(path: str | os.PathLike, crystals: Crystal | Iterable[Crystal], format: str | None = None,
          overwrite: bool = False) -> Path:
    """Write one or more crystals atomically. CIF and extxyz hold many structures; POSCAR holds one.
    A name ending in ``.gz`` is gzip-compressed (deterministically: no time stamp in the gzip header)."""
    path = Path(path)
    items = [crystals] if isinstance(crystals, Crystal) else list(crystals)
    data = _serialize(path, items, format)
    with atomic_write(path, mode="wb", overwrite=overwrite) as handle:
        handle.write(data)
    return path


def write_directory(directory: str | os.PathLike, crystals: Iterable[Crystal], format: str = "cif",
                    overwrite: bool = False, prefix: str = "sample") -> list[Path]:
    """One file per structure (``sample_00000.cif`` ...), each written atomically.

    All structures are serialized before the first file is written, and if writing fails part way the files
    this call created are removed again, so a failed call leaves no partial set of new files behind.
    """
    directory = Path(directory)
    suffix = {"cif": ".cif", "extxyz": ".extxyz", "poscar": ".vasp"}[format]
    items = list(crystals)
    paths = [directory / f"{prefix}_{k:05d}{suffix}" for k in range(len(items))]
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass overwrite=True (CLI: --force) to replace it")
    blobs = [_serialize(path, [crystal], format) for path, crystal in zip(paths, items)]
    created: list[Path] = []
    try:
        for path, data in zip(paths, blobs):
            new = not path.exists()
            with atomic_write(path, mode="wb", overwrite=overwrite) as handle:
                handle.write(data)
            if new:
                created.append(path)
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return paths
