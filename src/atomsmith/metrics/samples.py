"""Loading generated samples for evaluation without ever rejecting a sample for its geometry.

Generators produce overlapping atoms, collapsed or NaN cells; CDVAE counts such samples as invalid rather than
dropping them, so the loader must keep them. :func:`load_samples` reads

* an extxyz file (many frames),
* a CIF file with one or many ``data_`` blocks,
* a directory of CIF / extxyz / POSCAR (``POSCAR*``, ``CONTCAR*``, ``*.vasp``) files, in sorted name order,
* any of these files gzip-compressed (name ending in ``.gz``, e.g. ``samples.extxyz.gz``),

with no distance check (``min_distance=None``). A structure that cannot become a :class:`Crystal` at all
(singular or NaN cell, NaN coordinates) is returned as a :class:`BrokenSample` that still carries its atomic
numbers, so compositional validity is computed for it exactly as CDVAE does for a lattice it could not build.

P1 CIF blocks (only the identity symmetry operation, full occupancies, the usual output of generators) are read
directly from the CIF data items, so atoms on top of each other stay separate atoms; pymatgen's ``CifParser``
would merge them into one site with occupancy 2 and refuse the block. Other CIFs go through pymatgen.
A file that is not a structure file at all (bad syntax, missing coordinates) raises
:class:`~atomsmith.structures.errors.MalformedFileError`.
"""

from __future__ import annotations

import dataclasses
import io as _io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atomsmith.structures import errors
from atomsmith.structures.crystal import Crystal

_DIRECTORY_SUFFIXES = (".cif", ".xyz", ".extxyz", ".vasp", ".poscar")


@dataclasses.dataclass(frozen=True)
class BrokenSample:
    """A sample whose geometry could not be built into a :class:`Crystal` (counted as structurally invalid).

    Attributes:
      numbers: ``[n_atoms]`` atomic numbers (empty if even the species could not be read).
      reason: why the structure could not be built.
      source: file (and block / frame) it came from.
    """

    numbers: np.ndarray
    reason: str
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return int(np.asarray(self.numbers).shape[0])


#: A loaded sample: a Crystal, or a BrokenSample for a geometry that could not be built.
Sample = Crystal | BrokenSample


def build_sample(lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, source: str = "",
                 properties: dict | None = None) -> Sample:
    """A :class:`Crystal` (right-handed) from arrays, or a :class:`BrokenSample` saying why it cannot be one."""
    numbers = np.asarray(numbers)
    try:
        return Crystal.right_handed(lattice, frac_coords, numbers, properties=properties or {})
    except (errors.StructureError, np.linalg.LinAlgError, ValueError) as exc:
        return BrokenSample(numbers.astype(np.int64) if numbers.dtype.kind in "iu" else np.zeros(0, np.int64),
                            f"{type(exc).__name__}: {exc}", source)


