"""The one checkpoint format: a single file, written atomically, checksummed, with readable metadata.

Layout of a ``.ckpt`` file::

    b"ATOMSMITH-CKPT\\n"            magic (15 bytes)
    <8-byte little-endian length>  of the JSON header
    <JSON header>                  {"format_version", "kind", "metadata", "payload_sha256", "payload_bytes"}
    <payload>                      flax msgpack of the state pytree (nested dicts of arrays)

``metadata`` is free JSON: model kind, config, how it was trained (command, dataset, steps, seed, metrics), so a
shipped checkpoint records its own provenance. Loading verifies the magic, the lengths and the sha256 of the payload and of the header (``header_sha256``, over
the other header fields as canonical JSON; absent from files written before it was added) and raises
:class:`CorruptCheckpointError` naming what is wrong; :func:`load` can also check that the checkpoint is of the
expected kind and that metadata fields match (wrong target, wrong irreps, ...) with :class:`CheckpointMismatchError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.serialization
import numpy as np

from atomsmith.core.files import atomic_write

MAGIC = b"ATOMSMITH-CKPT\n"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """Base class for checkpoint problems."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, altered or not an atomsmith checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is valid but not what the caller expects (kind, target, irreps, ...)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    return value


def save(path: str | os.PathLike, state: Any, kind: str, metadata: Mapping[str, Any] | None = None,
         overwrite: bool = True) -> Path:
    """Write ``state`` (any pytree of arrays) and ``metadata`` to ``path`` atomically."""
    payload = flax.serialization.msgpack_serialize(flax.serialization.to_state_dict(_to_numpy(state)))
    fields = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "metadata": _jsonable(dict(metadata or {})),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
    }
    header = json.dumps({**fields, "header_sha256": _header_digest(fields)}, sort_keys=True).encode()
    with atomic_write(path, mode="wb", overwrite=overwrite) as handle:
        handle.write(MAGIC)
        handle.write(struct.pack("<Q", len(header)))
        handle.write(header)
        handle.write(payload)
    return Path(path)


def _header_digest(fields: Mapping[str, Any]) -> str:
    """sha256 of the header fields (all but ``header_sha256`` itself) as canonical JSON."""
    return hashlib.sha256(json.dumps(dict(fields), sort_keys=True).encode()).hexdigest()


#: Header fields and their JSON types; ``header_sha256`` is absent from checkpoints written before it existed.
_HEADER_FIELDS = {"format_version": int, "kind": str, "metadata": dict, "payload_sha256": str, "payload_bytes": int}


def _open_checkpoint(path: Path):
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a directory, not a checkpoint file")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return open(path, "rb")


def read_header(path: str | os.PathLike) -> dict:
    """Header (kind, metadata, checksums) without reading or verifying the payload; the header's own checksum
    is verified."""
    with _open_checkpoint(Path(path)) as handle:
        return _read_header(handle, str(path))


def _read_header(handle, source: str) -> dict:
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise CorruptCheckpointError(f"{source} is not an atomsmith checkpoint (bad magic bytes)")
    raw = handle.read(8)
    if len(raw) != 8:
        raise CorruptCheckpointError(f"{source} is truncated (no header length)")
    (n,) = struct.unpack("<Q", raw)
    if n > 64 * 1024 * 1024:
        raise CorruptCheckpointError(f"{source} has an implausible header length {n}")
    blob = handle.read(n)
    try:
        header = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"{source} has a damaged header: {exc}") from exc
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f"{source} has a damaged header (not a JSON object)")
    if header.get("format_version") != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{source} has checkpoint format {header.get('format_version')!r}, this atomsmith reads {FORMAT_VERSION}")
    unknown = sorted(set(header) - set(_HEADER_FIELDS) - {"header_sha256"})
    wrong = [k for k, kind in _HEADER_FIELDS.items() if not isinstance(header.get(k), kind)]
    if unknown or wrong:
        raise CorruptCheckpointError(f"{source} has a damaged header (fields {wrong or unknown} missing, of the "
                                     "wrong type or unknown)")
    if "header_sha256" in header:
        fields = {k: v for k, v in header.items() if k != "header_sha256"}
        if _header_digest(fields) != header["header_sha256"]:
            raise CorruptCheckpointError(f"{source} is corrupted: header checksum does not match its header")
    return header


def load(path: str | os.PathLike, kind: str | None = None, expect: Mapping[str, Any] | None = None,
         target: Any = None) -> tuple[Any, dict]:
    """Read and verify a checkpoint; returns ``(state, metadata)``.

    Args:
      kind: if given, the checkpoint's kind must equal it.
      expect: metadata entries that must match (dotted keys reach into nested dicts, e.g. ``"config.target"``).
      target: optional pytree with the expected structure; the state is restored into it (shapes are checked).
    """
    path = Path(path)
    with _open_checkpoint(path) as handle:
        header = _read_header(handle, str(path))
        payload = handle.read()
    if len(payload) != header["payload_bytes"]:
        raise CorruptCheckpointError(
            f"{path} is truncated or padded: payload has {len(payload)} bytes, header says {header['payload_bytes']}")
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise CorruptCheckpointError(f"{path} is corrupted: payload checksum does not match its header")
    if kind is not None and header["kind"] != kind:
        raise CheckpointMismatchError(f"{path} holds a {header['kind']!r} checkpoint, expected {kind!r}")
    metadata = header["metadata"]
    for key, want in (expect or {}).items():
        have: Any = metadata
        for part in key.split("."):
            have = have.get(part) if isinstance(have, Mapping) else None
        if _jsonable(want) != have:
            raise CheckpointMismatchError(f"{path}: metadata {key} is {have!r}, expected {want!r}")
    try:
        state = flax.serialization.msgpack_restore(payload)
    except Exception as exc:  # noqa: BLE001 - checksummed but undecodable: written by something else
        raise CorruptCheckpointError(f"{path}: the payload cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if target is not None:
        _check_shapes(flax.serialization.to_state_dict(target), state, str(path))
        state = flax.serialization.from_state_dict(target, state)
    return state, metadata


def _check_shapes(want: Any, have: Any, source: str, prefix: str = "") -> None:
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping) or set(want) != set(have):
            missing = sorted(set(want) - set(have or {}))[:5]
            extra = sorted(set(have or {}) - set(want))[:5]
            raise CheckpointMismatchError(
                f"{source}: parameter tree differs at {prefix or '<root>'} (missing {missing}, unexpected {extra})")
        for key in want:
            _check_shapes(want[key], have[key], source, f"{prefix}/{key}")
    elif hasattr(want, "shape") and np.shape(have) != np.shape(want):
        raise CheckpointMismatchError(
            f"{source}: parameter {prefix} has shape {np.shape(have)}, the model expects {np.shape(want)}")


def _to_numpy(tree: Any) -> Any:
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x) if hasattr(x, "shape") else x, tree)
