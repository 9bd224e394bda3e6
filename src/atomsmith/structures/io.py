"""Reading and writing structure files: CIF, extxyz and POSCAR.

* Readers return ``list[Crystal]`` (a CIF can hold several data blocks, an extxyz file several frames), check
  atoms for overlap by default, and turn every parser failure into one :class:`MalformedFileError` that names
  the file and the problem.
* Writers are atomic (:func:`atomsmith.core.files.atomic_write`): they write to a temporary file in the same
  directory and rename it, so an interrupted run never leaves a half-written file, and they refuse to overwrite
  unless ``overwrite=True``.

Files whose name ends in ``.gz`` (``samples.extxyz.gz``, ``structure.cif.gz``) are read and written through gzip;
the format is told by the suffix before ``.gz``.

CIF stores lattice *parameters*, so a CIF round trip keeps the metric ``L L^T`` exactly (to the 8 significant
figures written) but may re-orient the cell; extxyz and POSCAR keep the lattice matrix itself.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from atomsmith.core import files
from atomsmith.core.files import atomic_write, gzip_bytes, is_gzipped
from atomsmith.structures import errors
from atomsmith.structures.convert import from_ase, from_pymatgen, to_ase, to_pymatgen
from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE, MIN_VOLUME, Crystal

FORMATS = ("cif", "extxyz", "poscar")


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path``, decompressed when its name ends in ``.gz`` (undecodable bytes replaced).

    Raises :class:`MalformedFileError` for a ``.gz`` file that is not valid gzip.
    """
    try:
        return files.read_text(path)
    except (OSError, EOFError) as exc:
        if not is_gzipped(path):
            raise
        raise errors.MalformedFileError(f"{Path(path)}: not a readable gzip file: {exc}") from exc


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


