"""The end-of-command summary table shared by ``sample``, ``infill`` (both kinds) and environment sampling."""

from __future__ import annotations

from collections.abc import Iterable


def print_summary(title: str, rows: Iterable[tuple[str, str]], console=None) -> None:
    """Print a two-column (quantity, value) rich table to ``console`` (default: stderr, so stdout stays clean)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    (console or Console(stderr=True)).print(table)
