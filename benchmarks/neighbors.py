"""The jit neighbour list (`atomsmith.graphs.neighbors_jax`) against its previous implementation, written to
neighbors.json.

    nice -n 10 python benchmarks/neighbors.py [--quick] [--out benchmarks/neighbors.json]

The yardstick is a verbatim copy of the previous ``neighbor_list_jax`` (below, ``_old_neighbor_list``): it built the
``[n, n, S, 3]`` fractional differences, multiplied each by the lattice and ran ``jnp.nonzero`` over ``n^2 S`` flags.
Both run in the same process, interleaved call by call, on the same inputs and the same static spec; before timing,
the script checks that every output field (senders, receivers, shifts, mask, overflow, count) is identical.

Cases (float32, jitted, warm; medians over repeats):

* ``perov_5 x256``: 256 perov_5 training cells (5 atoms), vmapped, with the spec the shipped perov-5 diffusion model
  uses (cutoff 4 Å, 216 edge slots per cell, images +-2: S = 125), and the same with a window of +-1 around each
  pair's nearest image (valid for all perov_5 cells: cutoff |b_k| <= 1.5);
* ``a-Si 64/216/512``: the shipped melt-quench cells (``atomsmith.physics.load_shipped``), cutoff 5 Å, 40 slots per
  atom, images +-1 (S = 27) and the window ``NeighborSpec.for_lattice`` picks (the nearest image only).

Steps: ``build`` (the neighbour list alone) and ``fwd+bwd`` (``value_and_grad`` w.r.t. fractional coordinates and
lattice of a smooth pair energy ``sum (1 - r^2/rc^2)^2`` over the edges, vectors recomputed from the inputs: the
way the diffusion sampler and the SW model use the list). ``temp MB`` is XLA's compiled temporary buffer size.
The old implementation has no window: in the window rows it still enumerates the full grid (it is the same yardstick).

The Verlet list (``physics.verlet``) has no builder of its own any more: it calls this shared list with a
``(0, 0, 0)`` window, after the comparison recorded in ``benchmarks/README.md`` showed the shared one faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors_jax import JaxNeighbors, NeighborSpec, neighbor_list_jax

HERE = Path(__file__).resolve().parent


def _old_neighbor_list(frac_coords, lattice, spec, atom_mask=None):
    """The previous implementation, verbatim (commit 24b8118), as the yardstick."""
    n = frac_coords.shape[0]
    grid = jnp.asarray(spec.shift_grid(), frac_coords.dtype)  # [S, 3]
    n_shifts = grid.shape[0]
    floor = jax.lax.stop_gradient(jnp.floor(frac_coords))
    wrapped = frac_coords - floor  # [0, 1)
    dfrac = wrapped[None, :, None, :] - wrapped[:, None, None, :] + grid[None, None, :, :]  # [i, j, S, 3]
    d2 = jnp.sum((dfrac @ lattice) ** 2, axis=-1)  # [i, j, S]
    within = d2 < spec.cutoff ** 2
    is_zero_shift = jnp.all(grid == 0, axis=-1)
    within &= ~(jnp.eye(n, dtype=bool)[:, :, None] & is_zero_shift[None, None, :])
    if atom_mask is not None:
        within &= atom_mask[:, None, None] & atom_mask[None, :, None]
    flat = within.reshape(-1)
    count = jnp.sum(flat)
    (index,) = jnp.nonzero(flat, size=spec.max_edges, fill_value=0)
    receivers = index // (n * n_shifts)
    senders = (index // n_shifts) % n
    s = index % n_shifts
    mask = jnp.arange(spec.max_edges) < count
    shifts = grid[s] - floor[senders] + floor[receivers]
    shifts = jnp.where(mask[:, None], shifts, 0.0)
    senders = jnp.where(mask, senders, 0)
    receivers = jnp.where(mask, receivers, 0)
    return JaxNeighbors(senders, receivers, shifts, mask, count > spec.max_edges, count)


def _pair_energy(build, spec):
    """``(frac [B, n, 3], lattice [B, 3, 3], mask [B, n]) -> scalar``: sum over edges of (1 - r^2/rc^2)^2."""

    def one(frac, lattice, mask):
        nb = build(frac, lattice, spec, mask)
        pos = frac @ lattice
        vec = pos[nb.senders] - pos[nb.receivers] + nb.shifts @ lattice
        u = 1.0 - jnp.sum(vec ** 2, axis=-1) / spec.cutoff ** 2
        return jnp.sum(jnp.where(nb.mask & (u > 0), u ** 2, 0.0))

    return lambda f, l, m: jnp.sum(jax.vmap(one)(f, l, m))


def _steps(build, spec):
    nbrs = jax.jit(jax.vmap(lambda f, l, m: build(f, l, spec, m)))
    grad = jax.jit(jax.value_and_grad(_pair_energy(build, spec), argnums=(0, 1)))
    return {"build": nbrs, "fwd+bwd": grad}


def _temp_mb(fn, args) -> float | None:
    try:
        return round(fn.lower(*args).compile().memory_analysis().temp_size_in_bytes / 2 ** 20, 2)
    except Exception:  # memory analysis is best effort (not every backend/version reports it)
        return None


def _same(a: JaxNeighbors, b: JaxNeighbors) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))) for f in a._fields)


def cases(quick: bool):
    from atomsmith.datasets import load
    from atomsmith.physics import load_shipped

    perov = load("perov_5", "train", limit=256)
    frac = np.stack([c.frac_coords for c in perov]).astype(np.float32)
    lat = np.stack([c.lattice for c in perov]).astype(np.float32)
    grid_spec = NeighborSpec(4.0, 216, (2, 2, 2))
    out = [("perov_5 x256", "grid +-2 (S=125), as the perov-5 model", frac, lat, grid_spec),
           ("perov_5 x256", "window +-1 (C=27)", frac, lat, NeighborSpec(4.0, 216, (2, 2, 2), (1, 1, 1)))]
    for n in ((64, 216) if quick else (64, 216, 512)):
        cell = load_shipped(n)[0]
        f = cell.frac_coords[None].astype(np.float32)
        l_ = cell.lattice[None].astype(np.float32)
        auto = NeighborSpec.for_lattice(cell.lattice, 5.0, 40 * n)
        out.append((f"a-Si {n}", "grid +-1 (S=27)", f, l_, NeighborSpec(5.0, 40 * n, auto.n_images)))
        out.append((f"a-Si {n}", f"for_lattice window {auto.window}", f, l_, auto))
    return out


def time_interleaved(fns: dict, args, repeats: int, budget_s: float) -> dict:
    """Median seconds per call of each function, calls interleaved round by round (stops early past budget_s)."""
    times = {k: [] for k in fns}
    start = time.perf_counter()
    for r in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[k].append(time.perf_counter() - t0)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    return {k: (float(np.median(v)), float(np.min(v)), len(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a-Si 64 and 216 only, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "neighbors.json")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 21)
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    rows = []
    header = f"{'case':<14} {'spec':<38} {'step':<8} {'old ms':>9} {'new ms':>9} {'speedup':>8} " \
             f"{'old temp MB':>11} {'new temp MB':>11}"
    print(header)
    for name, spec_name, frac, lat, spec in cases(args.quick):
        inputs = (jnp.asarray(frac), jnp.asarray(lat), jnp.ones(frac.shape[:2], bool))
        old_steps, new_steps = _steps(_old_neighbor_list, spec), _steps(neighbor_list_jax, spec)
        same = _same(old_steps["build"](*inputs), new_steps["build"](*inputs))
        (e_old, g_old), (e_new, g_new) = old_steps["fwd+bwd"](*inputs), new_steps["fwd+bwd"](*inputs)
        grad_dev = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30)) for a, b in zip(g_old, g_new))
        nb = new_steps["build"](*inputs)
        edges = int(jnp.sum(nb.count))
        for step in ("build", "fwd+bwd"):
            fns = {"old": old_steps[step], "new": new_steps[step]}
            temps = {k: _temp_mb(fn, inputs) for k, fn in fns.items()}
            timing = time_interleaved(fns, inputs, repeats, budget_s=60.0)
            row = {"case": name, "spec": spec_name, "n_images": list(spec.n_images),
                   "window": None if spec.window is None else list(spec.window), "step": step,
                   "cells": int(frac.shape[0]), "atoms_per_cell": int(frac.shape[1]), "max_edges": spec.max_edges,
                   "edges_found": edges, "identical_outputs": same, "energy_rel_dev": float(
                       abs(e_old - e_new) / abs(e_old)), "grad_rel_dev": grad_dev,
                   "old_ms": round(timing["old"][0] * 1e3, 3), "new_ms": round(timing["new"][0] * 1e3, 3),
                   "old_min_ms": round(timing["old"][1] * 1e3, 3), "new_min_ms": round(timing["new"][1] * 1e3, 3),
                   "repeats": timing["new"][2], "speedup": round(timing["old"][0] / timing["new"][0], 2),
                   "old_temp_mb": temps["old"], "new_temp_mb": temps["new"]}
            rows.append(row)
            print(f"{name:<14} {spec_name:<38} {step:<8} {row['old_ms']:>9.2f} {row['new_ms']:>9.2f} "
                  f"{row['speedup']:>7.1f}x {str(temps['old']):>11} {str(temps['new']):>11}"
                  f"{'' if same else '  OUTPUTS DIFFER'}", flush=True)
    load_end = os.getloadavg()
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    result = {"command": "nice -n 10 python benchmarks/neighbors.py" + (" --quick" if args.quick else ""),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
              "jax": jax.__version__, "load_average_start": [round(x, 2) for x in load_start],
              "load_average_end": [round(x, 2) for x in load_end], "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
