"""Your own training data: a CSV of CIFs with property columns, or a folder of structure files.

    >>> from atomsmith.datasets.user_data import load_user_data
    >>> data = load_user_data("my.csv", targets=["band_gap"], on_bad="skip")
    >>> len(data.crystals), [p.where for p in data.problems]     # skipped rows, with their line numbers

A CSV needs a column of CIF text (``cif`` by default) and one numeric column per target; ``material_id`` is kept
if present. A folder is read file by file (extxyz, xyz, CIF, POSCAR/VASP; a single extxyz file of many frames works too);
extxyz frames carry their targets in the comment line (``band_gap=1.2``). Every entry is validated: it must parse, have no overlapping atoms (closer than
:data:`~atomsmith.structures.crystal.DEFAULT_MIN_DISTANCE` Å over periodic images) and a finite value of every
target. With ``on_bad="fail"`` the first problems are raised together (one :class:`BadDataError` naming each line);
with ``on_bad="skip"`` the bad entries are left out and listed in :attr:`UserData.problems`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from atomsmith.datasets.csv_reader import CsvLayout, read_csv_lenient, read_header
from atomsmith.datasets.errors import DatasetError
from atomsmith.structures import errors
from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE, Crystal

#: File suffixes read from a folder (other files are ignored).
STRUCTURE_SUFFIXES = (".extxyz", ".xyz", ".cif", ".vasp", ".poscar")
_REPORTED = 20


class BadDataError(DatasetError, ValueError):
    """Entries of the user's data that cannot be used (``on_bad="fail"``); the message lists them with lines."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One entry that was rejected.

    Attributes:
      where: ``"my.csv line 12"`` or ``"folder/a.extxyz frame 3"``.
      message: what is wrong.
    """

    where: str
    message: str


@dataclasses.dataclass(frozen=True)
class UserData:
    """Validated structures (in file order) and the entries that were rejected."""

    crystals: tuple[Crystal, ...]
    problems: tuple[Problem, ...]
    source: str
    targets: tuple[str, ...]


def load_user_data(path: str | os.PathLike, targets: Sequence[str] = (), *, cif_column: str = "cif",
                   on_bad: Literal["fail", "skip"] = "fail",
                   min_distance: float | None = DEFAULT_MIN_DISTANCE) -> UserData:
    """Read and validate a CSV of CIFs (``.csv`` / ``.csv.gz``) or a folder of structure files.

    Args:
      path: the CSV file or the folder.
      targets: property names every structure must carry as a finite number (CSV columns / extxyz info keys).
      cif_column: CSV column holding the CIF text.
      on_bad: ``"fail"`` raises :class:`BadDataError` listing the bad entries; ``"skip"`` leaves them out.
      min_distance: atoms closer than this (Å) reject the entry; ``None`` disables the check.

    Raises:
      FileNotFoundError: the path does not exist.
      MalformedFileError: the CSV header lacks the CIF column or a target column.
      BadDataError: ``on_bad="fail"`` and some entries are bad, or no entry is usable.
    """
    if on_bad not in ("fail", "skip"):
        raise ValueError(f"on_bad must be 'fail' or 'skip', not {on_bad!r}")
    path = Path(path)
    targets = tuple(targets)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        crystals, problems = _read_files(path, sorted(p for p in path.iterdir() if _is_structure_file(p)), targets,
                                         min_distance)
    elif _is_structure_file(path):  # one extxyz (or CIF) file holding many structures
        crystals, problems = _read_files(path, [path], targets, min_distance)
    else:
        crystals, problems = _read_table(path, targets, cif_column, min_distance)
    if problems and on_bad == "fail":
        shown = "\n".join(f"  {p.where}: {p.message}" for p in problems[:_REPORTED])
        more = f"\n  ... and {len(problems) - _REPORTED} more" if len(problems) > _REPORTED else ""
        raise BadDataError(f"{path}: {len(problems)} bad entr{'y' if len(problems) == 1 else 'ies'} "
                           f"(pass on_bad='skip' / --on-bad skip to leave them out):\n{shown}{more}")
    if not crystals:
        raise BadDataError(f"{path}: no usable structures ({len(problems)} rejected)")
    return UserData(tuple(crystals), tuple(problems), str(path), targets)


def _read_table(path: Path, targets: tuple[str, ...], cif_column: str,
                min_distance: float | None) -> tuple[list[Crystal], list[Problem]]:
    header = read_header(path)
    layout = CsvLayout(cif_column=cif_column, id_column="material_id" if "material_id" in header else None,
                       property_columns={t: t for t in targets}, min_distance=min_distance)
    read = read_csv_lenient(path, layout)
    located = [(p.line, Problem(f"{path.name} line {p.line}", _strip_location(p.message))) for p in read.problems]
    kept = []
    for crystal, line in zip(read.crystals, read.lines):
        bad = _bad_targets(crystal, targets)
        if bad:
            located.append((line, Problem(f"{path.name} line {line}", bad)))
        else:
            kept.append(crystal)
    return kept, [problem for _, problem in sorted(located, key=lambda item: item[0])]


def _strip_location(message: str) -> str:
    """Row messages start with ``'<file>, row i (line L...): '``; the location is already in :attr:`Problem.where`."""
    head, sep, rest = message.partition("): ")
    return rest if sep and ", row " in head else message


def _bad_targets(crystal: Crystal, targets: tuple[str, ...]) -> str | None:
    for name in targets:
        if name not in crystal.properties:
            return f"no value for target {name!r}"
        try:
            value = np.asarray(crystal.properties[name], np.float64)
        except (TypeError, ValueError):
            return f"target {name!r} is {crystal.properties[name]!r}, not a number"
        if value.size == 0 or not np.all(np.isfinite(value)):
            return f"target {name!r} is empty or not finite"
    return None


def _is_structure_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and (Path(name).suffix in STRUCTURE_SUFFIXES or name.upper().startswith(("POSCAR",
                                                                                                 "CONTCAR")))


def _read_files(source: Path, files: list[Path], targets: tuple[str, ...],
                min_distance: float | None) -> tuple[list[Crystal], list[Problem]]:
    from atomsmith.structures.io import read

    if not files:
        raise BadDataError(f"{source}: no structure files ({', '.join(STRUCTURE_SUFFIXES)}, POSCAR)")
    crystals, problems = [], []
    for file in files:
        try:
            frames = read(file)
        except (errors.StructureError, OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(file.name, str(exc)))
            continue
        for k, crystal in enumerate(frames):
            where = f"{file.name} frame {k}" if len(frames) > 1 else file.name
            try:
                if min_distance is not None:
                    crystal.check_distances(min_distance)
            except errors.OverlappingAtomsError as exc:
                problems.append(Problem(where, str(exc)))
                continue
            bad = _bad_targets(crystal, targets)
            if bad:
                problems.append(Problem(where, bad))
            else:
                crystals.append(crystal.with_properties(source_file=where))
    return crystals, problems

