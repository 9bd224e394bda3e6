"""The bottom layer: plain helpers that every other package may use and that import nothing else of atomsmith.

* :mod:`atomsmith.core.files`: atomic writes, gzip by file name, sha256 of files, checksummed downloads.
"""

from atomsmith.core.files import (
    atomic_write,
    download_verified,
    gzip_bytes,
    is_gzipped,
    open_text,
    read_text,
    sha256_file,
)

__all__ = [
    "atomic_write",
    "download_verified",
    "gzip_bytes",
    "is_gzipped",
    "open_text",
    "read_text",
    "sha256_file",
]
