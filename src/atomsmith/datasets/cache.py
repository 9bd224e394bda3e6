"""The parsed-array cache: one ``.npz`` per (dataset, split, source file sha256), written atomically.

Layout: ``<cache_dir>/datasets/<name>/<split>-<sha256[:16]>-v<FORMAT>.npz`` holding the arrays of
:class:`PackedCrystals` plus a ``__meta__`` JSON string (source sha256, format version, structure count and a
sha256 digest of every array's bytes). A cache file that cannot be read, or whose metadata or digest does not
match, raises :class:`CacheCorruptError`; the loader then rebuilds it from the source file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from atomsmith.datasets.errors import DatasetError
from atomsmith.datasets.packed import PackedCrystals
from atomsmith.core.files import atomic_write

#: Bump when the cached arrays change meaning (parsing, property names); old files are then ignored.
CACHE_FORMAT = 1
_META = "__meta__"


class CacheCorruptError(DatasetError):
    """A cache file is unreadable or inconsistent (it is rebuilt, never trusted)."""


def cache_path(root: Path, name: str, split: str, source_sha256: str) -> Path:
    """Cache file for ``name``/``split`` parsed from a source file with this sha256."""
    return Path(root) / "datasets" / name / f"{split}-{source_sha256[:16]}-v{CACHE_FORMAT}.npz"


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes of ``arrays`` (in sorted name order)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def save(path: Path, packed: PackedCrystals, meta: dict[str, Any]) -> Path:
    """Write ``packed`` and ``meta`` to ``path`` atomically (replacing any old file)."""
    arrays = packed.to_arrays()
    full_meta = {**meta, "format": CACHE_FORMAT, "n_structures": len(packed), "digest": digest(arrays)}
    arrays[_META] = np.array(json.dumps(full_meta, sort_keys=True))
    with atomic_write(path, mode="wb", overwrite=True) as handle:
        np.savez(handle, **arrays)
    return path


def load(path: Path, expected: dict[str, Any]) -> PackedCrystals | None:
    """Read a cache file; ``None`` if it does not exist.

    Args:
      path: the ``.npz`` file.
      expected: metadata entries that must match (e.g. ``source_sha256``).

    Raises:
      CacheCorruptError: unreadable file, wrong metadata, digest mismatch or inconsistent arrays.
    """
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib, numpy and OS errors all mean "corrupt"
        raise CacheCorruptError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except Exception as exc:  # noqa: BLE001
        raise CacheCorruptError(f"{path}: no readable metadata ({type(exc).__name__}: {exc})") from exc
    wrong = {k: (meta.get(k), v) for k, v in {**expected, "format": CACHE_FORMAT}.items() if meta.get(k) != v}
    if wrong:
        raise CacheCorruptError(f"{path}: metadata does not match (found, expected): {wrong}")
    if digest(arrays) != meta.get("digest"):
        raise CacheCorruptError(f"{path}: array contents do not match the stored digest")
    try:
        packed = PackedCrystals.from_arrays(arrays)
    except (KeyError, ValueError) as exc:
        raise CacheCorruptError(f"{path}: inconsistent arrays ({exc})") from exc
    if len(packed) != meta.get("n_structures"):
        raise CacheCorruptError(f"{path}: holds {len(packed)} structures, metadata says {meta.get('n_structures')}")
    return packed
