"""Reading CDVAE-style CSV files (one CIF per row plus property columns) into :class:`PackedCrystals`.

CIF parsing goes through :func:`atomsmith.structures.io.parse_cif` (pymatgen, about 2 ms per small cell), so
large files are parsed in a pool of worker processes. Every problem names the file, the row (0-based data row and
1-based line where it starts) and the row's id.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import gzip
import math
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from atomsmith.core.files import open_text
from atomsmith.datasets.errors import MalformedRowError
from atomsmith.datasets.packed import PackedCrystals
from atomsmith.structures import errors
from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE, Crystal

#: Below this many rows parsing stays in this process (starting workers costs about 2 s each).
POOL_THRESHOLD = 600
_MAX_FIELD = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    """Which CSV columns hold what.

    Attributes:
      cif_column: column with the CIF text of the structure.
      id_column: column kept as the string property ``material_id`` (``None``: none).
      property_columns: CSV column -> property name; values are parsed as float (empty -> NaN).
      integer_properties: property names parsed as int instead.
      min_distance: atoms closer than this (Å, over periodic images) make the row invalid; ``None`` skips it.
    """

    cif_column: str = "cif"
    id_column: str | None = "material_id"
    property_columns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    integer_properties: frozenset[str] = frozenset()
    min_distance: float | None = DEFAULT_MIN_DISTANCE

    def __post_init__(self) -> None:
        object.__setattr__(self, "property_columns", dict(self.property_columns))  # a dict pickles to workers
        object.__setattr__(self, "integer_properties", frozenset(self.integer_properties))


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """A CSV row that was skipped: 0-based data row, 1-based line where it starts, its id and what is wrong."""

    row: int
    line: int
    material_id: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class _Row:
    index: int  # 0-based data row
    line: int  # 1-based line where the row starts
    cif: str
    material_id: str | None
    values: tuple[tuple[str, str], ...]  # (property name, raw text)


def iter_rows(path: str | os.PathLike, layout: CsvLayout, limit: int | None = None,
              problems: list[RowProblem] | None = None) -> Iterator[_Row]:
    """Yield the first ``limit`` rows (all if ``None``) without parsing their CIFs.

    With ``problems`` given, a malformed row is appended to it (and skipped) instead of raising.

    Raises:
      MalformedFileError: the header lacks a required column, or the file is not UTF-8 CSV text (binary data, a
        damaged ``.gz``, a field over 16 MiB).
      MalformedRowError: a row has too few or too many fields or an empty CIF.
    """
    try:
        yield from _iter_rows(Path(path), layout, limit, problems)
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from exc


#: What reading a file that is not UTF-8 CSV text raises (binary data, a damaged ``.gz``, a field over 16 MiB).
_UNREADABLE = (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error)


def _unreadable(path: str | os.PathLike, exc: BaseException) -> errors.MalformedFileError:
    return errors.MalformedFileError(f"{path}: not a readable UTF-8 CSV file ({type(exc).__name__}: {exc})")


def read_header(path: str | os.PathLike) -> list[str]:
    """The column names of a CSV (optionally gzip); ``[]`` for an empty file.

    Raises:
      MalformedFileError: the file cannot be read as UTF-8 CSV text (or at all).
    """
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    try:
        with open_text(path, newline="") as handle:
            return next(csv.reader(handle), [])
    except (*_UNREADABLE, OSError) as exc:
        raise _unreadable(path, exc) from exc


def _iter_rows(path: Path, layout: CsvLayout, limit: int | None, problems: list[RowProblem] | None
               ) -> Iterator[_Row]:
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    with open_text(path, newline="") as handle:
        reader = csv.DictReader(handle, restkey="__extra__")
        header = reader.fieldnames or []
        needed = [layout.cif_column, *layout.property_columns, *([layout.id_column] if layout.id_column else [])]
        missing = [c for c in needed if c not in header]
        if missing:
            raise errors.MalformedFileError(
                f"{path}: CSV header lacks column(s) {missing}; it has {header}")
        start = reader.line_num + 1
        for index, record in enumerate(reader):
            if limit is not None and index >= limit:
                return
            ident = record.get(layout.id_column) if layout.id_column else None
            where = _where(str(path), index, start, ident)
            try:
                if "__extra__" in record:
                    raise MalformedRowError(
                        f"{where}: {len(header) + len(record['__extra__'])} fields, but the header has {len(header)}")
                short = [k for k, v in record.items() if v is None]
                if short:
                    raise MalformedRowError(
                        f"{where}: only {len(header) - len(short)} of {len(header)} fields (missing {short}); "
                        "truncated row or unbalanced quotes?")
                cif = record[layout.cif_column]
                if not cif.strip():
                    raise MalformedRowError(f"{where}: the {layout.cif_column!r} column is empty")
            except MalformedRowError as exc:
                if problems is None:
                    raise
                problems.append(RowProblem(index, start, ident, str(exc)))
            else:
                values = tuple((name, record[column]) for column, name in layout.property_columns.items())
                yield _Row(index, start, cif, ident, values)
            start = reader.line_num + 1


def _parse_value(raw: str, name: str, integer: bool, where: str) -> float | int:
    text = raw.strip()
    try:
        if integer:
            return int(text)
        return float(text) if text else math.nan
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise MalformedRowError(f"{where}: property {name!r} is {raw!r}, not {kind}") from None


def _where(source: str, index: int, line: int, material_id: str | None) -> str:
    return f"{source}, row {index} (line {line}" + (f", material_id {material_id})" if material_id else ")")


def _parse_rows(source: str, layout: CsvLayout, rows: list[_Row]) -> PackedCrystals:
    """Parse a chunk of rows (runs in worker processes: keep it a module-level function)."""
    return PackedCrystals.from_crystals([_parse_row(source, layout, row) for row in rows])


def _parse_row(source: str, layout: CsvLayout, row: _Row) -> Crystal:
    """One row as a Crystal with its properties (raises naming the row)."""
    from atomsmith.structures.io import parse_cif

    where = _where(source, row.index, row.line, row.material_id)
    props: dict[str, object] = {
        name: _parse_value(raw, name, name in layout.integer_properties, where) for name, raw in row.values}
    if layout.id_column:
        props["material_id"] = str(row.material_id)
    try:
        parsed = parse_cif(row.cif, where)
    except errors.StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else from pymatgen still names the row
        raise MalformedRowError(f"{where}: {type(exc).__name__}: {exc}") from exc
    if len(parsed) != 1:
        raise MalformedRowError(f"{where}: the CIF holds {len(parsed)} structures, expected 1")
    crystal = parsed[0]
    if layout.min_distance is not None:
        try:
            crystal.check_distances(layout.min_distance)
        except errors.OverlappingAtomsError as exc:
            raise errors.OverlappingAtomsError(f"{where}: {exc}") from exc
    return crystal.with_properties(**props)


def default_workers() -> int:
    """Worker processes for parsing: ``$ATOMSMITH_WORKERS`` or the number of CPUs (at most 8)."""
    if os.environ.get("ATOMSMITH_WORKERS"):
        return max(1, int(os.environ["ATOMSMITH_WORKERS"]))
    return max(1, min(os.cpu_count() or 1, 8))


def _parse_parallel(source: str, layout: CsvLayout, rows: list[_Row], workers: int) -> PackedCrystals:
    """Parse contiguous chunks of ``rows`` in ``workers`` fresh Python processes.

    Workers are separate interpreters (``python -m atomsmith.datasets._parse_worker``), not multiprocessing
    children: nothing of the caller's ``__main__`` is re-imported (no ``if __name__ == "__main__"`` guard needed)
    and nothing is forked from a process that may hold jax/XLA threads. The first error by row order is raised.
    """
    import atomsmith

    size = math.ceil(len(rows) / workers)
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    env = dict(os.environ)
    package_root = str(Path(atomsmith.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory(prefix="atomsmith-parse-") as tmp:
        outputs = [Path(tmp) / f"chunk{k}.pkl" for k in range(len(chunks))]

        def run(k: int) -> tuple[int, bytes]:
            proc = subprocess.Popen([sys.executable, "-m", "atomsmith.datasets._parse_worker", str(outputs[k])],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=env)
            _, err = proc.communicate(pickle.dumps((source, layout, chunks[k])))
            return proc.returncode, err

        with concurrent.futures.ThreadPoolExecutor(len(chunks)) as threads:
            statuses = list(threads.map(run, range(len(chunks))))
        results = []
        for k, (code, err) in enumerate(statuses):
            if not outputs[k].exists():
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"parser worker {k} exited with status {code}: {' | '.join(tail)}")
            results.append(pickle.loads(outputs[k].read_bytes()))
    for status, value in results:
        if status == "error":
            raise value
    return PackedCrystals.concatenate([value for _, value in results])


def read_csv(path: str | os.PathLike, layout: CsvLayout | None = None, *, limit: int | None = None,
             workers: int | None = None, source: str | None = None) -> PackedCrystals:
    """Parse a CDVAE-style CSV (optionally gzip) into packed crystals, in row order.

    Args:
      path: the ``.csv`` or ``.csv.gz`` file.
      layout: column layout; default: ``cif`` and ``material_id`` columns, no properties.
      limit: parse only the first ``limit`` rows (the rest of the file is not read).
      workers: processes for CIF parsing (default :func:`default_workers`); 1 parses in this process. Files
        with fewer than :data:`POOL_THRESHOLD` rows are always parsed in this process.
      source: name used in error messages (default: the path).
    """
    layout = layout or CsvLayout()
    path = Path(path)
    source = source or str(path)
    rows = list(iter_rows(path, layout, limit))
    if not rows:
        raise errors.MalformedFileError(f"{source}: no data rows")
    workers = default_workers() if workers is None else max(1, workers)
    if workers > 1 and len(rows) >= POOL_THRESHOLD:
        try:
            return _parse_parallel(source, layout, rows, workers)
        except (OSError, RuntimeError, pickle.PickleError, EOFError) as exc:
            warnings.warn(f"parallel parsing of {source} failed ({exc}); parsing in this process", stacklevel=2)
    return _parse_rows(source, layout, rows)


@dataclasses.dataclass(frozen=True)
class LenientRead:
    """What :func:`read_csv_lenient` kept (with the 1-based line where each row starts) and what it skipped."""

    crystals: list[Crystal]
    lines: list[int]
    problems: list[RowProblem]


def read_csv_lenient(path: str | os.PathLike, layout: CsvLayout | None = None, *, limit: int | None = None,
                     source: str | None = None) -> LenientRead:
    """Like :func:`read_csv`, but rows that fail are skipped and reported as :class:`RowProblem` (with their line
    numbers) instead of stopping at the first one. Parses in this process (meant for users' own files).

    Raises:
      MalformedFileError: the header lacks a required column.
    """
    layout = layout or CsvLayout()
    path = Path(path)
    source = source or str(path)
    kept = LenientRead([], [], [])
    for row in iter_rows(path, layout, limit, kept.problems):
        try:
            kept.crystals.append(_parse_row(source, layout, row))
            kept.lines.append(row.line)
        except (errors.StructureError, MalformedRowError) as exc:
            kept.problems.append(RowProblem(row.index, row.line, row.material_id, str(exc)))
    kept.problems.sort(key=lambda p: p.row)
    return kept
