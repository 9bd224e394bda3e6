"""Output paths are checked before any work starts (sampling, training, prediction can take hours).

:func:`check_output` refuses, as a usage error (exit code 2, one line), every output that the final atomic write
(:func:`atomsmith.structures.io.atomic_write`) would fail on: an existing file without ``--force``, a file name
that is a directory (or the reverse), a parent that is a file, and a directory where no file can be created
(no permission, a read-only or virtual file system such as ``/sys`` or ``/proc``). It creates and removes a probe
file (or, when the parent does not exist yet, a probe directory in the nearest existing ancestor) named like the
writer's temporary files, so nothing is left behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. EACCES on a component: treated as absent; the probe below reports the real problem
        return False


def check_output(out: Path, force: bool, *, directory: bool = False, param_hint: str = "--out") -> None:
    """Raise :class:`typer.BadParameter` naming ``param_hint`` unless ``out`` can be written.

    Args:
      out: the output path (a file, or with ``directory=True`` a directory of files, created when absent).
      force: an existing output may be replaced (``--force``; for a directory: it may be non-empty).
      directory: the output is a directory.
      param_hint: the option named in the message.
    """
    out = Path(out)

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint=param_hint)

    if directory:
        if _exists(out) and not out.is_dir():
            raise bad(f"{out} is a file; this output is a directory (one file per structure)")
        if _exists(out) and not force and any(out.iterdir()):
            raise bad(f"{out} exists and is not empty; pass --force to overwrite it")
        target = out
    else:
        if out.is_dir():
            raise bad(f"{out} is a directory; give a file name")
        if _exists(out) and not force:
            raise bad(f"{out} exists; pass --force to overwrite it")
        target = out.parent
    ancestor = target
    while not _exists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise bad(f"cannot write {out}: {ancestor} is not a directory")
    try:
        if ancestor == target:
            fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=ancestor)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=ancestor))
    except OSError as exc:
        raise bad(f"cannot write {out}: no file can be created in {ancestor} ({exc.strerror or exc})") from None
