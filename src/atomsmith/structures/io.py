"""Reading and writing structure files: CIF, extxyz and POSCAR.

* Readers return ``list[Crystal]`` (a CIF can hold several data blocks, an extxyz file several frames), check
  atoms for overlap by default, and turn every parser failure into one :class:`MalformedFileError` that names
  the file and the problem.
* Writers are atomic: they write to a temporary file in the same directory and rename it, so an interrupted run
  never leaves a half-written file, and they refuse to overwrite unless ``overwrite=True``.

CIF stores lattice *parameters*, so a CIF round trip keeps the metric ``L L^T`` exactly (to the 8 significant
figures written) but may re-orient the cell; extxyz and POSCAR keep the lattice matrix itself.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from atomsmith.structures import errors
from atomsmith.structures.convert import from_ase, from_pymatgen, to_ase, to_pymatgen
from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE, Crystal

FORMATS = ("cif", "extxyz", "poscar")


def detect_format(path: str | os.PathLike) -> str:
    """Format from the file name: ``*.cif`` -> cif, ``*.xyz``/``*.extxyz`` -> extxyz, ``POSCAR*``/``*.vasp`` -> poscar."""
    name = Path(path).name.lower()
    if name.endswith(".cif"):
        return "cif"
    if name.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if name.startswith(("poscar", "contcar")) or name.endswith((".vasp", ".poscar")):
        return "poscar"
    raise errors.MalformedFileError(
        f"cannot tell the format of {str(path)!r} from its name; use .cif, .extxyz/.xyz, .vasp or POSCAR, "
        f"or pass format= one of {FORMATS}")


def parse_cif(text: str, source: str = "<string>") -> list[Crystal]:
    """Parse CIF text (one or more data blocks) with pymatgen; errors become :class:`StructureError`."""
    from pymatgen.io.cif import CifParser

    if "_cell_length_a" not in text or "_atom_site_fract_x" not in text and "_atom_site_Cartn_x" not in text:
        raise errors.MalformedFileError(
            f"{source}: not a complete CIF (missing cell lengths or atom-site coordinates; truncated file?)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(_io.StringIO(text), occupancy_tolerance=1.0)
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except errors.StructureError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types; report them as one
            detail = "; ".join(str(w.message) for w in caught[:3])
            raise errors.MalformedFileError(f"{source}: could not parse CIF: {exc}. {detail}".strip()) from exc
    if not structures:
        detail = "; ".join(str(w.message) for w in caught[:3])
        raise errors.MalformedFileError(f"{source}: no structure found in CIF. {detail}")
    unknown = [str(w.message) for w in caught if "not a valid" in str(w.message) or "element" in str(w.message)]
    out = []
    for structure in structures:
        try:
            out.append(from_pymatgen(structure))
        except errors.StructureError as exc:
            raise type(exc)(f"{source}: {exc}") from exc
    if unknown and not out:
        raise errors.UnknownElementError(f"{source}: {unknown[0]}")
    return out


def _check_cif_species(text: str, source: str) -> None:
    """pymatgen silently maps some unknown symbols to dummy species; name them instead."""
    from ase.data import atomic_numbers

    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("_atom_site_type_symbol"):
            # find column index in this loop_
            start = i
            while start > 0 and not lines[start - 1].strip().startswith("loop_"):
                start -= 1
            header = []
            j = start
            while j < len(lines) and lines[j].strip().startswith("_"):
                header.append(lines[j].strip().split()[0])
                j += 1
            col = header.index("_atom_site_type_symbol")
            while j < len(lines) and lines[j].strip() and not lines[j].strip().startswith(("loop_", "_", "data_")):
                fields = lines[j].split()
                if len(fields) > col:
                    symbol = "".join(ch for ch in fields[col] if ch.isalpha())
                    if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
                        raise errors.UnknownElementError(
                            f"{source}: unknown element {fields[col]!r} on line {j + 1}: {lines[j].strip()!r}")
                j += 1
            return


def read(path: str | os.PathLike, format: str | None = None,
         min_distance: float | None = DEFAULT_MIN_DISTANCE) -> list[Crystal]:
    """Read every structure in a CIF / extxyz / POSCAR file.

    Args:
      path: file to read.
      format: one of ``"cif"``, ``"extxyz"``, ``"poscar"``; by default guessed from the name.
      min_distance: raise :class:`OverlappingAtomsError` if two atoms are closer (Å); ``None`` skips the check.
    """
    path = Path(path)
    fmt = (format or detect_format(path)).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    source = str(path)
    if fmt == "cif":
        text = path.read_text(errors="replace")
        _check_cif_species(text, source)
        crystals = parse_cif(text, source)
    elif fmt == "extxyz":
        crystals = _read_ase(path, "extxyz", source)
    else:
        crystals = _read_poscar(path, source)
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


def _read_ase(path: Path, fmt: str, source: str) -> list[Crystal]:
    import ase.io

    try:
        frames = ase.io.read(path, index=":", format=fmt)
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse {fmt}: {exc}") from exc
    if not frames:
        raise errors.MalformedFileError(f"{source}: no frames found")
    out = []
    for k, atoms in enumerate(frames):
        if atoms.cell.rank < 3:
            raise errors.MalformedFileError(f"{source}: frame {k} has no 3D cell (Lattice=... missing)")
        shapes = atoms.info.pop(_EXTXYZ_SHAPES_KEY, None)
        if isinstance(shapes, dict):  # undo the flattening done by to_extxyz
            for key, shape in shapes.items():
                if key in atoms.arrays:
                    atoms.arrays[key] = atoms.arrays[key].reshape(len(atoms), *shape)
        try:
            out.append(from_ase(atoms))
        except errors.StructureError as exc:
            raise type(exc)(f"{source}: frame {k}: {exc}") from exc
    return out


def _read_poscar(path: Path, source: str) -> list[Crystal]:
    from pymatgen.io.vasp import Poscar

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Poscar.from_str(path.read_text()).structure
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse POSCAR: {exc}") from exc
    try:
        return [from_pymatgen(structure)]
    except errors.StructureError as exc:
        raise type(exc)(f"{source}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", overwrite: bool = False) -> Iterator:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``.

    If the body raises (or the process dies), ``path`` is untouched and the temporary file is removed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def to_cif(crystal: Crystal) -> str:
    """CIF text (P1, 8 significant figures: about 1e-7 relative precision)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(to_pymatgen(crystal), significant_figures=10))


