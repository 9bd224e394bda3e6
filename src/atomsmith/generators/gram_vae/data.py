"""Where the Gram VAE's training cells come from: the a-Si set shipped with the package, the melt-quench set in the
cache (``atomsmith data make-asi``), or any structure files."""

from __future__ import annotations

import os
from pathlib import Path

from atomsmith.structures.crystal import Crystal

SOURCES_HELP = ("'shipped' (the small a-Si set in the package), 'asi:N[:ATOMS]' (N melt-quench cells of ATOMS atoms, "
                "default 512, seed 0, default protocol: the main set of experiments/a_si_data, read from the cache; "
                "missing cells are generated, which is slow) or a structure file / directory of files")


def load_cells(source: str | os.PathLike, progress=None) -> list[Crystal]:
    """Cells named by ``source`` (see :data:`SOURCES_HELP`). Raises ``ValueError`` / ``FileNotFoundError`` with
    the reason."""
    text = str(source)
    if text == "shipped":
        from atomsmith.physics.asi_set import load_shipped

        return load_shipped()
    if text.startswith("asi:"):
        parts = text.split(":")
        try:
            n_cells = int(parts[1])
            n_atoms = int(parts[2]) if len(parts) > 2 else 512
        except (IndexError, ValueError):
            raise ValueError(f"bad data source {text!r}; expected asi:N or asi:N:ATOMS") from None
        from atomsmith.physics.asi_set import make_asi_set

        return make_asi_set(standard_protocol(n_atoms), n_cells, progress=progress)
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"data source {text!r} is not 'shipped', 'asi:N' or an existing path")
    from atomsmith.structures import io

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".extxyz", ".xyz", ".cif", ".vasp")
                   or p.name.upper().startswith("POSCAR")) if path.is_dir() else [path]
    cells = [c for f in files for c in io.read(f)]
    if not cells:
        raise ValueError(f"no structures found in {path}")
    return cells


def standard_protocol(n_atoms: int = 512):
    """The main a-Si set's protocol (defaults of :class:`MeltQuenchConfig`, as ``atomsmith data make-asi`` and
    experiments/a_si_data use), so that their cache is found."""
    from atomsmith.physics.melt_quench import MeltQuenchConfig

    return MeltQuenchConfig(n_atoms=n_atoms)
