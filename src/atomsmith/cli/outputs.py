"""Old name of :mod:`atomsmith.cli.output` (kept until every importer uses the new one)."""

from atomsmith.cli.output import check_output

__all__ = ["check_output"]
