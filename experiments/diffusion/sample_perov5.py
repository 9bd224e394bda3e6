"""Sample perov_5 structures from the shipped ``perov-5`` diffusion model, time it, and (optionally) evaluate.

    python experiments/diffusion/sample_perov5.py --n 1000 --seed 0            # -> samples_perov5_n1000.extxyz.gz
    python experiments/diffusion/sample_perov5.py --n 1000 --evaluate          # + atomsmith evaluate

Timing: a first run of one batch (``--batch-size`` cells) compiles the sampler; the main run then reuses the compiled
function, so ``structures_per_s`` is the warm sampling speed at the given step count; the compile overhead is
reported separately. Results go to ``sampling_perov5_n{N}.json`` beside this script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="perov-5")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sampler", default="pc")
    parser.add_argument("--step-lr", type=float, default=None, help="corrector step size (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="samples file (default samples_perov5_n{N}{tag}"
                                                               ".extxyz.gz beside this script)")
    parser.add_argument("--evaluate", action="store_true", help="run atomsmith evaluate on the samples")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    import jax

    from atomsmith.metrics.validity import structure_validity
    from atomsmith.generators.diffusion.model import DEFAULT_STEPS
    from atomsmith.pretrained import load_model
    from atomsmith.structures import io

    steps = args.steps or DEFAULT_STEPS
    model = load_model(args.model)
    t0 = time.perf_counter()
    step_lr = args.step_lr if args.step_lr is not None else model.default_step_lr()
    model.sample(jax.random.PRNGKey(10_000 + args.seed), min(args.batch_size, args.n), steps=steps,
                 method=args.sampler, batch_size=args.batch_size, step_lr=step_lr)
    first = time.perf_counter() - t0
    stats: dict = {}
    crystals = model.sample(jax.random.PRNGKey(args.seed), args.n, steps=steps, method=args.sampler,
                            batch_size=args.batch_size, progress=sys.stderr.isatty(), stats=stats, step_lr=step_lr)
    per_batch = stats["seconds"] / -(-args.n // args.batch_size)
    stem = f"perov5_n{args.n}{args.tag}"
    out = args.out or HERE / f"samples_{stem}.extxyz.gz"
    with io.atomic_write(out, mode="wb", overwrite=True) as handle:
        handle.write(gzip.compress(io.to_extxyz(crystals).encode(), mtime=0))
    valid = sum(structure_validity(c) for c in crystals)
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, HERE.parents[1]),
                                                                   *sys.argv[1:]]),
        "model": args.model, "model_how_trained": model.metadata.get("how_trained"),
        "n": args.n, "seed": args.seed, "steps": steps, "sampler": args.sampler, "step_lr": step_lr,
        "batch_size": args.batch_size,
        "network_evaluations_per_structure": steps * (2 if args.sampler == "pc" else 1),
        "seconds_warm": round(stats["seconds"], 2), "structures_per_s_warm": round(stats["structures_per_s"], 3),
        "compile_overhead_s": round(max(first - per_batch, 0.0), 1),
        "neighbour_list_overflows": stats["overflow"], "structurally_valid_fraction": valid / len(crystals),
        "samples": os.path.relpath(out, HERE), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), jax "
                                        f"{jax.__version__}, {jax.devices()[0].platform}",
        "load_average_1min_at_end": os.getloadavg()[0],
    }
    record = HERE / f"sampling_{stem}.json"
    record.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.evaluate:
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "samples.extxyz"
            plain.write_bytes(gzip.decompress(out.read_bytes()))
            metrics = HERE / f"metrics_{stem}.json"
            cmd = [sys.executable, "-m", "atomsmith.cli.main", "evaluate", str(plain), "--reference", "perov_5:test", "--out", str(metrics),
                   "--force", "--quiet"]
            t1 = time.perf_counter()
            subprocess.run(cmd, check=True)
            result["evaluate_command"] = (f"gunzip -k experiments/diffusion/{out.name} && atomsmith evaluate "
                                          f"experiments/diffusion/{out.name[:-3]} --reference perov_5:test")
            result["evaluate_seconds"] = round(time.perf_counter() - t1, 1)
            data = json.loads(metrics.read_text())
            data["samples"] = f"experiments/diffusion/{out.name} (decompressed)"
            metrics.write_text(json.dumps(data, indent=2) + "\n")
            result["metrics"] = data
    record.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("model_how_trained", "metrics")}, indent=2))


if __name__ == "__main__":
    main()