def parse_cif(text: str, source: str = "<string>") -> list[Crystal]:
    """Parse CIF text (one or more data blocks) with pymatgen; errors become :class:`StructureError`."""
    from pymatgen.io.cif import CifParser

    if "_cell_length_a" not in text or "_atom_site_fract_x" not in text and "_atom_site_Cartn_x" not in text:
        raise errors.MalformedFileError(
            f"{source}: not a complete CIF (missing cell lengths or atom-site coordinates; truncated file?)")
    text = _unique_block_names(text)
    file_orders = _check_cif_atom_sites(text, source)
    # pymatgen snaps coordinates within 1e-4 (relative) of 1/3 and 2/3 to those values, which helps symmetry
    # expansion but moves atoms of P1 structures by up to ~1e-4 Å per Å of cell; only snap non-P1 blocks.
    all_p1 = bool(file_orders) and all(order is not None for order in file_orders)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text, occupancy_tolerance=1.0, frac_tolerance=0.0 if all_p1 else 1e-4)
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except errors.StructureError:
            raise
        except np.linalg.LinAlgError as exc:  # a flat cell that _check_cif_cells did not see as such
            raise errors.SingularCellError(f"{source}: the cell is singular (its vectors are linearly dependent): "
                                           f"{exc}") from exc
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types; report them as one
            caught = [w for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
            detail = "; ".join(str(w.message) for w in caught[:3])
            raise errors.MalformedFileError(f"{source}: could not parse CIF: {exc}. {detail}".strip()) from exc
    if not structures:
        detail = "; ".join(str(w.message) for w in caught[:3])
        raise errors.MalformedFileError(f"{source}: no structure found in CIF. {detail}")
    unknown = [str(w.message) for w in caught if "not a valid" in str(w.message) or "element" in str(w.message)]
    out = []
    for k, structure in enumerate(structures):
        try:
            crystal = from_pymatgen(structure)
        except errors.StructureError as exc:
            raise type(exc)(f"{source}: {exc}") from exc
        if len(file_orders) == len(structures) and file_orders[k] is not None:
            crystal = _in_file_order(crystal, *file_orders[k])
        out.append(crystal)
    if unknown and not out:
        raise errors.UnknownElementError(f"{source}: {unknown[0]}")
    return out


_CIF_TOKEN = re.compile(r"""'[^']*'(?=\s|$)|"[^"]*"(?=\s|$)|\S+""")
_FORMULA_TERM = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")


def _cif_tokens(line: str) -> list[str]:
    return [t[1:-1] if t[:1] in "'\"" and len(t) > 1 else t for t in _CIF_TOKEN.findall(line)]


def _cif_blocks(text: str) -> list[list[tuple[int, str]]]:
    """Lines (1-based number, stripped text) of each ``data_`` block, comments and blank lines dropped."""
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("data_"):
            blocks.append([])
        blocks[-1].append((number, line))
    return [b for b in blocks if b]


def _cif_loops(block: list[tuple[int, str]]):
    """Yield ``(header, values)`` for each ``loop_``: tag names (lower case) and ``(token, line number)`` values.

    Loops holding semicolon text fields are skipped (they need a full CIF parser; pymatgen handles them).
    """
    i = 0
    while i < len(block):
        if block[i][1].lower() != "loop_":
            i += 1
            continue
        i += 1
        header = []
        while i < len(block) and block[i][1].startswith("_"):
            header.append(block[i][1].split()[0].lower())
            i += 1
        values, text_field = [], False
        while i < len(block) and not block[i][1].startswith("_") and block[i][1].lower() != "loop_" \
                and not block[i][1].lower().startswith("data_"):
            text_field |= block[i][1].startswith(";")
            values.extend((token, block[i][0]) for token in _cif_tokens(block[i][1]))
            i += 1
        if header and not text_field:
            yield header, values


def _unique_block_names(text: str) -> str:
    """Rename repeated ``data_NAME`` headers (``data_C``, ``data_C`` -> ``data_C``, ``data_C_2``).

    pymatgen keys data blocks by name, so a file with repeated names (e.g. many carbon cells, all ``data_C``)
    silently lost all but the last block of each name.
    """
    seen: dict[str, int] = {}
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped[:5].lower() == "data_" and len(stripped.split()) == 1:
            name = stripped[5:]
            seen[name.lower()] = seen.get(name.lower(), 0) + 1
            if seen[name.lower()] > 1:
                lines[i] = line.replace(stripped, f"data_{name}_{seen[name.lower()]}", 1)
    return "".join(lines)


def _in_file_order(crystal: Crystal, numbers: np.ndarray, frac: np.ndarray) -> Crystal:
    """pymatgen's CifParser groups sites by species, sorts them by electronegativity and wraps coordinates into
    [0, 1); put the atoms back in the order and at the coordinates of the file's atom-site table (P1 blocks
    only), so that Crystal -> CIF -> Crystal keeps atom order. Returns ``crystal`` unchanged when the sites
    cannot be matched one to one."""
    from scipy.spatial import cKDTree

    if len(numbers) != crystal.n_atoms:
        return crystal

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.mod(x, 1.0)
        return np.where(x >= 1.0, 0.0, x)

    distance, order = cKDTree(unit(crystal.frac_coords), boxsize=1.0).query(unit(frac), k=1)
    if np.any(distance > 1e-6) or len(set(order.tolist())) != len(order) or \
            not np.array_equal(crystal.numbers[order], numbers):
        return crystal
    return crystal.permuted(order).replace(frac_coords=frac)


#: Type symbols that pymatgen's CifParser maps by name (water and a few ions); "" means no element.
_CIF_SPECIAL_SYMBOLS = {"Hw": "H", "Ow": "O", "Wat": "O", "wat": "O", "OH": "", "OH2": "", "NO3": "N"}


def cif_element(token: str) -> str | None:
    """The element symbol a CIF ``_atom_site_type_symbol`` stands for, read as pymatgen's CifParser reads it:
    a few special names (``Wat`` -> O), else the first two letters (``Fe3+`` -> Fe), else the first letter
    (``O2-(H2O)`` -> O); ``None`` when neither is a chemical element."""
    from ase.data import atomic_numbers

    special = re.match("|".join(_CIF_SPECIAL_SYMBOLS), token)
    if special:
        return _CIF_SPECIAL_SYMBOLS[special.group()] or None
    for candidate in (token[:2].title(), token[:1].upper()):
        if atomic_numbers.get(candidate, 0) > 0:
            return candidate
    return None


_CELL_TAGS = ("_cell_length_a", "_cell_length_b", "_cell_length_c", "_cell_angle_alpha", "_cell_angle_beta",
              "_cell_angle_gamma")


def _check_cif_cell(block: list[tuple[int, str]], source: str) -> None:
    """A non-finite cell parameter (:class:`NonFiniteError`) or a flat cell (:class:`SingularCellError`), named
    with its values; pymatgen reported these as a numpy matrix dump or ``Singular matrix``."""
    values: dict[str, float] = {}
    for number, line in block:
        tokens = _cif_tokens(line)
        tag = tokens[0].lower() if tokens else ""
        if tag in _CELL_TAGS and len(tokens) > 1:
            try:
                values[tag] = float(re.sub(r"\(.*\)?$", "", tokens[1]))
            except ValueError:
                continue  # '?' or '.': left to pymatgen
            if not np.isfinite(values[tag]):
                raise errors.NonFiniteError(f"{source}: {tag} on line {number} is {tokens[1]}, not a finite number")
    if len(values) != len(_CELL_TAGS):
        return
    a, b, c, alpha, beta, gamma = (values[t] for t in _CELL_TAGS)
    cosines = np.cos(np.radians([alpha, beta, gamma]))
    radicand = 1.0 - np.sum(cosines ** 2) + 2.0 * np.prod(cosines)
    volume = a * b * c * float(np.sqrt(max(radicand, 0.0))) if min(a, b, c) > 0 else 0.0
    if volume <= max(MIN_VOLUME, 1e-9 * abs(a * b * c)):
        raise errors.SingularCellError(
            f"{source}: the cell a, b, c = {a:g}, {b:g}, {c:g} Å, alpha, beta, gamma = {alpha:g}, {beta:g}, {gamma:g} "
            f"deg has volume {volume:.3g} Å^3: its vectors are (nearly) linearly dependent")


def _check_cif_atom_sites(text: str, source: str) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Cheap checks of each block's atom-site table, so that bad files give one error naming the problem.

    pymatgen either accepts these silently or reports them obscurely: a table cut mid-row or (for P1 blocks)
    holding fewer atoms than ``_chemical_formula_sum`` (truncated file), an unknown element symbol, a
    missing or non-finite coordinate, and two fully occupied atoms listed at the same fractional position (which
    pymatgen would merge into one site of occupancy 2).

    Returns, per data block with an atom-site table, ``(atomic numbers, fractional coordinates)`` in file order
    when the block is P1 with fully occupied sites and type symbols (else ``None``), for :func:`_in_file_order`.
    """
    from ase.data import atomic_numbers

    orders: list[tuple[np.ndarray, np.ndarray] | None] = []
    for block in _cif_blocks(text):
        _check_cif_cell(block, source)
        n_symops, n_atoms, formula = None, None, None
        table: list[tuple[int, list[float]]] | None = None
        for number, line in block:
            if line.lower().startswith("_chemical_formula_sum"):
                tokens = _cif_tokens(line)
                formula = tokens[1] if len(tokens) > 1 else None
        for header, values in _cif_loops(block):
            if "_symmetry_equiv_pos_as_xyz" in header or "_space_group_symop_operation_xyz" in header:
                n_symops = len(values) // len(header)
            if "_atom_site_fract_x" not in header and "_atom_site_cartn_x" not in header:
                continue
            ncol = len(header)
            if len(values) % ncol:
                k = len(values) % ncol
                raise errors.MalformedFileError(
                    f"{source}: the atom-site table ends in the middle of a row: its last row (line "
                    f"{values[-1][1]}) has {k} of {ncol} values (truncated file?)")
            rows = [values[r:r + ncol] for r in range(0, len(values), ncol)]
            n_atoms = len(rows)
            col = {name: header.index(name) for name in header}
            axes = [f"_atom_site_fract_{a}" for a in "xyz"] if "_atom_site_fract_x" in header \
                else [f"_atom_site_cartn_{a}" for a in "xyz"]
            seen: dict[tuple[int, int, int], tuple[str, int]] = {}
            table = [] if axes[0].endswith("fract_x") and "_atom_site_type_symbol" in col else None
            for row in rows:
                line_no = row[0][1]
                label = row[col["_atom_site_label"]][0] if "_atom_site_label" in col else f"on line {line_no}"
                if "_atom_site_type_symbol" in col:
                    token = row[col["_atom_site_type_symbol"]][0]
                    symbol = cif_element(token)
                    if symbol is None:
                        raise errors.UnknownElementError(
                            f"{source}: unknown element {token!r} for atom {label} on line {line_no}")
                xyz = []
                for axis in axes:
                    if axis not in col:
                        raise errors.MalformedFileError(f"{source}: the atom-site table has no {axis} column")
                    token = row[col[axis]][0]
                    try:
                        value = float(re.sub(r"\(.*\)?$", "", token))
                    except ValueError:
                        raise errors.MalformedFileError(
                            f"{source}: atom {label} on line {line_no} has {axis} = {token!r}, not a number") from None
                    if not np.isfinite(value):
                        raise errors.NonFiniteError(
                            f"{source}: atom {label} on line {line_no} has a non-finite coordinate {axis} = {token}")
                    xyz.append(value)
                occupancy = 1.0
                if "_atom_site_occupancy" in col:
                    with contextlib.suppress(ValueError):
                        occupancy = float(re.sub(r"\(.*\)?$", "", row[col["_atom_site_occupancy"]][0]))
                if axes[0].endswith("fract_x") and occupancy >= 1.0 - 1e-6:
                    key = tuple(int(v) for v in np.round(np.mod(xyz, 1.0) * 1e4).astype(np.int64) % 10000)
                    if key in seen:
                        other, other_line = seen[key]
                        raise errors.OverlappingAtomsError(
                            f"{source}: atoms {other} (line {other_line}) and {label} (line {line_no}) are at the same "
                            f"site ({', '.join(f'{v:g}' for v in xyz)}) in fractional coordinates")
                    seen[key] = (label, line_no)
                if table is not None and occupancy >= 1.0 - 1e-6:
                    table.append((atomic_numbers[symbol], xyz))
                elif table is not None:
                    table = None  # partial occupancy: no one-to-one order to restore
        if formula and n_atoms is not None and n_symops == 1:
            expected = sum(float(c) if c else 1.0 for _, c in _FORMULA_TERM.findall(formula))
            if n_atoms < round(expected):
                raise errors.MalformedFileError(
                    f"{source}: the atom-site table lists {n_atoms} atoms but _chemical_formula_sum {formula!r} "
                    f"has {round(expected)} (truncated file, or atoms missing)")
        if n_atoms is not None:
            orders.append((np.array([z for z, _ in table]), np.array([x for _, x in table]).reshape(-1, 3))
                          if table is not None and n_symops == 1 else None)
    return orders


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
    if fmt == "cif":
        text = read_text(path)
        crystals = parse_cif(text, source)
    elif fmt == "extxyz":
        crystals = _read_ase(path, "extxyz", source)
    else:
        crystals = _read_poscar(path, source)
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


def _read_ase(path: Path, fmt: str, source: str) -> list[Crystal]:
    import ase.io

    try:
        text = read_text(path)
        _check_xyz_layout(text, source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = ase.io.read(_io.StringIO(text), index=":", format=fmt)
    except errors.StructureError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse {fmt}: {exc}") from exc
    if not frames:
        raise errors.MalformedFileError(f"{source}: no frames found")
    comments = _extxyz_comments(text, [len(atoms) for atoms in frames])
    out = []
    for k, atoms in enumerate(frames):
        if atoms.cell.rank < 3:
            raise errors.MalformedFileError(f"{source}: frame {k} has no 3D cell (Lattice=... missing)")
        if comments is not None:
            _restore_calculator_fields(atoms, comments[k])
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


def _check_xyz_layout(text: str, source: str) -> None:
    """Check the frame layout of an (ext)xyz text before ase reads it: each frame is an atom-count line, a comment
    line and that many atom lines (optionally followed by ``VEC`` lines), up to the first blank line.

    ase skips ``natoms`` lines in a Python loop before looking at them, so a damaged count such as
    ``99999999999`` would make it spin for hours; here it is a :class:`MalformedFileError` naming the line.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip():
        try:
            n = int(lines[i])
        except ValueError:
            raise errors.MalformedFileError(f"{source}: line {i + 1}: expected the atom count of a frame, got "
                                            f"{lines[i].strip()[:40]!r}") from None
        if n < 0 or i + 2 + n > len(lines):
            raise errors.MalformedFileError(f"{source}: line {i + 1}: a frame of {n} atoms, but only "
                                            f"{max(len(lines) - i - 2, 0)} lines follow (truncated file?)")
        i += 2 + n
        while i < len(lines) and lines[i].lstrip().startswith("VEC"):
            i += 1


def _extxyz_comments(text: str, sizes: list[int]) -> list[str] | None:
    """The comment (second) line of each frame, given the frames' atom counts; ``None`` if the layout is not the
    plain one (count line, comment line, one line per atom)."""
    lines = text.splitlines()
    out, i = [], 0
    for n in sizes:
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i + 1 >= len(lines) or lines[i].strip() != str(n):
            return None
        out.append(lines[i + 1])
        i += n + 2
    return out


def _restore_calculator_fields(atoms, comment: str) -> None:
    """Undo what ase's extxyz reader does to fields with calculator names (energy, stress, forces, charge,
    magmom, dipole, ...): it moves them into a ``SinglePointCalculator``, renames the column ``charge`` to
    ``charges`` and turns a 3x3 ``stress`` into Voigt form. Put them back in ``info`` / ``arrays`` exactly as
    the file has them, so that extxyz round trips keep every property's name and shape."""
    from ase.io.extxyz import PROPERTY_NAME_MAP, key_val_str_to_dict

    calc, atoms.calc = atoms.calc, None
    results = dict(getattr(calc, "results", None) or {})
    if not results:
        return
    try:
        fields = key_val_str_to_dict(comment)
    except Exception:  # noqa: BLE001 - ase parsed it once already; keep its reading if a second parse fails
        fields = {}
    columns = str(fields.get("Properties", "")).split(":")[::3]
    for key, value in results.items():
        column = PROPERTY_NAME_MAP.get(key, key)
        if column in columns and np.ndim(value) and np.shape(value)[0] == len(atoms):
            atoms.arrays[column] = np.asarray(value)
        elif key in fields:
            atoms.info[key] = fields[key]
        else:
            atoms.info[key] = value


def _read_poscar(path: Path, source: str) -> list[Crystal]:
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


# ---------------------------------------------------------------------------------------------- writing
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

    _check_extxyz_names(crystal)
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


#: Shapes ase's extxyz reader imposes on per-structure fields with calculator names (it turns them into results).
_EXTXYZ_CONFIG_SHAPES = {"energy": [()], "free_energy": [()], "magmom": [()], "stress": [(3, 3), (6,)],
                         "virial": [(3, 3)], "dipole": [(3,)], "polarization": [(3,)], "dielectric_tensor": [(3, 3)]}
#: ... and on per-atom columns (after the first axis, the atoms; ``charge`` is ase's ``charges``).
_EXTXYZ_ATOM_SHAPES = {"energies": (), "forces": (3,), "stresses": (6,), "charges": (), "charge": (),
                       "magmoms": (), "born_effective_charges": (3, 3)}
_ASE_CALC_NAMES = {"energy", "forces", "stress", "stresses", "dipole", "charges", "charge", "magmom", "magmoms",
                   "free_energy", "energies", "dielectric_tensor", "born_effective_charges", "polarization"}


def _check_extxyz_names(crystal: Crystal) -> None:
    """Refuse (``ShapeError``) properties that extxyz readers (ase) cannot give back as written: a field with a
    calculator name (``stress``, ``energy``, ``forces``, ``charge``, ...) of another shape or type than the
    calculator quantity, or one such name used both per structure and per atom."""
    for key, value in crystal.properties.items():
        shapes = _EXTXYZ_CONFIG_SHAPES.get(key)
        if shapes is None:
            continue
        array = np.asarray(value) if not isinstance(value, str) else None
        if array is None or array.dtype.kind not in "fiu" or array.shape not in shapes:
            raise errors.ShapeError(
                f"property {key!r} = {value!r} cannot be written to extxyz: readers treat {key!r} as a calculator "
                f"result of shape {' or '.join(map(str, shapes))}; rename the property")
    for key, value in crystal.site_properties.items():
        if key in _EXTXYZ_ATOM_SHAPES and np.asarray(value).shape[1:] != _EXTXYZ_ATOM_SHAPES[key]:
            raise errors.ShapeError(
                f"site property {key!r} of shape {np.shape(value)} cannot be written to extxyz: readers treat "
                f"{key!r} as a calculator result of shape (n_atoms, {', '.join(map(str, _EXTXYZ_ATOM_SHAPES[key]))})"
                "; rename it")
    aliases = {"charges": "charge"}
    site = {aliases.get(k, k) for k in crystal.site_properties if k in _ASE_CALC_NAMES}
    both = sorted(site & {aliases.get(k, k) for k in crystal.properties if k in _ASE_CALC_NAMES})
    if both:
        raise errors.ShapeError(f"{both[0]!r} is both a property and a site property; extxyz readers keep only one "
                                "of them: rename one")


def to_extxyz(crystals: Iterable[Crystal]) -> str:
    import ase.io

    buffer = _io.StringIO()
    ase.io.write(buffer, [_extxyz_atoms(c) for c in crystals], format="extxyz")
    return buffer.getvalue()


def _serialize(path: Path, items: list[Crystal], format: str | None) -> bytes:
    """The bytes of ``items`` as they will be written to ``path`` (format from ``format`` or the name; gzip for
    ``.gz``). Every serialization error happens here, before any file is opened."""
    fmt = (format or detect_format(path)).lower()
    if fmt == "cif":
        text = _unique_block_names("\n".join(to_cif(c) for c in items))
    elif fmt == "extxyz":
        text = to_extxyz(items)
    elif fmt == "poscar":
        if len(items) != 1:
            raise ValueError(f"POSCAR holds one structure, got {len(items)}; write a directory or use extxyz/cif")
        text = to_poscar(items[0])
    else:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
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
