"""What every command shares about its outputs: checking them before the work, writing them, showing a summary.

* :func:`check_output` refuses, as a usage error (exit code 2, one line), every output that the final atomic write
  (:func:`atomsmith.core.files.atomic_write`) would fail on: an existing file without ``--force``, a file name
  that is a directory (or the reverse), a parent that is a file, and a directory where no file can be created
  (no permission, a read-only or virtual file system such as ``/sys`` or ``/proc``). It creates and removes a probe
  file (or, when the parent does not exist yet, a probe directory in the nearest existing ancestor) named like the
  writer's temporary files, so nothing is left behind. Outputs are checked before any work starts (sampling,
  training, prediction can take hours).
* :func:`output_plan` tells from ``--out`` / ``--format`` how structures are written (one file, gzip, or a
  directory of one file per structure) and :func:`write_structures` writes them that way; :func:`write_json`
  writes a JSON report atomically.
* :func:`print_summary` prints the end-of-command (quantity, value) table; :func:`format_value` formats one value
  of a metrics table.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer

__all__ = ["check_output", "format_value", "output_plan", "print_summary", "write_json", "write_structures"]

#: File suffixes of structure outputs and their formats (``.gz`` after them: gzip, extxyz only).
_FILE_SUFFIXES = {".extxyz": "extxyz", ".xyz": "extxyz", ".cif": "cif", ".vasp": "poscar", ".poscar": "poscar"}


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. EACCES on a component: treated as absent; the probe below reports the real problem
        return False


def check_output(out: Path, force: bool, *, directory: bool = False, param_hint: str = "--out") -> None:
    """Raise :class:`typer.BadParameter` naming ``param_hint`` unless ``out`` can be written.

    Args:
      out: the output path (a file, or with ``directory=True`` a directory of files, created when absent).
      force: an existing output may be replaced (``--force``; for a directory: it may be non-empty).
      directory: the output is a directory.
      param_hint: the option named in the message.
    """
    out = Path(out)

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint=param_hint)

    if directory:
        if _exists(out) and not out.is_dir():
            raise bad(f"{out} is a file; this output is a directory (one file per structure)")
        if _exists(out) and not force and any(out.iterdir()):
            raise bad(f"{out} exists and is not empty; pass --force to overwrite it")
        target = out
    else:
        if out.is_dir():
            raise bad(f"{out} is a directory; give a file name")
        if _exists(out) and not force:
            raise bad(f"{out} exists; pass --force to overwrite it")
        target = out.parent
    ancestor = target
    while not _exists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise bad(f"cannot write {out}: {ancestor} is not a directory")
    try:
        if ancestor == target:
            fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=ancestor)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=ancestor))
    except OSError as exc:
        raise bad(f"cannot write {out}: no file can be created in {ancestor} ({exc.strerror or exc})") from None


def output_plan(out: Path, fmt: str | None, n: int) -> tuple[str, bool, bool]:
    """``(format, is_directory, gzip)`` for ``out``: a file for extxyz (optionally ``.gz``) and single CIFs;
    a directory of one file per structure for ``--format cif``/``poscar`` when OUT has no file suffix.

    Args:
      out: the ``--out`` path.
      fmt: the ``--format`` option (``None``: from the name of ``out``).
      n: how many structures will be written (a POSCAR file holds one).
    Raises:
      typer.BadParameter: the format cannot be told or does not fit the name or ``n``.
    """
    name = out.name.lower()
    gz = name.endswith(".gz")
    suffix = Path(name[:-3] if gz else name).suffix
    if fmt is None:
        if suffix in _FILE_SUFFIXES:
            fmt = _FILE_SUFFIXES[suffix]
        elif name.startswith(("poscar", "contcar")):
            fmt = "poscar"
        else:
            raise typer.BadParameter(f"cannot tell the format of {out}; use .extxyz, .cif, .vasp or pass --format",
                                     param_hint="--out")
    fmt = fmt.lower()
    if fmt not in ("extxyz", "cif", "poscar"):
        raise typer.BadParameter(f"unknown format {fmt!r}; choose extxyz, cif or poscar", param_hint="--format")
    if gz and fmt != "extxyz":
        raise typer.BadParameter("only extxyz output can be gzipped", param_hint="--out")
    directory = suffix not in _FILE_SUFFIXES and not name.startswith(("poscar", "contcar"))
    if fmt == "poscar" and not directory and n != 1:
        raise typer.BadParameter(f"a POSCAR file holds one structure; give a directory to write {n}",
                                 param_hint="--out")
    return fmt, directory, gz


def write_structures(out: Path, crystals: Sequence, fmt: str, directory: bool, gz: bool, force: bool) -> None:
    """Write ``crystals`` as :func:`output_plan` said: one file per structure in the directory ``out``, or one file
    (gzip-compressed extxyz when ``gz``), atomically; ``force`` replaces existing files."""
    from atomsmith.core.files import atomic_write, gzip_bytes
    from atomsmith.structures import io

    if directory:
        io.write_directory(out, crystals, format=fmt, overwrite=force)
    elif gz:
        with atomic_write(out, mode="wb", overwrite=force) as handle:
            handle.write(gzip_bytes(io.to_extxyz(crystals).encode()))
    else:
        io.write(out, crystals, format=fmt, overwrite=force)


def write_json(out: Path, data: Any, force: bool, indent: int = 2) -> None:
    """``data`` as indented JSON (and a final newline) in ``out``, atomically; ``force`` replaces an existing file."""
    from atomsmith.core.files import atomic_write

    with atomic_write(out, overwrite=force) as handle:
        json.dump(data, handle, indent=indent)
        handle.write("\n")


def print_summary(title: str, rows: Iterable[tuple[str, str]], console=None) -> None:
    """Print a two-column (quantity, value) rich table to ``console`` (default: stderr, so stdout stays clean)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    (console or Console(stderr=True)).print(table)


def format_value(value: Any, kind: str, percent_digits: int = 2) -> str:
    """One value of a metrics table: ``"–"`` for ``None``; kind ``"pct"`` (a fraction shown in %, with
    ``percent_digits`` decimals), ``"int"``, or anything else as a float with 4 decimals."""
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.{percent_digits}f}"
    if kind == "int":
        return str(int(value))
    return f"{value:.4f}"
