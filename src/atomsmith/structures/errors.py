"""Typed errors for structures and files.

Every error derives from :class:`StructureError` (itself a ``ValueError``) so callers can catch one type, and
each message names the problem, where it is (atom indices, file name) and what to do about it.
"""

from __future__ import annotations


class StructureError(ValueError):
    """Base class of every structure validation or parsing error."""


class ShapeError(StructureError):
    """Arrays have inconsistent shapes (e.g. 4 coordinates for 3 atoms)."""


class NonFiniteError(StructureError):
    """A lattice entry or coordinate is NaN or infinite."""


class SingularCellError(StructureError):
    """The lattice vectors are (nearly) linearly dependent: the cell volume is ~0."""


class LeftHandedCellError(StructureError):
    """The lattice rows a, b, c form a left-handed set (det < 0)."""


class UnknownElementError(StructureError):
    """An atomic number or symbol that is not a chemical element (1..118)."""


class OverlappingAtomsError(StructureError):
    """Two atoms (possibly periodic images) are closer than the allowed minimum distance."""


class PartialOccupancyError(StructureError):
    """The structure has sites with partial or mixed occupancy, which atomsmith does not model."""


class MalformedFileError(StructureError):
    """A structure file could not be parsed (truncated, wrong format, missing fields)."""
