"""Where dataset files and caches live, and sha256 verification.

* Shipped files: ``atomsmith/datasets/files/<name>/<file>`` (package data).
* Data directories, searched in order: the ``data_dir=`` argument if given (only it); otherwise the
  ``ATOMSMITH_DATA_DIR`` environment variable if set, then ``../shared/data`` seen from the working directory
  and from the root of a source checkout. In a data directory a file may sit at ``<dir>/<name>/<file>`` or
  ``<dir>/<file>``.
* Cache: ``ATOMSMITH_CACHE_DIR`` or ``~/.cache/atomsmith`` (``$XDG_CACHE_HOME/atomsmith`` if that is set).
"""

from __future__ import annotations

import os
from pathlib import Path

from atomsmith.core.files import sha256_file
from atomsmith.datasets.errors import ChecksumMismatchError

__all__ = ["PACKAGE_FILES", "cache_dir", "data_dirs", "download_dir", "find_in_data_dirs", "sha256_file",
           "verify_sha256"]

PACKAGE_FILES = Path(__file__).resolve().parent / "files"


def verify_sha256(path: Path, expected: str, what: str = "") -> str:
    """Return the file's sha256; raise :class:`ChecksumMismatchError` if it is not ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{path}: sha256 is {actual}, expected {expected}{' for ' + what if what else ''}. The file is corrupt, "
            "truncated or a different version; delete it and download or copy it again.")
    return actual


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Root of atomsmith's cache: ``override``, ``$ATOMSMITH_CACHE_DIR``, or ``~/.cache/atomsmith``."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("ATOMSMITH_CACHE_DIR"):
        return Path(os.environ["ATOMSMITH_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "atomsmith"


def _checkout_root() -> Path | None:
    """The repository root when atomsmith runs from a source checkout (``<root>/src/atomsmith``)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").exists() and (root / "src" / "atomsmith").is_dir() else None


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Data directories to search, in order (see the module docstring). They need not exist."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    candidates: list[Path] = []
    if os.environ.get("ATOMSMITH_DATA_DIR"):
        candidates.append(Path(os.environ["ATOMSMITH_DATA_DIR"]).expanduser())
    candidates.append(Path.cwd() / ".." / "shared" / "data")
    root = _checkout_root()
    if root is not None:
        candidates.append(root / ".." / "shared" / "data")
    out: list[Path] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def find_in_data_dirs(dataset: str, filename: str, data_dir: str | os.PathLike | None = None
                      ) -> tuple[Path | None, list[Path]]:
    """First existing ``<dir>/<dataset>/<filename>`` or ``<dir>/<filename>``; also every path tried."""
    tried: list[Path] = []
    for directory in data_dirs(data_dir):
        for candidate in (directory / dataset / filename, directory / filename):
            tried.append(candidate)
            if candidate.is_file():
                return candidate, tried
    return None, tried


def download_dir(data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Path:
    """Where downloads go: ``data_dir`` if given, else ``$ATOMSMITH_DATA_DIR``, else ``<cache>/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("ATOMSMITH_DATA_DIR"):
        return Path(os.environ["ATOMSMITH_DATA_DIR"]).expanduser()
    return cache_dir(cache) / "data"
