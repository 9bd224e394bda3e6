"""Worker process for parallel CSV parsing: ``python -m atomsmith.datasets._parse_worker OUTPUT``.

Reads a pickled ``(source, layout, rows)`` from stdin, parses the rows and writes a pickled
``("ok", PackedCrystals)`` or ``("error", exception)`` to OUTPUT (a file, so that anything a library prints
on stdout cannot corrupt the result).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main() -> None:
    from atomsmith.datasets.csv_reader import _parse_rows
    from atomsmith.datasets.errors import MalformedRowError

    source, layout, rows = pickle.load(sys.stdin.buffer)
    try:
        result = ("ok", _parse_rows(source, layout, rows))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent
        result = ("error", exc)
    try:
        payload = pickle.dumps(result)
    except Exception:  # noqa: BLE001 - an exception that does not pickle still reports its message
        payload = pickle.dumps(("error", MalformedRowError(f"{type(result[1]).__name__}: {result[1]}")))
    Path(sys.argv[1]).write_bytes(payload)


if __name__ == "__main__":
    main()
