"""Loading datasets by name: find the file, verify its sha256, parse it once, cache the arrays.

    >>> from atomsmith import datasets
    >>> crystals = datasets.load("perov_5", "train")          # list[Crystal], properties heat_ref, ...
    >>> packed = datasets.load_packed("perov_5", "train")     # the same as flat arrays

The first full load of a split parses every CIF (pymatgen, in worker processes) and writes
``<cache>/datasets/<name>/<split>-<sha256[:16]>-v<N>.npz``; later loads read that file. ``limit=`` parses only
the first rows when no cache exists (and writes none).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from atomsmith.datasets import cache as _cache
from atomsmith.datasets import paths
from atomsmith.datasets.bto import read_bto_tarball
from atomsmith.datasets.csv_reader import CsvLayout, read_csv
from atomsmith.datasets.download import download, manual_instructions
from atomsmith.datasets.errors import DataNotFoundError, DatasetError
from atomsmith.datasets.packed import PackedCrystals
from atomsmith.datasets.registry import REGISTRY, DatasetSpec, get_spec
from atomsmith.structures.crystal import Crystal

_LOG = logging.getLogger("atomsmith.datasets")
PathLike = str | os.PathLike


def available(local_only: bool = False, *, data_dir: PathLike | None = None) -> list[str]:
    """Names of the registered datasets; with ``local_only`` only those whose every split is on this machine."""
    names = list(REGISTRY)
    if local_only:
        names = [n for n in names if all(p is not None for p in _local_files(get_spec(n), data_dir).values())]
    return names


def _local_file(spec: DatasetSpec, split: str, data_dir: PathLike | None,
                cache_dir: PathLike | None = None) -> tuple[Path | None, list[Path]]:
    """The split's file if it is on this machine (never downloads), and every place looked at."""
    split_file = spec.split_file(split)
    if spec.location == "package":
        path = paths.PACKAGE_FILES / spec.name / split_file.filename
        return (path if path.is_file() else None), [path]
    found, tried = paths.find_in_data_dirs(spec.name, split_file.filename, data_dir)
    if found is None and spec.location == "download":
        target = paths.download_dir(data_dir, cache_dir) / spec.name / split_file.filename
        tried.append(target)
        if target.is_file():
            found = target
    return found, tried


def _local_files(spec: DatasetSpec, data_dir: PathLike | None,
                 cache_dir: PathLike | None = None) -> dict[str, Path | None]:
    return {split: _local_file(spec, split, data_dir, cache_dir)[0] for split in spec.splits}


def locate(name: str, split: str, *, data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
           download_missing: bool = True) -> Path:
    """Path of the split's source file, downloading it first for download datasets (mp_20) if needed.

    Raises:
      DataNotFoundError: a data-directory dataset (bto_400K) is not in any data directory; the message lists
        where atomsmith looked and how to provide it.
      DownloadError: a download dataset is missing and cannot be downloaded (offline).
    """
    spec = get_spec(name)
    split_file = spec.split_file(split)
    found, tried = _local_file(spec, split, data_dir, cache_dir)
    if found is not None:
        return found
    if spec.location == "package":
        raise DataNotFoundError(f"{name}: shipped file {tried[0]} is missing; the atomsmith installation is "
                                "incomplete (reinstall it)")
    if spec.location == "download":
        dest = paths.download_dir(data_dir, cache_dir) / spec.name / split_file.filename
        if not download_missing:
            raise DataNotFoundError(f"{name} {split} is not downloaded.\n"
                                    + manual_instructions(name, split_file, dest, tried))
        return download(name, split_file, dest, tried)
    where = "\n  ".join(str(p) for p in tried)
    raise DataNotFoundError(
        f"{name} needs {split_file.filename} (sha256 {split_file.sha256}), which atomsmith does not ship "
        f"(licence: {spec.license}). Looked in:\n  {where}\nGet it from {spec.source} and put it in <DIR>/{name}/, "
        "then pass data_dir=<DIR> or set ATOMSMITH_DATA_DIR=<DIR>.")


