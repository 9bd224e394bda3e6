"""Ship the a-Si of issue 15: the first cells of each size under a melt-quench preset, their statistics against the
issue-15 targets (and experiment), their zero-pressure density, and plots.

    python experiments/a_si_data/ship.py --cache-dir DIR               # cells made by `atomsmith data make-asi`
    python experiments/a_si_data/ship.py --cache-dir DIR --no-write    # statistics only, package files untouched

The cells themselves are made (or read from the cache) by :func:`atomsmith.physics.make_asi_set` with
``preset(PRESET, n_atoms=N)``; ``atomsmith data make-asi --preset vink-1e12 --n-atoms N --n-cells K`` makes the same
cells (several processes can split one size with ``--first-cell``). Cells 0, 1, ... are taken in order; one with a
Bragg spot in its direct S(k) (partly crystallised) is set aside (listed in the JSON) and the next index is used. A
cell not in the cache is made here (hours for 512 atoms: see ``PROTOCOL_PLAN.md``) unless ``--available-only``, which
ships what is cached and says so in the JSON. Writes ``shipped_<preset>.json`` and ``shipped_<preset>.png`` next to this file and, unless
``--no-write``, ``src/atomsmith/datasets/files/a_si/a_si_<N>.extxyz``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.metrics.amorphous import (A_SI_EXPERIMENT, A_SI_TARGETS, amorphous_statistics, bond_angles,
                                         compare_to_targets, pair_distribution, structure_factor,
                                         structure_factor_reciprocal)
from atomsmith.physics import relax
from atomsmith.physics.asi_set import SHIPPED_DIR, cell_path, make_asi_set, protocol_key
from atomsmith.physics.melt_quench import preset
from atomsmith.physics.stillinger_weber import SWModel
from atomsmith.structures import io

HERE = Path(__file__).resolve().parent
SHIPPED = {64: 4, 216: 2, 512: 2}
#: Experimental a-Si (Laaziri et al. 1999), the peak positions the issue-15 targets are centred on.
EXPERIMENT = {k: list(v) for k, v in A_SI_EXPERIMENT.items()}


#: A cell whose largest single-vector S(k) exceeds this is partly crystalline (a Bragg spot). For an amorphous cell
#: the S(k) of one reciprocal vector scatters exponentially about S(|k|) <= ~2, so the largest of the ~10^4 vectors
#: below 6 1/Å is ~10-20 whatever the cell size (measured: 11-17); a crystallite of f N atoms gives ~f N.
BRAGG_LIMIT = 30.0
#: How many cells of one size may be set aside before giving up.
MAX_REJECTED = 4


def bragg_peak(cell, q_max: float = 6.0) -> tuple[float, float]:
    """Largest S(k) over the reciprocal vectors 0.5 < |k| <= ``q_max`` 1/Å of one cell, and its |k|."""
    norm, s = structure_factor_reciprocal(cell, q_max)
    keep = norm > 0.5
    i = int(np.argmax(s[keep]))
    return float(s[keep][i]), float(norm[keep][i])


def zero_pressure_density(cell, config) -> dict:
    """FIRE with the cell free at zero pressure, with the cell's own potential: the density it prefers."""
    fire = relax.FireConfig(fmax=2e-3, max_steps=5000, relax_cell=True, model=SWModel(config.params, config.max_degree))
    r = relax.fire_relax(jnp.asarray(cell.positions, jnp.float32), jnp.asarray(cell.lattice, jnp.float32),
                         relax.relax_spec(cell.lattice, cell.n_atoms, fire, config.max_neighbors), fire)
    volume = abs(float(np.linalg.det(np.asarray(r.lattice, np.float64))))
    return {"density": cell.density * cell.volume / volume, "energy_per_atom": float(r.energy) / cell.n_atoms,
            "converged": bool(r.converged)}


