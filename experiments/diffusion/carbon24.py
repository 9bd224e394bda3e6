"""carbon_24_unique generation: sample a carbon diffusion model, time it, evaluate against carbon_24_unique:test.

    python experiments/diffusion/carbon24.py --model experiments/diffusion/runs/carbon24_v1.ckpt --n 1000

Sampling: the number of atoms (6-24) is drawn from the training distribution; cells of equal size are sampled
together in fixed-shape batches. Evaluation is :func:`atomsmith.metrics.evaluate` with CDVAE's carbon coverage
cutoffs (CrystalNN 0.2, composition 4; every carbon sample has the same composition fingerprint, so COV is decided by
the structure fingerprints), d_rho (1000 valid samples, or all if fewer) and d_#el against carbon_24_unique:test,
uniqueness, and novelty against carbon_24_unique:train; identical to

    atomsmith evaluate experiments/diffusion/samples_carbon24_n{N}{tag}.extxyz.gz \\
        --reference carbon_24_unique:test --train carbon_24_unique:train

Writes ``samples_carbon24_n{N}{tag}.extxyz.gz``, ``sampling_carbon24_n{N}{tag}.json`` and
``metrics_carbon24_n{N}{tag}.json`` beside this script.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="carbon-24", help="shipped model name or checkpoint path")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="reverse steps (default 200 PC steps)")
    parser.add_argument("--sampler", default="pc")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-evaluate", action="store_true")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)

    import jax

    from atomsmith.generators.diffusion.model import DEFAULT_STEPS
    from atomsmith.metrics.evaluate import evaluate, json_safe
    from atomsmith.pretrained import load_model
    from atomsmith.structures import io

    steps = args.steps or DEFAULT_STEPS
    model = load_model(args.model)
    stats: dict = {}
    t0 = time.perf_counter()
    crystals = model.sample(jax.random.PRNGKey(args.seed), args.n, steps=steps, method=args.sampler,
                            batch_size=args.batch_size, progress=sys.stderr.isatty(), stats=stats)
    sample_s = time.perf_counter() - t0
    stem = f"carbon24_n{args.n}{args.tag}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    samples_path = io.write(args.out_dir / f"samples_{stem}.extxyz.gz", crystals, overwrite=True)
    sizes = collections.Counter(c.n_atoms for c in crystals)
    record: dict[str, Any] = {
        "command": "python experiments/diffusion/carbon24.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model), "model_how_trained": model.metadata.get("how_trained"),
        "n": args.n, "seed": args.seed, "steps": steps, "sampler": args.sampler, "batch_size": args.batch_size,
        "network_evaluations_per_structure": steps * (2 if args.sampler == "pc" else 1),
        "seconds_incl_compilation": round(sample_s, 1),
        "structures_per_s_incl_compilation": round(args.n / sample_s, 3),
        "compiled_shapes": "one per atom count (10 sizes) and batch bucket",
        "neighbour_list_overflows": stats.get("overflow"),
        "atoms_per_cell_counts": dict(sorted(sizes.items())),
        "samples": samples_path.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), jax {jax.__version__}",
        "load_average_1min_at_end_of_sampling": os.getloadavg()[0],
    }
    (args.out_dir / f"sampling_{stem}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"sampled {args.n} in {sample_s:.0f} s; overflow {stats.get('overflow')}", flush=True)
    if not args.no_evaluate:
        t1 = time.perf_counter()
        metrics = evaluate(samples_path, "carbon_24_unique:test", train="carbon_24_unique:train",
                           n_workers=args.workers, progress=sys.stderr.isatty())
        metrics = json_safe({"samples": f"experiments/diffusion/{samples_path.name}", "reference": "carbon_24_unique:test",
                          **metrics})
        record["evaluate_seconds"] = round(time.perf_counter() - t1, 1)
        record["evaluate_command"] = (f"atomsmith evaluate experiments/diffusion/{samples_path.name} --reference "
                                      "carbon_24_unique:test --train carbon_24_unique:train")
        (args.out_dir / f"metrics_{stem}.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (args.out_dir / f"sampling_{stem}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        keys = ("valid", "struct_valid", "comp_valid", "cov_recall", "cov_precision", "wdist_density",
                "wdist_num_elems", "uniqueness", "novelty")
        print(json.dumps({k: metrics.get(k) for k in keys}, indent=2))
        record["metrics"] = metrics
    return record



if __name__ == "__main__":
    main()
