"""Files on disk: atomic writes, gzip chosen by the file name, sha256 of files and checksummed downloads.

atomsmith's writers (structure files, model and MD checkpoints, dataset and fingerprint caches, JSON reports,
downloads) go through :func:`atomic_write`: the data goes to a temporary file in the target's directory, which is
fsynced and renamed over the target only when the body finished, so an interrupted run never leaves a half-written
file and an existing file being replaced keeps its old content until then.

A name ending in ``.gz`` (any case) means gzip: :func:`read_text` and :func:`open_text` decompress it,
:func:`gzip_bytes` compresses deterministically (no time stamp in the header, so equal data give equal files).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

#: bytes read at a time when hashing or downloading.
CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", overwrite: bool = False, *,
                 suffix: str = ".tmp") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``.

    If the body raises (or the process dies), ``path`` is untouched and the temporary file is removed.

    Args:
      path: the file to write; its parent directories are created.
      mode: ``"w"`` (text) or ``"wb"`` (bytes).
      overwrite: replace an existing ``path``; without it an existing file raises :class:`FileExistsError`.
      suffix: ending of the temporary file's name (``.<name>.<random><suffix>`` in the same directory).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs should follow the umask like open() does
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------- gzip
def is_gzipped(path: str | os.PathLike) -> bool:
    """True for names ending in ``.gz`` (read and written through gzip)."""
    return Path(path).name.lower().endswith(".gz")


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzip-compressed deterministically (modification time 0 in the header)."""
    return gzip.compress(data, mtime=0)


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path``, decompressed when its name ends in ``.gz`` (undecodable bytes replaced).

    A ``.gz`` file that is not valid gzip raises gzip's own errors (:class:`OSError`, :class:`EOFError`).
    """
    path = Path(path)
    if not is_gzipped(path):
        return path.read_text(errors="replace")
    with gzip.open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def open_text(path: str | os.PathLike, newline: str | None = None) -> io.TextIOBase:
    """``path`` opened for reading as UTF-8 text, through gzip when its name ends in ``.gz``."""
    if is_gzipped(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline=newline)
    return open(path, encoding="utf-8", newline=newline)


# ---------------------------------------------------------------------------------------------- checksums
def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(url: str, dest: str | os.PathLike, sha256: str, timeout: float,
                      mismatch: Callable[[str, int], BaseException]) -> Path:
    """Download ``url`` to ``dest`` (atomically, through a ``.part`` file beside it) and check its sha256.

    Args:
      url: what to fetch (any scheme :func:`urllib.request.urlopen` takes).
      dest: where the file goes; replaced if it exists.
      sha256: the expected hex digest.
      timeout: seconds for the connection and each read.
      mismatch: builds the exception raised when the digest differs, from the actual hex digest and the number
        of bytes downloaded; nothing is left at ``dest`` (an old file there stays as it was).
    Raises:
      urllib.error.URLError, OSError, TimeoutError: the download failed (nothing is left behind).
    """
    import urllib.request

    dest = Path(dest)
    digest, size = hashlib.sha256(), 0
    with atomic_write(dest, "wb", overwrite=True, suffix=".part") as out, \
            urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        if digest.hexdigest() != sha256:
            raise mismatch(digest.hexdigest(), size)
    return dest
