"""perov_5 structure prediction (CSP) benchmark: match rate and RMSE for k samples per test composition.

For each chosen perov_5 test cell the composition (its species, hence its number of atoms) is given to the diffusion
model's structure-prediction mode (``conditions={"composition": ...}``, as ``atomsmith sample --composition``), which
generates lattice and coordinates only. All ``n_compositions * k`` cells go through the jitted sampler together in
fixed-shape batches (``--batch-size``, default 256; no per-composition loop). Predictions are scored with
:func:`atomsmith.metrics.evaluate` (``task="csp"``), i.e. DiffCSP's ``scripts/compute_metrics.py``:

* ``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)``; RMSE = pymatgen's ``get_rms_dist`` (RMS displacement
  normalised by ``(V / n_sites)^(1/3)``), averaged over the matched test cells;
* a prediction is only matched if it is valid (SMACT composition + distances >= 0.5 Å + volume >= 0.1 Å^3 +
  CrystalNN fingerprint computable, DiffCSP's ``Crystal.valid``);
* k = 1 (``RecEval``): the ground truth must be valid too; match rate = matched / all chosen test cells;
* k > 1 (``RecEvalBatch``): a test cell counts as matched if any of its k predictions matches, with the smallest
  RMSE; match rate = matched test cells / all chosen test cells.

Deviation: the full test split has 3,785 cells; on this 2-core CPU ``--n-compositions`` draws a fixed random subset
(``numpy.random.default_rng(subset_seed).choice``, sorted), so the numbers carry the sampling error of that subset
(binomial standard error of the match rate is reported).

    python experiments/diffusion/csp_perov5.py --n-compositions 20 --k 1 20          # small timing run
    python experiments/diffusion/csp_perov5.py --model experiments/diffusion/runs/perov5_v5.ckpt \\
        --n-compositions 1000 --k 1 --tag _v5

Writes ``csp_perov5_n{N}_k{k}{tag}.json`` beside this script (and, with ``--save-samples``, the predictions with a
``gt_index`` property plus the chosen ground truths as ``.extxyz.gz``, so that
``atomsmith evaluate PRED --task csp --reference GT`` reproduces the numbers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
#: the perov_5 test split (CDVAE) has this many cells.
N_TEST = 3785
#: DiffCSP (Jiao et al., NeurIPS 2023), Table 1, perov_5: (match rate %, RMSE).
DIFFCSP = {1: (52.02, 0.0760), 20: (98.60, 0.0128)}


def select_subset(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` distinct test cells out of ``n_total`` (all of them when ``n`` is None or >= total)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 1:
        raise ValueError(f"--n-compositions must be >= 1, got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def csp_requests(gts: Sequence[Any], k: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Compositions to sample, ``k`` consecutive copies of each ground truth's atomic numbers (in its site order),
    and ``gt_index [len(gts) * k]`` (the ground truth each sample belongs to)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    comps = [tuple(int(z) for z in gt.numbers) for gt in gts for _ in range(k)]
    return comps, np.repeat(np.arange(len(gts)), k)


def predict(model, gts: Sequence[Any], k: int, seed: int, steps: int, method: str = "pc",
            batch_size: int = 256, progress: bool = False, step_lr: float | None = None
            ) -> tuple[list, np.ndarray, dict]:
    """``k`` structure predictions per ground truth in one batched sampler call.

    Returns ``(crystals, gt_index, stats)``; every crystal carries its ``gt_index`` as a property.
    """
    import jax

    from atomsmith.structures.crystal import Crystal

    comps, gt_index = csp_requests(gts, k)
    stats: dict = {}
    crystals = model.sample(jax.random.PRNGKey(seed), len(comps), conditions={"composition": comps}, steps=steps,
                            method=method, batch_size=batch_size, progress=progress, stats=stats, step_lr=step_lr)
    tagged = [Crystal(c.lattice, c.frac_coords, c.numbers, properties={"gt_index": int(g)})
              for c, g in zip(crystals, gt_index)]
    return tagged, gt_index, stats


def score(preds: Sequence[Any], gts: Sequence[Any], gt_index: np.ndarray, n_workers: int | None = None
          ) -> dict[str, Any]:
    """DiffCSP match rate / RMSE via :func:`atomsmith.metrics.evaluate` (``task="csp"``)."""
    from atomsmith.metrics.evaluate import evaluate

    # Reference fingerprints are cached by content hash, so the whole test split reuses the generation cache.
    return evaluate(list(preds), list(gts), task="csp", gt_index=gt_index, n_workers=n_workers, cache=True)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all its threads, and its finished child processes (the
    fingerprint / matching workers), in seconds: the cost on a shared machine, where wall time depends on the load."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_model(name_or_path: str):
    from atomsmith.pretrained import load_model

    return load_model(name_or_path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="perov-5", help="shipped model name or checkpoint path")
    parser.add_argument("--n-compositions", type=int, default=None, help=f"test cells to use (default all {N_TEST})")
    parser.add_argument("--subset-seed", type=int, default=0, help="seed of the fixed random subset")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 20], help="samples per composition (one run each)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (run with k uses seed + k)")
    parser.add_argument("--steps", type=int, default=None, help="reverse steps (default: the model's default, 200)")
    parser.add_argument("--sampler", default="pc")
    parser.add_argument("--step-lr", type=float, default=None, help="corrector step size (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None, help="processes for fingerprints / matching")
    parser.add_argument("--tag", default="", help="suffix of the output names")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--save-samples", action="store_true")
    args = parser.parse_args(argv)

    from atomsmith.generators.diffusion.data import load_split_cached
    from atomsmith.generators.diffusion.model import DEFAULT_STEPS
    from atomsmith.metrics.evaluate import json_safe
    from atomsmith.structures import io

    steps = args.steps or DEFAULT_STEPS
    t0 = time.perf_counter()
    test = load_split_cached("perov_5", "test")
    subset = select_subset(len(test), args.n_compositions, args.subset_seed)
    gts = [test[i] for i in subset]
    model = _load_model(args.model)
    load_s = time.perf_counter() - t0
    n = len(gts)
    results = {}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for k in args.k:
        t, c = time.perf_counter(), cpu_seconds()
        preds, gt_index, stats = predict(model, gts, k, args.seed + k, steps, args.sampler, args.batch_size,
                                         progress=sys.stderr.isatty(), step_lr=args.step_lr)
        sample_s, sample_cpu = time.perf_counter() - t, cpu_seconds() - c
        t, c = time.perf_counter(), cpu_seconds()
        metrics = score(preds, gts, gt_index, args.workers)
        score_s, score_cpu = time.perf_counter() - t, cpu_seconds() - c
        rate = metrics["match_rate"]
        out = {
            "task": "perov_5 structure prediction (CSP)",
            "model": str(args.model),
            "model_how_trained": getattr(model, "metadata", {}).get("how_trained", {}).get("command"),
            "k_samples_per_composition": k,
            "n_compositions": n,
            "n_test_split": len(test),
            "subset": ("all test cells" if n == len(test) else
                       f"numpy.random.default_rng({args.subset_seed}).choice({len(test)}, {n}, replace=False), sorted"),
            "match_rate_pct": 100 * rate,
            "match_rate_stderr_pct": 100 * math.sqrt(rate * (1 - rate) / n) if n else None,
            "rms_dist": metrics["rms_dist"],
            "rms_median": metrics["rms_median"],
            "tight_match_rate_pct": 100 * metrics["tight_match_rate"],
            "n_matched": metrics["n_matched"],
            "valid_pct": 100 * metrics["valid"],
            "comp_valid_pct": 100 * metrics["comp_valid"],
            "struct_valid_pct": 100 * metrics["struct_valid"],
            "diffcsp_paper": {"match_rate_pct": DIFFCSP.get(k, (None, None))[0],
                              "rms_dist": DIFFCSP.get(k, (None, None))[1]},
            "sampler": {"method": args.sampler, "steps": steps, "batch_size": args.batch_size,
                        "step_lr": args.step_lr if args.step_lr is not None else model.default_step_lr(csp=True),
                        "seed": args.seed + k, "overflow": stats.get("overflow")},
            "timing_s": {
                "load_data_and_model": load_s,
                "sampling_incl_compilation": sample_s,
                "scoring": score_s,
                "scoring_breakdown": metrics.get("timing_s"),
                "sampling_per_structure": sample_s / (n * k),
                "scoring_per_structure": score_s / (n * k),
                "per_composition": (sample_s + score_s) / n,
            },
            "cpu_s": {
                "sampling_incl_compilation": sample_cpu,
                "scoring": score_cpu,
                "sampling_per_structure": sample_cpu / (n * k),
                "scoring_per_structure": score_cpu / (n * k),
                "per_composition": (sample_cpu + score_cpu) / n,
            },
            "command": "python experiments/diffusion/csp_perov5.py " + shlex.join(sys.argv[1:] if argv is None
                                                                                   else list(argv)),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "load_average": os.getloadavg()},
        }
        stem = f"csp_perov5_n{n}_k{k}{args.tag}"
        if args.save_samples:
            io.write(args.out_dir / f"{stem}.extxyz.gz", preds, overwrite=True)
            io.write(args.out_dir / f"csp_perov5_gt_n{n}{args.tag}.extxyz.gz", gts, overwrite=True)
        with io.atomic_write(args.out_dir / f"{stem}.json", overwrite=True) as handle:
            json.dump(json_safe(out), handle, indent=2)
            handle.write("\n")
        print(f"k={k}: match rate {out['match_rate_pct']:.2f} % (+- {out['match_rate_stderr_pct'] or 0:.2f}), "
              f"RMSE {out['rms_dist']}, valid {out['valid_pct']:.1f} %, sampling {sample_s:.0f} s "
              f"({sample_cpu:.0f} CPU-s), scoring {score_s:.0f} s ({score_cpu:.0f} CPU-s) for {n} compositions -> {args.out_dir / (stem + '.json')}", flush=True)
        results[k] = out
    return results



if __name__ == "__main__":
    main()