def _parse(spec: DatasetSpec, path: Path, limit: int | None, workers: int | None) -> PackedCrystals:
    source = f"{spec.name}/{path.name}"
    if spec.format == "bto_tarball":
        return read_bto_tarball(path, limit=limit)
    layout = CsvLayout(property_columns=spec.property_columns, integer_properties={"spacegroup_number"})
    return read_csv(path, layout, limit=limit, workers=workers, source=source)


def _cache_meta(spec: DatasetSpec, split: str, sha256: str) -> dict[str, Any]:
    return {"dataset": spec.name, "split": split, "source_sha256": sha256}


def load_packed(name: str, split: str, *, limit: int | None = None, data_dir: PathLike | None = None,
                cache_dir: PathLike | None = None, workers: int | None = None) -> PackedCrystals:
    """Like :func:`load` but returns :class:`PackedCrystals` (flat arrays, no per-structure objects)."""
    spec = get_spec(name)
    split_file = spec.split_file(split)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    path = locate(name, split, data_dir=data_dir, cache_dir=cache_dir)
    sha = paths.verify_sha256(path, split_file.sha256, f"{name} {split}")
    cache_file = _cache.cache_path(paths.cache_dir(cache_dir), name, split, sha)
    meta = _cache_meta(spec, split, sha)
    try:
        packed = _cache.load(cache_file, meta)
    except _cache.CacheCorruptError as exc:
        if limit is None:
            warnings.warn(f"dataset cache is corrupt and will be rebuilt: {exc}", stacklevel=2)
        packed = None
    if packed is not None:
        return packed if limit is None else packed.head(limit)
    if limit is not None:  # parse only the first rows; no cache for partial parses
        if limit == 0:
            return PackedCrystals(np.zeros(0, np.int64), np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0, np.int64))
        return _parse(spec, path, limit, workers)
    start = time.perf_counter()
    _LOG.info("parsing %s %s (%d structures) once; arrays will be cached in %s", name, split,
              split_file.n_structures, cache_file)
    packed = _parse(spec, path, None, workers)
    if len(packed) != split_file.n_structures:
        raise DatasetError(f"{path}: parsed {len(packed)} structures, the registry expects {split_file.n_structures}")
    try:
        _cache.save(cache_file, packed, meta)
    except OSError as exc:
        warnings.warn(f"could not write the dataset cache {cache_file} ({exc}); the next load parses again",
                      stacklevel=2)
    _LOG.info("parsed %s %s in %.1f s", name, split, time.perf_counter() - start)
    return packed


def load(name: str, split: str, *, limit: int | None = None, data_dir: PathLike | None = None,
         cache_dir: PathLike | None = None, workers: int | None = None) -> list[Crystal]:
    """Load one split of a registered dataset as a list of :class:`Crystal`.

    Args:
      name: dataset name (see :func:`available`): ``perov_5``, ``carbon_24``, ``carbon_24_unique``,
        ``bto_400K``, ``mp_20``.
      split: ``train``, ``val`` or ``test`` (published splits); ``all`` for ``bto_400K``, which has no published
        split (use :func:`atomsmith.datasets.random_split`).
      limit: only the first ``limit`` structures of the split. Without a cache only those rows are parsed.
      data_dir: directory holding data that is not shipped (``<data_dir>/bto_400K/...``, ``<data_dir>/mp_20/...``);
        default ``$ATOMSMITH_DATA_DIR``, then ``../shared/data``.
      cache_dir: cache root; default ``$ATOMSMITH_CACHE_DIR`` or ``~/.cache/atomsmith``.
      workers: processes used for a first parse (default: CPUs, at most 8).

    Returns:
      Crystals in file order. ``properties`` hold the dataset's property columns (e.g. perov_5 ``heat_ref`` in
      eV) and ``material_id`` (string); bto_400K adds tensors (see :func:`info`).

    Raises:
      UnknownDatasetError, SplitUnavailableError: bad name or split (the message lists the valid ones).
      DataNotFoundError, DownloadError: files not on this machine (the message says where to put them).
      ChecksumMismatchError: a file's sha256 is not the published one.
    """
    return load_packed(name, split, limit=limit, data_dir=data_dir, cache_dir=cache_dir,
                       workers=workers).to_crystals()


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A dataset's description plus what is on this machine.

    Attributes:
      spec: the static :class:`DatasetSpec` (splits, counts, properties, licence, source).
      files: split -> local source file, or ``None`` if not on this machine.
      cached: split -> cache file, or ``None`` if that split has not been parsed yet.
    """

    spec: DatasetSpec
    files: Mapping[str, Path | None]
    cached: Mapping[str, Path | None]

    @property
    def is_local(self) -> bool:
        """True if every split's file is on this machine."""
        return all(p is not None for p in self.files.values())


