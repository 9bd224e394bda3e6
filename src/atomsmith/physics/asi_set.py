"""Sets of amorphous-silicon cells made by :func:`~atomsmith.physics.melt_quench.melt_quench`, cached on disk, and
the small set shipped with the package.

Cache layout: ``<cache_dir>/a_si/<protocol key>/n<atoms>_seed<seed>_<index>.extxyz``, one finished cell per file,
where the key is a hash of the full protocol (:class:`MeltQuenchConfig`). A cell is generated only if its file is
missing, so an interrupted run resumes and a repeated command is instant; a cell in progress keeps a checkpoint of
its MD state beside it (``*.partial.npz``, every 5 minutes), so a long cell resumes mid-way too. Cell ``i`` of
seed ``s`` is the same whatever the number of cells asked for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from atomsmith.physics.melt_quench import MeltQuenchConfig, melt_quench
from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal

#: Where the shipped a-Si cells live (package data).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "datasets" / "files" / "a_si"
#: The melt-quench preset (:data:`atomsmith.physics.melt_quench.PRESETS`) and SW parameter set
#: (:data:`atomsmith.physics.stillinger_weber.PARAMETER_SETS`) the shipped cells were made with: score their energies
#: with ``parameter_set(SHIPPED_POTENTIAL)``.
SHIPPED_PRESET = "vink-1e12"
SHIPPED_POTENTIAL = "vink"


#: Settings added to :class:`MeltQuenchConfig` after cells were cached, with the value that means "as before":
#: left out of the key at that value, so the protocols that existed keep their keys (and their cached cells).
_LATER_SETTINGS = {"anneals": (), "relax_cell": False, "pressure_gpa": 0.0}


def protocol_key(config: MeltQuenchConfig) -> str:
    """16 hex digits identifying every setting of ``config`` (and so the cache folder)."""
    settings = dataclasses.asdict(config)
    for name, neutral in _LATER_SETTINGS.items():
        if settings[name] == neutral:
            del settings[name]
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_path(root: Path, config: MeltQuenchConfig, seed: int, index: int) -> Path:
    return Path(root) / "a_si" / protocol_key(config) / f"n{config.n_atoms}_seed{seed}_{index:03d}.extxyz"


def make_asi_set(config: MeltQuenchConfig, n_cells: int, seed: int = 0, cache_dir: str | Path | None = None,
                 use_cache: bool = True, progress: Callable[[str], None] | None = None,
                 first: int = 0) -> list[Crystal]:
    """``n_cells`` melt-quench cells (indices ``first..first+n_cells-1`` of ``seed``), read from or written to the
    cache. Cell ``i`` of a seed is the same whatever ``first`` is, so processes given disjoint index ranges make
    one set in parallel.

    Args:
      config: the protocol.  n_cells: how many cells.  seed: base seed.  first: index of the first cell.
      cache_dir: cache root (default :func:`atomsmith.datasets.cache_dir`).
      use_cache: False regenerates every cell (and overwrites the cache).
      progress: called with one-line progress messages.
    """
    from atomsmith.datasets import cache_dir as default_cache_dir

    if n_cells < 1:
        raise ValueError(f"n_cells must be >= 1, got {n_cells}")
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    crystals = []
    for index in range(first, first + n_cells):
        path = cell_path(root, config, seed, index)
        if use_cache and path.exists():
            crystals.append(io.read_one(path))
            if progress is not None:
                progress(f"cell {index}: cached ({path})")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        crystal = melt_quench(config, seed, index, progress=progress, checkpoint=path.with_suffix(".partial.npz"))
        io.write(path, crystal, overwrite=True)
        if progress is not None:
            p = crystal.properties
            progress(f"cell {index}: done in {p['seconds']:.0f} s, E={p['energy_per_atom']:.4f} eV/atom, "
                     f"P={p['pressure_gpa']:.2f} GPa -> {path}")
        crystals.append(crystal)
    return crystals


def shipped_files() -> list[Path]:
    """The shipped a-Si extxyz files (sorted by name)."""
    return sorted(SHIPPED_DIR.glob("*.extxyz"))


def load_shipped(n_atoms: int | None = None) -> list[Crystal]:
    """The small a-Si set shipped with the package (see ``datasets/files/a_si/README.md``); ``n_atoms`` selects
    cells of one size. Raises ``FileNotFoundError`` if none match."""
    crystals = [c for path in shipped_files() for c in io.read(path)]
    if n_atoms is not None:
        crystals = [c for c in crystals if c.n_atoms == n_atoms]
    if not crystals:
        raise FileNotFoundError(f"no shipped a-Si cells{f' of {n_atoms} atoms' if n_atoms else ''} in {SHIPPED_DIR}")
    return crystals
