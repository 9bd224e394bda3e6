"""Regenerate the small example inputs used by the README tour (run from the repository root):

    python examples/make_examples.py

- ``partial_perovskite.cif``: the first ABO3 cell of perov_5:test with its last O atom removed (for ``atomsmith infill``).
- ``env_a.xyz``, ``env_b.xyz``: two 8-neighbour a-Si environments (atoms 0 and 1 of the first shipped melt-quench
  SW cell) as clusters, centre first (for ``atomsmith interpolate``).
- ``own_data.csv``: 60 perov_5 validation cells with their indirect gap as a column ``gap`` (eV), and two broken
  rows (a truncated CIF, a missing value) to show how bad rows are reported (for ``atomsmith train --data``).

perov_5 comes from CDVAE (MIT licence; see src/atomsmith/datasets/files/README.md); the a-Si cells are made by
atomsmith (``atomsmith data make-asi``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from atomsmith import datasets
from atomsmith.generators.environments import ops
from atomsmith.graphs.environments import local_environments
from atomsmith.physics.asi_set import load_shipped
from atomsmith.structures.crystal import Crystal
from atomsmith.structures.io import to_cif, write

HERE = Path(__file__).resolve().parent


def main() -> None:
    cell = next(c for c in datasets.load("perov_5", "test", limit=200) if np.sum(c.numbers == 8) == 3)
    o_sites = np.flatnonzero(cell.numbers == 8)
    keep = np.setdiff1d(np.arange(cell.n_atoms), o_sites[-1:])
    partial = Crystal(cell.lattice, cell.frac_coords[keep], cell.numbers[keep])
    write(HERE / "partial_perovskite.cif", partial, overwrite=True)

    asi = load_shipped()[0]
    env = local_environments(asi, 8, 4.0, centres=np.array([0, 1]))
    for name, vectors in zip(("env_a.xyz", "env_b.xyz"), env.vectors):
        write(HERE / name, ops.environment_to_crystal(vectors), format="extxyz", overwrite=True)

    rows = [{"material_id": c.properties.get("material_id", f"val-{i}"), "cif": to_cif(c),
             "gap": f"{c.properties['ind_gap']:.4f}"} for i, c in enumerate(datasets.load("perov_5", "val", limit=60))]
    rows[7]["cif"] = rows[7]["cif"][: len(rows[7]["cif"]) // 3]   # truncated CIF
    rows[23]["gap"] = ""                                           # missing value
    with open(HERE / "own_data.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["material_id", "cif", "gap"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