def plot(sets: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for n_atoms, cells in sorted(sets.items()):
        label = f"{len(cells)} x {n_atoms} atoms"
        r, g = pair_distribution(cells, r_max=8.0, n_bins=400)
        axes[0].plot(r, g, label=label)
        q, s = structure_factor(cells)
        axes[1].plot(q, s, label=label)
        angles = np.concatenate([bond_angles(c) for c in cells])
        axes[2].hist(angles, bins=np.linspace(40, 180, 141), density=True, histtype="step", lw=1.3, label=label)
    for x in EXPERIMENT["gr_peaks"]:
        axes[0].axvline(x, color="k", ls=":", lw=0.8)
    for x in EXPERIMENT["sq_peaks"]:
        axes[1].axvline(x, color="k", ls=":", lw=0.8)
    axes[2].axvline(109.47, color="k", ls=":", lw=0.8)
    axes[0].set(xlabel="r (Å)", ylabel="g(r)", title="g(r); dotted: experiment peaks")
    axes[1].set(xlabel="q (1/Å)", ylabel="S(q)", xlim=(0.5, 12), title="S(q) (Lorch, R = 12 Å)")
    axes[2].set(xlabel="bond angle (deg)", ylabel="density", title="bond angles (cut 2.85 Å)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vink-1e12")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="do not write the package files")
    parser.add_argument("--available-only", action="store_true",
                        help="ship only the cells already in the cache (a size may then have fewer cells)")
    args = parser.parse_args()
    t0 = time.time()
    sets, rejected, missing, peaks = {}, {}, {}, {}
    root = args.cache_dir
    if root is None:
        from atomsmith.datasets import cache_dir

        root = cache_dir()
    for n_atoms, k in sorted(SHIPPED.items()):
        config = preset(args.preset, n_atoms=n_atoms)
        cells, index = [], 0
        # cells 0, 1, ... of seed 0 in order; a cell with a Bragg spot (partly crystallised: the 8 k^3 cubes at
        # 2.25 g/cm^3 are within 3.5 % of the diamond lattice) is set aside, and the next index is taken
        while len(cells) < k and index < k + MAX_REJECTED:
            if args.available_only and not cell_path(root, config, 0, index).exists():
                break
            (cell,) = make_asi_set(config, 1, seed=0, cache_dir=root, progress=print, first=index)
            peak, at = bragg_peak(cell)
            peaks[(n_atoms, index)] = peak
            if peak > BRAGG_LIMIT:
                rejected.setdefault(str(n_atoms), []).append(
                    {"index": index, "max_s_k": peak, "at_q": at, "energy_per_atom": cell.properties["energy_per_atom"],
                     "angle_std": amorphous_statistics([cell], with_sq=False).angle_std})
            else:
                cells.append(cell)
            index += 1
        if len(cells) < k:
            missing[str(n_atoms)] = k - len(cells)
        if cells:
            sets[n_atoms] = cells
    per_size, shipped = {}, []
    for n_atoms, cells in sorted(sets.items()):
        config = preset(args.preset, n_atoms=n_atoms)
        stats = amorphous_statistics(cells)
        props = [c.properties for c in cells]
        zp = [zero_pressure_density(c, config) for c in cells]
        per_size[str(n_atoms)] = {
            "n_cells": len(cells), "indices": [int(c.properties["index"]) for c in cells],
            "bragg_max_s_k": [peaks[(n_atoms, int(c.properties["index"]))] for c in cells],
            "protocol_key": protocol_key(config), "statistics": stats.as_dict(),
            "targets": compare_to_targets(stats),
            "energy_per_atom": [p["energy_per_atom"] for p in props], "pressure_gpa": [p["pressure_gpa"] for p in props],
            "seconds_per_cell": [p["seconds"] for p in props], "zero_pressure": zp,
            "zero_pressure_density_mean": float(np.mean([z["density"] for z in zp]))}
        print(n_atoms, {k: (round(v["value"], 3), v["ok"]) for k, v in per_size[str(n_atoms)]["targets"].items()})
        if not args.no_write:
            shipped.append(io.write(SHIPPED_DIR / f"a_si_{n_atoms}.extxyz", cells, overwrite=True).name)
    everything = [c for cells in sets.values() for c in cells]
    pooled = amorphous_statistics(everything)
    png = HERE / f"shipped_{args.preset}.png"
    plot(sets, png)
    out = {"preset": args.preset, "protocol": preset(args.preset, n_atoms=64).describe(),
           "targets_definition": {k: list(v) for k, v in A_SI_TARGETS.items()}, "experiment": EXPERIMENT,
           "per_size": per_size, "rejected_cells": rejected, "bragg_limit": BRAGG_LIMIT, "pooled": {"statistics": pooled.as_dict(), "targets": compare_to_targets(pooled)},
           "missing_cells": missing, "shipped_files": shipped, "plot": png.name,
           "machine": {"cpus": 2, "platform": platform.platform(), "jax": jax.__version__},
           "script_seconds": time.time() - t0}
    (HERE / f"shipped_{args.preset}.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote shipped_{args.preset}.json ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
