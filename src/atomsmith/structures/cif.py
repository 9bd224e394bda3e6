"""CIF: reading (pymatgen's CifParser behind cheap checks that name the problem) and writing (P1).

CIF stores lattice *parameters*, so a CIF round trip keeps the metric ``L L^T`` exactly (to the 8 significant
figures written) but may re-orient the cell. P1 blocks are read back in the file's atom order and at its
coordinates; a file with several data blocks gives several structures (repeated block names are made unique).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Sequence

import numpy as np

from atomsmith.structures import errors
from atomsmith.structures.convert import from_pymatgen, to_pymatgen
from atomsmith.structures.crystal import MIN_VOLUME, Crystal
from atomsmith.structures.text import read_text

__all__ = ["cif_element", "dumps", "parse_cif", "read", "to_cif"]


def read(path: str | os.PathLike, source: str) -> list[Crystal]:
    """Every structure of the CIF file ``path`` (``.gz`` too); ``source`` names the file in error messages."""
    return parse_cif(read_text(path), source)


def dumps(crystals: Sequence[Crystal]) -> str:
    """One CIF text holding every crystal as a data block (block names made unique)."""
    return _unique_block_names("\n".join(to_cif(c) for c in crystals))


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


def to_cif(crystal: Crystal) -> str:
    """CIF text (P1, 8 significant figures: about 1e-7 relative precision)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(to_pymatgen(crystal), significant_figures=10))