def info(name: str, *, data_dir: PathLike | None = None, cache_dir: PathLike | None = None) -> DatasetInfo:
    """Description of dataset ``name`` and which of its splits are present and cached here."""
    spec = get_spec(name)
    files = _local_files(spec, data_dir, cache_dir)
    cached: dict[str, Path | None] = {}
    for split, path in files.items():
        cached[split] = None
        if path is not None:
            candidate = _cache.cache_path(paths.cache_dir(cache_dir), name, split, paths.sha256_file(path))
            cached[split] = candidate if candidate.is_file() else None
    return DatasetInfo(spec, files, cached)


def statistics(name: str, split: str, *, data_dir: PathLike | None = None,
               cache_dir: PathLike | None = None) -> dict[str, Any] | None:
    """Summary statistics of a split from its cache, or ``None`` if it has not been parsed yet (nothing is parsed).

    Returns a dict with ``n_structures``, ``atoms_per_cell`` (min, mean, max), ``elements`` (symbol -> number of
    structures containing it, most common first), ``volume_per_atom`` (Å^3: mean, std), ``lattice_lengths``
    (Å: min, max) and, per scalar numeric property, ``(mean, std, min, max)``.
    """
    spec = get_spec(name)
    path, _ = _local_file(spec, split, data_dir, cache_dir)
    if path is None:
        return None
    sha = paths.sha256_file(path)
    try:
        packed = _cache.load(_cache.cache_path(paths.cache_dir(cache_dir), name, split, sha),
                             _cache_meta(spec, split, sha))
    except _cache.CacheCorruptError:
        return None
    if packed is None:
        return None
    return summarize(packed)


def summarize(packed: PackedCrystals) -> dict[str, Any]:
    """Statistics of packed crystals (see :func:`statistics`)."""
    from ase.data import chemical_symbols

    n = packed.n_atoms
    structure_of_atom = np.repeat(np.arange(len(n)), n)
    present = np.unique(np.stack([structure_of_atom, packed.numbers], 1), axis=0)[:, 1]
    zs, counts = np.unique(present, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    volumes = np.abs(np.linalg.det(packed.lattices)) / n
    lengths = np.linalg.norm(packed.lattices, axis=2)
    props = {}
    for key, value in packed.properties.items():
        if value.ndim == 1 and value.dtype.kind in "fiu":
            v = value.astype(np.float64)
            props[key] = (float(np.nanmean(v)), float(np.nanstd(v)), float(np.nanmin(v)), float(np.nanmax(v)))
    return {
        "n_structures": int(len(n)),
        "atoms_per_cell": (int(n.min()), float(n.mean()), int(n.max())),
        "elements": {chemical_symbols[int(zs[i])]: int(counts[i]) for i in order},
        "volume_per_atom": (float(volumes.mean()), float(volumes.std())),
        "lattice_lengths": (float(lengths.min()), float(lengths.max())),
        "properties": props,
    }
