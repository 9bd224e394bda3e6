"""How tight are the k = 20 CSP matches of the shipped model? For each of the 100 test cells of
``csp_perov5.py --n-compositions 100 --k 20 --tag _v5``, the smallest RMS (StructureMatcher stol 0.5, ltol 0.3,
angle_tol 10, normalised by (V/n)^(1/3)) over its valid predictions, counted below 0.1 / 0.2.

    python experiments/diffusion/csp_rms_breakdown_k20.py   # run from the repository root
"""
import json

import numpy as np

from atomsmith.metrics import validity
from atomsmith.metrics.matching import CSP_MATCHER, rms_dist
from atomsmith.structures import io

preds = io.read("experiments/diffusion/csp_perov5_n100_k20_v5.extxyz.gz", min_distance=None)
gts = io.read("experiments/diffusion/csp_perov5_gt_n100_v5.extxyz.gz", min_distance=None)
k = len(preds) // len(gts)  # predictions are consecutive per test cell
best = []
for i, gt in enumerate(gts):
    rms = []
    for p in preds[i * k:(i + 1) * k]:
        if validity.smact_validity(p.numbers) and validity.structure_validity(p):
            r = rms_dist(p, gt, CSP_MATCHER)
            if r is not None:
                rms.append(r)
    best.append(min(rms) if rms else None)
matched = [b for b in best if b is not None]
out = {"n": len(gts), "k": k, "matched": len(matched), "best_rms_below_0.1": sum(b < 0.1 for b in matched),
       "best_rms_below_0.2": sum(b < 0.2 for b in matched), "median_best_rms": float(np.median(matched))}
print(out)
json.dump(out, open("experiments/diffusion/csp_rms_breakdown_k20_v5.json", "w"), indent=1)
