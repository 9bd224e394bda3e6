"""How tight are the CSP matches? Per-cell StructureMatcher RMS (stol 0.5, ltol 0.3, angle_tol 10) of the k = 1 CSP
samples of csp_perov5.py (previous v4 and shipped v5 models, same 300 test cells), counted below 0.1 / 0.2 / 0.3.
Matching here ignores validity (all predictions are matched), so counts can exceed the scored match rate.

    python experiments/diffusion/csp_rms_breakdown.py   # run from the repository root
"""
import json, numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from atomsmith.structures import io
from atomsmith.structures.convert import to_pymatgen
gts = io.read("experiments/diffusion/csp_perov5_gt_n300.extxyz.gz", min_distance=None)
sm = StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)
out = {}
for tag, f in [("v4", "experiments/diffusion/csp_perov5_n300_k1.extxyz.gz"), ("v5", "experiments/diffusion/csp_perov5_n300_k1_v5.extxyz.gz")]:
    ss = io.read(f, min_distance=None)
    d = []
    for g, s in zip(gts, ss):
        r = sm.get_rms_dist(to_pymatgen(s), to_pymatgen(g))
        d.append(np.nan if r is None else r[0])
    d = np.array(d)
    out[tag] = {"n": len(d), "matched_any_validity": int(np.sum(~np.isnan(d))),
                "rms_below_0.1": int(np.sum(d < 0.1)), "rms_below_0.2": int(np.sum(d < 0.2)),
                "rms_below_0.3": int(np.sum(d < 0.3)), "median_rms_matched": float(np.nanmedian(d))}
    print(tag, out[tag], flush=True)
json.dump(out, open("experiments/diffusion/csp_rms_breakdown.json", "w"), indent=1)