def to_poscar(crystal: Crystal) -> str:
    from pymatgen.io.vasp import Poscar

    return Poscar(to_pymatgen(crystal), sort_structure=False).get_str(significant_figures=12)


#: extxyz comment key holding the shapes of site properties flattened to columns (e.g. Born charges [n, 3, 3]).
_EXTXYZ_SHAPES_KEY = "atomsmith_site_shapes"


def _extxyz_atoms(crystal: Crystal):
    """ase Atoms ready for the extxyz writer, which only takes [n] and [n, k] per-atom arrays and turns
    numeric-looking strings (``material_id=6334``) into numbers when read back."""
    import json

    from ase.io.extxyz import key_val_dict_to_str, key_val_str_to_dict

    atoms = to_ase(crystal)
    shapes = {}
    for key, value in crystal.site_properties.items():
        value = np.asarray(value)
        if value.ndim > 2:
            shapes[key] = list(value.shape[1:])
            atoms.arrays[key] = value.reshape(len(value), -1)
    if shapes:
        atoms.info[_EXTXYZ_SHAPES_KEY] = shapes  # written as _JSON {...}, read back as a dict
    for key, value in crystal.properties.items():
        if not isinstance(value, str):
            continue
        parsed = key_val_str_to_dict(key_val_dict_to_str({key: value})).get(key)
        if not (isinstance(parsed, str) and parsed == value):
            atoms.info[key] = "_JSON " + json.dumps(value)  # read back as exactly this string
    return atoms


def to_extxyz(crystals: Iterable[Crystal]) -> str:
    import ase.io

    buffer = _io.StringIO()
    ase.io.write(buffer, [_extxyz_atoms(c) for c in crystals], format="extxyz")
    return buffer.getvalue()


def write(path: str | os.PathLike, crystals: Crystal | Iterable[Crystal], format: str | None = None,
          overwrite: bool = False) -> Path:
    """Write one or more crystals atomically. CIF and extxyz hold many structures; POSCAR holds one."""
    path = Path(path)
    items = [crystals] if isinstance(crystals, Crystal) else list(crystals)
    fmt = (format or detect_format(path)).lower()
    if fmt == "cif":
        text = "\n".join(to_cif(c) for c in items)
    elif fmt == "extxyz":
        text = to_extxyz(items)
    elif fmt == "poscar":
        if len(items) != 1:
            raise ValueError(f"POSCAR holds one structure, got {len(items)}; write a directory or use extxyz/cif")
        text = to_poscar(items[0])
    else:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    with atomic_write(path, overwrite=overwrite) as handle:
        handle.write(text)
    return path


def write_directory(directory: str | os.PathLike, crystals: Iterable[Crystal], format: str = "cif",
                    overwrite: bool = False, prefix: str = "sample") -> list[Path]:
    """One file per structure (``sample_00000.cif`` ...), each written atomically."""
    directory = Path(directory)
    suffix = {"cif": ".cif", "extxyz": ".extxyz", "poscar": ".vasp"}[format]
    paths = []
    for k, crystal in enumerate(crystals):
        paths.append(write(directory / f"{prefix}_{k:05d}{suffix}", crystal, format, overwrite))
    return paths

