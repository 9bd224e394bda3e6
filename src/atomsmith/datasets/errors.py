"""Typed errors of the dataset loaders.

Each message says what went wrong, where atomsmith looked and what to do. Problems inside a data file (a bad CSV
row, an unreadable CIF) are structure errors (:mod:`atomsmith.structures.errors`) that name the file and row.
"""

from __future__ import annotations

from atomsmith.structures.errors import MalformedFileError


class DatasetError(Exception):
    """Base class of every dataset error."""


class UnknownDatasetError(DatasetError, ValueError):
    """No dataset of that name is registered."""


class SplitUnavailableError(DatasetError, ValueError):
    """The dataset has no such split (e.g. carbon_24 ``train``, which could not be obtained)."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """A dataset that lives outside the package (BaTiO3, mp_20) was not found in any data directory."""


class ChecksumMismatchError(DatasetError):
    """A data file's sha256 differs from the published one (corrupt, truncated or a different version)."""


class DownloadError(DatasetError, ConnectionError):
    """A download failed (offline, blocked, HTTP error); the message says how to place the file by hand."""


class MalformedRowError(MalformedFileError):
    """A CSV row that cannot be read: wrong number of fields, missing structure, non-numeric property."""
