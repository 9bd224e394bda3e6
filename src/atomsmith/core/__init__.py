"""The bottom layer: plain helpers that every other package may use and that import nothing else of atomsmith.

* :mod:`atomsmith.core.files`: atomic writes, gzip by file name, sha256 of files, checksummed downloads.
* :mod:`atomsmith.core.pairs`: the periodic pair search on plain arrays (lattice, positions, cutoff) behind
  :meth:`atomsmith.structures.crystal.Crystal.close_pairs` and :func:`atomsmith.graphs.neighbors.neighbor_list`.
* :mod:`atomsmith.core.lazy`: ``__getattr__`` for packages whose public names are imported on first use.
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
from atomsmith.core.lazy import lazy_exports
from atomsmith.core.pairs import edge_vectors, periodic_pairs

__all__ = [
    "atomic_write",
    "download_verified",
    "edge_vectors",
    "gzip_bytes",
    "is_gzipped",
    "lazy_exports",
    "open_text",
    "periodic_pairs",
    "read_text",
    "sha256_file",
]