def load_samples(path: str | os.PathLike) -> list[Sample]:
    """All samples in an extxyz file, a (multi-block) CIF file, or a directory of structure files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_structure_file(p))
        if not files:
            raise errors.MalformedFileError(
                f"{path}: no structure files (*.cif, *.extxyz, *.xyz, *.vasp, POSCAR*, CONTCAR*) in the directory")
        out: list[Sample] = []
        for f in files:
            out.extend(load_samples(f))
        return out
    from atomsmith.structures.io import detect_format

    fmt = detect_format(path)
    if fmt == "cif":
        return _read_cif(path)
    return _read_ase(path, "extxyz" if fmt == "extxyz" else "vasp")


def _is_structure_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(_DIRECTORY_SUFFIXES) or name.startswith(("poscar", "contcar"))


def _read_ase(path: Path, fmt: str) -> list[Sample]:
    import ase.io

    from atomsmith.structures.io import is_gzipped, read_text

    try:
        handle = _io.StringIO(read_text(path)) if is_gzipped(path) else path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = ase.io.read(handle, index=":", format=fmt)
    except Exception as exc:  # noqa: BLE001 - ase raises many types; report them as one
        raise errors.MalformedFileError(f"{path}: could not parse {fmt}: {exc}") from exc
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise errors.MalformedFileError(f"{path}: no structures found")
    out: list[Sample] = []
    for k, atoms in enumerate(frames):
        source = f"{path}" + (f" (frame {k})" if len(frames) > 1 else "")
        lattice = np.array(atoms.cell[:], np.float64)
        positions = np.asarray(atoms.positions, np.float64)
        try:
            frac = np.linalg.solve(lattice.T, positions.T).T
        except np.linalg.LinAlgError as exc:
            out.append(BrokenSample(np.asarray(atoms.numbers, np.int64), f"singular cell: {exc}", source))
            continue
        out.append(build_sample(lattice, frac, atoms.numbers, source))
    return out


# ---------------------------------------------------------------------------------------------- CIF
_BLOCK = re.compile(r"^data_", re.MULTILINE)


def _read_cif(path: Path) -> list[Sample]:
    from atomsmith.structures.io import read_text

    text = read_text(path)
    starts = [m.start() for m in _BLOCK.finditer(text)]
    if not starts:
        raise errors.MalformedFileError(f"{path}: no 'data_' block found; not a CIF file?")
    blocks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    out: list[Sample] = []
    for k, block in enumerate(blocks):
        source = f"{path}" + (f" (block {k})" if len(blocks) > 1 else "")
        out.extend(_read_cif_block(block, source))
    return out


def _cif_float(value: str) -> float:
    """A CIF number such as ``4.0512(3)``; ``?`` and ``.`` are NaN."""
    value = value.strip().strip("'\"")
    if value in ("?", "."):
        return float("nan")
    return float(re.sub(r"\(\d+\)$", "", value))


def _read_cif_block(block: str, source: str) -> list[Sample]:
    from pymatgen.io.cif import CifFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = next(iter(CifFile.from_str(block).data.values())).data
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse CIF block: {exc}") from exc
    needed = ["_cell_length_a", "_cell_length_b", "_cell_length_c", "_cell_angle_alpha", "_cell_angle_beta",
              "_cell_angle_gamma", "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"]
    missing = [k for k in needed if k not in data]
    if missing:
        raise errors.MalformedFileError(f"{source}: CIF block lacks {missing} (only fractional coordinates are "
                                        "supported for samples)")
    symbols = data.get("_atom_site_type_symbol") or data.get("_atom_site_label")
    if symbols is None:
        raise errors.MalformedFileError(f"{source}: CIF block has no _atom_site_type_symbol or _atom_site_label")
    symbols = [symbols] if isinstance(symbols, str) else list(symbols)
    numbers = _symbols_to_numbers(symbols, source)

    ops = None
    for key in ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz"):
        if key in data:
            ops = data[key]
            ops = [ops] if isinstance(ops, str) else list(ops)
    occupancies = data.get("_atom_site_occupancy")
    occupancies = [] if occupancies is None else [occupancies] if isinstance(occupancies, str) else occupancies
    identity_only = ops is None or all(op.replace(" ", "").strip("'\"").lower() == "x,y,z" for op in ops)
    full = all(_cif_float(o) == 1.0 for o in occupancies if o.strip() not in ("?", "."))
    if identity_only and full:
        return [_p1_sample(data, numbers, source)]
    return _pymatgen_block(block, numbers, source)


def _symbols_to_numbers(symbols: Sequence[str], source: str) -> np.ndarray:
    from ase.data import atomic_numbers

    out = []
    for raw in symbols:
        symbol = re.match(r"[A-Za-z]+", raw.strip("'\""))
        symbol = symbol.group(0) if symbol else raw
        symbol = symbol[:1].upper() + symbol[1:].lower()
        if symbol not in atomic_numbers and symbol[:1] in atomic_numbers:
            symbol = symbol[:1]  # labels such as "Ti0" were handled; "OW1" -> O
        if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
            raise errors.UnknownElementError(f"{source}: unknown element {raw!r}")
        out.append(atomic_numbers[symbol])
    return np.asarray(out, np.int64)


def _p1_sample(data: dict, numbers: np.ndarray, source: str) -> Sample:
    from pymatgen.core import Lattice

    try:
        params = [_cif_float(data[k]) for k in ("_cell_length_a", "_cell_length_b", "_cell_length_c",
                                                "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")]
        frac = np.stack([[_cif_float(v) for v in _as_list(data[f"_atom_site_fract_{x}"])] for x in "xyz"], axis=1)
    except ValueError as exc:
        raise errors.MalformedFileError(f"{source}: unreadable number in CIF block: {exc}") from exc
    if frac.shape[0] != numbers.shape[0]:
        raise errors.MalformedFileError(f"{source}: {frac.shape[0]} coordinates but {numbers.shape[0]} species")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            lattice = Lattice.from_parameters(*params).matrix
        except Exception as exc:  # noqa: BLE001 - impossible angles etc. are a geometry failure, not a bad file
            return BrokenSample(numbers, f"cell parameters {params} do not form a lattice: {exc}", source)
    return build_sample(lattice, frac, numbers, source)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _pymatgen_block(block: str, numbers: np.ndarray, source: str) -> list[Sample]:
    from pymatgen.io.cif import CifParser

    from atomsmith.structures.convert import from_pymatgen

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures = CifParser(_io.StringIO(block), occupancy_tolerance=1.0).parse_structures(
                primitive=False, on_error="raise")
    except Exception as exc:  # noqa: BLE001
        # Symmetry-expanded structure that pymatgen cannot build: the species of the asymmetric unit are all we
        # know, which is not the composition; count it as a sample with no usable composition.
        return [BrokenSample(np.zeros(0, np.int64), f"pymatgen could not build the structure: {exc}", source)]
    out: list[Sample] = []
    for structure in structures:
        try:
            out.append(from_pymatgen(structure))
        except errors.StructureError as exc:
            species = [getattr(s.specie, "Z", 0) if s.is_ordered else 0 for s in structure]
            out.append(BrokenSample(np.asarray(species if all(species) else [], np.int64),
                                    f"{type(exc).__name__}: {exc}", source))
    return out
