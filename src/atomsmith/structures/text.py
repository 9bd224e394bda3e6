"""Structure files as text: decompressed when the name ends in ``.gz``, gzip damage reported as a structure error."""

from __future__ import annotations

import os
from pathlib import Path

from atomsmith.core import files
from atomsmith.core.files import is_gzipped
from atomsmith.structures import errors

__all__ = ["read_text"]


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path``, decompressed when its name ends in ``.gz`` (undecodable bytes replaced).

    Raises :class:`MalformedFileError` for a ``.gz`` file that is not valid gzip.
    """
    try:
        return files.read_text(path)
    except (OSError, EOFError) as exc:
        if not is_gzipped(path):
            raise
        raise errors.MalformedFileError(f"{Path(path)}: not a readable gzip file: {exc}") from exc
