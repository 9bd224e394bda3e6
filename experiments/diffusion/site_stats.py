"""Site statistics of generated crystals against a reference split (issue 16, "species that respect chemistry"):
share of anion sites (N, O, F, S), histogram of the number of distinct elements per cell, per-element site
frequencies; each compared by its total-variation distance (TV = half the L1 distance of the two distributions).

    python experiments/diffusion/site_stats.py SAMPLES [SAMPLES ...] [--reference perov_5:test] [--out stats.json]

Each SAMPLES file is read with ``atomsmith.read`` (extxyz, gzipped or not); the JSON holds one entry per file and
the reference's own statistics.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

ANIONS = (7, 8, 9, 16)  # N, O, F, S: the anion sites of perov_5 (3 of its 5 sites)


def tv(p: dict, q: dict) -> float:
    """Total-variation distance of two distributions given as {outcome: probability}."""
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys))


def site_stats(crystals) -> dict:
    """Anion share, distinct-element histogram and per-element frequencies of a set of crystals."""
    numbers = np.concatenate([np.asarray(c.numbers) for c in crystals])
    distinct = collections.Counter(len(set(np.asarray(c.numbers).tolist())) for c in crystals)
    elements = collections.Counter(numbers.tolist())
    n_cells, n_sites = len(crystals), len(numbers)
    return {
        "n_cells": n_cells,
        "anion_share": float(np.isin(numbers, ANIONS).mean()),
        "distinct_elements": {int(k): v / n_cells for k, v in sorted(distinct.items())},
        "element_frequency": {int(k): v / n_sites for k, v in sorted(elements.items())},
    }


def compare(gen: dict, ref: dict) -> dict:
    """TV distances of ``gen``'s statistics against ``ref``'s (anion share as a two-outcome distribution)."""
    return {
        "anion_share_tv": abs(gen["anion_share"] - ref["anion_share"]),
        "distinct_elements_tv": tv(gen["distinct_elements"], ref["distinct_elements"]),
        "element_frequency_tv": tv(gen["element_frequency"], ref["element_frequency"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", type=Path)
    parser.add_argument("--reference", default="perov_5:test")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from atomsmith.generators.diffusion.data import load_split_cached
    from atomsmith.structures.io import read

    name, split = args.reference.split(":")
    ref = site_stats(load_split_cached(name, split))
    out = {"reference": args.reference, "reference_stats": ref, "samples": {}}
    print(f"{args.reference}: anion share {ref['anion_share']:.3f}, distinct elements "
          + ", ".join(f"{k}: {v:.3f}" for k, v in ref["distinct_elements"].items()))
    for path in args.samples:
        gen = site_stats(read(path, min_distance=None))  # generated cells may hold overlapping atoms
        dist = compare(gen, ref)
        out["samples"][str(path)] = {**gen, **dist}
        print(f"{path}: {gen['n_cells']} cells, anion share {gen['anion_share']:.3f} (TV {dist['anion_share_tv']:.3f}), "
              f"distinct elements " + ", ".join(f"{k}: {v:.3f}" for k, v in gen["distinct_elements"].items())
              + f" (TV {dist['distinct_elements_tv']:.3f}), element frequencies TV {dist['element_frequency_tv']:.3f}")
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
