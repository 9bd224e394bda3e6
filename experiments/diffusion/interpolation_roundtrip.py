"""Round trip of the probability-flow inversion on perov_5 cells: decode(encode(x)) against x (issue 20).

For ``--n`` cells of a split (a fixed random subset, ``numpy.random.default_rng(subset_seed).choice``, sorted) each
cell is encoded to its t = 1 latent by inverting the ODE sampler (:mod:`atomsmith.generators.diffusion.inversion`)
and decoded again by the ODE sampler, with ``--steps`` ODE steps both ways, all cells in fixed-shape batches.
Reported: pymatgen StructureMatcher RMS of the round trip against the input (CSP tolerances stol 0.5, ltol 0.3,
angle_tol 10, normalised by (V/n)^(1/3); :func:`atomsmith.metrics.matching.rms_dist`), the match rate, the largest
fractional-coordinate error atom by atom, the cell-parameter errors, whether the species came back, and the
inversion's fixed-point residual. ``--plain`` adds the same numbers for the usual one-evaluation DDIM inversion
(``max_iters = 2``) for comparison.

    python experiments/diffusion/interpolation_roundtrip.py --model perov-5 --n 200 --split test \\
        --out experiments/diffusion/interpolation_roundtrip_perov5_n200.json --plain

Species: relaxed one-hot models (shipped before issue 16) encode the species too (``latent``); masked-species models
(the shipped perov-5) hold them (``held``, structure-prediction mode), the only choice they have.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Aggregate numbers of one :func:`atomsmith.generators.diffusion.interpolation.round_trip` report."""
    rms = [r for r in report["rms"] if r is not None]
    n = len(report["rms"])

    def stats(values):
        v = np.asarray(values, np.float64)
        return {"mean": float(v.mean()), "median": float(np.median(v)), "p90": float(np.quantile(v, 0.9)),
                "max": float(v.max())} if v.size else None

    return {
        "n": n,
        "match_rate": len(rms) / n if n else float("nan"),
        "rms_dist": stats(rms),
        "frac_error": stats(report["frac_error"]),
        "length_error_angstrom": stats(report["length_error"]),
        "angle_error_degrees": stats(report["angle_error"]),
        "species_recovered": float(np.mean(report["species_ok"])) if n else float("nan"),
        "residual": stats(report["residual"]),
    }


def how_trained(model: Any) -> str | None:
    """The training command a checkpoint records (``metadata["how_trained"]``: a dict with ``command``, or text)."""
    trained = getattr(model, "metadata", {}).get("how_trained")
    return trained.get("command") if isinstance(trained, dict) else trained


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="perov-5", help="shipped model name or checkpoint path")
    parser.add_argument("--dataset", default="perov_5")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=200, help="cells (a fixed random subset of the split)")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100, help="ODE steps of encoding and decoding")
    parser.add_argument("--species", choices=("latent", "held"), default=None, help="default: by the model")
    parser.add_argument("--max-iters", type=int, default=None, help="fixed-point evaluations per inverse step")
    parser.add_argument("--tol", type=float, default=None, help="fixed-point tolerance per inverse step")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--plain", action="store_true", help="also run plain DDIM inversion (max_iters = 2)")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: beside this script)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)

    from atomsmith.generators.diffusion import interpolation as ci
    from atomsmith.generators.diffusion import inversion as inv
    from atomsmith.generators.diffusion.data import load_split_cached
    from atomsmith.metrics.evaluate import json_safe
    from atomsmith.pretrained import load_model
    from atomsmith.structures import io

    out = args.out or HERE / f"interpolation_roundtrip_{args.dataset}_{args.split}_n{args.n}_s{args.steps}.json"
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to overwrite it")
    t0 = time.perf_counter()
    cells = load_split_cached(args.dataset, args.split)
    subset = np.arange(len(cells)) if args.n >= len(cells) else \
        np.sort(np.random.default_rng(args.subset_seed).choice(len(cells), size=args.n, replace=False))
    crystals = [cells[i] for i in subset]
    model = load_model(args.model)
    mode = ci.species_mode(model, args.species)
    load_s = time.perf_counter() - t0
    max_iters = args.max_iters or inv.DEFAULT_MAX_ITERS
    tol = args.tol if args.tol is not None else inv.DEFAULT_TOL
    runs = {"fixed_point": max_iters}
    if args.plain:
        runs["plain_ddim_inversion"] = 2
    results: dict[str, Any] = {}
    for name, iters in runs.items():
        t = time.perf_counter()
        report = ci.round_trip(model, crystals, ode_steps=args.steps, species=mode, max_iters=iters, tol=tol,
                               batch_size=args.batch_size)
        seconds = time.perf_counter() - t
        results[name] = {**summarise(report), "max_iters": iters, "seconds_incl_compilation": seconds,
                         "per_cell": {k: report[k] for k in ("rms", "frac_error", "length_error", "angle_error",
                                                             "species_ok", "residual")}}
        s = results[name]
        print(f"{name}: match rate {100 * s['match_rate']:.1f} %, RMS median "
              f"{(s['rms_dist'] or {}).get('median')}, max frac error {s['frac_error']['max']:.2e}, species "
              f"recovered {100 * s['species_recovered']:.1f} %, {seconds:.0f} s", flush=True)
    record = {
        "task": f"probability-flow inversion round trip, {args.dataset}:{args.split}",
        "model": str(args.model),
        "model_how_trained": how_trained(model),
        "species": mode,
        "species_process": model.config.species_process,
        "n_cells": len(crystals),
        "subset": ("all cells" if len(crystals) == len(cells) else
                   f"numpy.random.default_rng({args.subset_seed}).choice({len(cells)}, {len(crystals)}, "
                   "replace=False), sorted"),
        "subset_indices": subset.tolist(),
        "ode_steps": args.steps,
        "tol": tol,
        "matcher": "StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10), get_rms_dist normalised by (V/n)^(1/3)",
        "results": results,
        "load_s": load_s,
        "command": "python experiments/diffusion/interpolation_roundtrip.py " + shlex.join(
            sys.argv[1:] if argv is None else list(argv)),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    with io.atomic_write(out, overwrite=True) as handle:
        json.dump(json_safe(record), handle, indent=2)
        handle.write("\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
