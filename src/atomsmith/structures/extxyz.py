"""extxyz (ase's reader and writer): many frames per file, the lattice matrix and every property kept.

ase's extxyz reader turns fields with calculator names (``energy``, ``stress``, ``forces``, ``charge``, ...) into a
calculator; :func:`read` puts them back as the file has them, and :func:`to_extxyz` refuses properties that a reader
could not give back as written. Site properties with more than one axis per atom are flattened to columns and
their shapes recorded in the comment line.
"""

from __future__ import annotations

import io as _io
import os
import warnings
from collections.abc import Iterable

import numpy as np

from atomsmith.structures import errors
from atomsmith.structures.convert import from_ase, to_ase
from atomsmith.structures.crystal import Crystal
from atomsmith.structures.text import read_text

__all__ = ["ATOM_SHAPES", "CONFIG_SHAPES", "dumps", "read", "to_extxyz"]


def read(path: str | os.PathLike, source: str) -> list[Crystal]:
    """Every frame of the extxyz file ``path`` (``.gz`` too); ``source`` names the file in error messages."""
    import ase.io

    try:
        text = read_text(path)
        _check_xyz_layout(text, source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = ase.io.read(_io.StringIO(text), index=":", format="extxyz")
    except errors.StructureError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: could not parse extxyz: {exc}") from exc
    if not frames:
        raise errors.MalformedFileError(f"{source}: no frames found")
    comments = _extxyz_comments(text, [len(atoms) for atoms in frames])
    out = []
    for k, atoms in enumerate(frames):
        if atoms.cell.rank < 3:
            raise errors.MalformedFileError(f"{source}: frame {k} has no 3D cell (Lattice=... missing)")
        if comments is not None:
            _restore_calculator_fields(atoms, comments[k])
        shapes = atoms.info.pop(_SHAPES_KEY, None)
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


#: extxyz comment key holding the shapes of site properties flattened to columns (e.g. Born charges [n, 3, 3]).
_SHAPES_KEY = "atomsmith_site_shapes"


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
        atoms.info[_SHAPES_KEY] = shapes  # written as _JSON {...}, read back as a dict
    for key, value in crystal.properties.items():
        if not isinstance(value, str):
            continue
        parsed = key_val_str_to_dict(key_val_dict_to_str({key: value})).get(key)
        if not (isinstance(parsed, str) and parsed == value):
            atoms.info[key] = "_JSON " + json.dumps(value)  # read back as exactly this string
    return atoms


#: Shapes ase's extxyz reader imposes on per-structure fields with calculator names (it turns them into results).
CONFIG_SHAPES = {"energy": [()], "free_energy": [()], "magmom": [()], "stress": [(3, 3), (6,)],
                         "virial": [(3, 3)], "dipole": [(3,)], "polarization": [(3,)], "dielectric_tensor": [(3, 3)]}
#: ... and on per-atom columns (after the first axis, the atoms; ``charge`` is ase's ``charges``).
ATOM_SHAPES = {"energies": (), "forces": (3,), "stresses": (6,), "charges": (), "charge": (),
                       "magmoms": (), "born_effective_charges": (3, 3)}
_ASE_CALC_NAMES = {"energy", "forces", "stress", "stresses", "dipole", "charges", "charge", "magmom", "magmoms",
                   "free_energy", "energies", "dielectric_tensor", "born_effective_charges", "polarization"}


def _check_extxyz_names(crystal: Crystal) -> None:
    """Refuse (``ShapeError``) properties that extxyz readers (ase) cannot give back as written: a field with a
    calculator name (``stress``, ``energy``, ``forces``, ``charge``, ...) of another shape or type than the
    calculator quantity, or one such name used both per structure and per atom."""
    for key, value in crystal.properties.items():
        shapes = CONFIG_SHAPES.get(key)
        if shapes is None:
            continue
        array = np.asarray(value) if not isinstance(value, str) else None
        if array is None or array.dtype.kind not in "fiu" or array.shape not in shapes:
            raise errors.ShapeError(
                f"property {key!r} = {value!r} cannot be written to extxyz: readers treat {key!r} as a calculator "
                f"result of shape {' or '.join(map(str, shapes))}; rename the property")
    for key, value in crystal.site_properties.items():
        if key in ATOM_SHAPES and np.asarray(value).shape[1:] != ATOM_SHAPES[key]:
            raise errors.ShapeError(
                f"site property {key!r} of shape {np.shape(value)} cannot be written to extxyz: readers treat "
                f"{key!r} as a calculator result of shape (n_atoms, {', '.join(map(str, ATOM_SHAPES[key]))})"
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


def dumps(crystals: Iterable[Crystal]) -> str:
    """extxyz text of every crystal, one frame each (:func:`to_extxyz`)."""
    return to_extxyz(crystals)
