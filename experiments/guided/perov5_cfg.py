"""perov_5 classifier-free guidance on heat_ref: the fine-tuned conditional model (``cfg_finetune.py``) asked for the
10th / 50th / 90th percentile of the training heat_ref, judged by the independent predictor.

    python experiments/guided/perov5_cfg.py --model experiments/guided/runs/perov5_cfg.ckpt

For each target and guidance factor w (``--factors``; 1 = the conditional model alone) ``--n`` cells are drawn with
``conditions={"heat_ref": target}``; the same model with heat_ref hidden (unconditional) is the baseline. Scoring is
the one of ``perov5_heat_ref.py`` (validity; MAE |judge - target| over the valid samples).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from perov5_heat_ref import HERE, summarise

from atomsmith import datasets
from atomsmith.predictors import load_predictor
from atomsmith.pretrained import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="perov-5-cfg")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--factors", default="1,2,4")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge", type=Path, default=HERE / "judge_heat_ref.ckpt")
    parser.add_argument("--out", type=Path, default=HERE / "perov5_cfg.json")
    args = parser.parse_args()
    model = load_model(args.model, kinds=("diffusion",))
    if "heat_ref" not in model.config.properties:
        raise SystemExit(f"{args.model} was not trained with heat_ref as an input (see cfg_finetune.py)")
    guide = load_model("perov-5-heat-ref", kinds=("predictor",))  # reported only, never used for sampling here
    judge, _ = load_predictor(args.judge, target="heat_ref")
    y = np.array([c.properties["heat_ref"] for c in datasets.load("perov_5", "train")])
    targets = {f"p{p}": float(np.percentile(y, p)) for p in (10, 50, 90)}
    key = jax.random.PRNGKey(args.seed)
    results: dict = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "model": args.model,
                     "how_trained": model.metadata.get("how_trained", {}).get("command"), "steps": args.steps,
                     "n_per_run": args.n, "targets": targets, "runs": {}, "timing_s": {}}
    t0 = time.perf_counter()
    plain = model.sample(key, args.n, steps=args.steps)
    results["timing_s"]["unconditional"] = round(time.perf_counter() - t0, 1)
    for label, target in targets.items():
        results["runs"][f"{label}/unconditional"] = summarise(plain, target, judge, guide)
        for w in (float(x) for x in args.factors.split(",")):
            t0 = time.perf_counter()
            crystals = model.sample(key, args.n, steps=args.steps, conditions={"heat_ref": target}, cfg_scale=w)
            results["timing_s"][f"{label}/w={w:g}"] = round(time.perf_counter() - t0, 1)
            r = results["runs"][f"{label}/w={w:g}"] = summarise(crystals, target, judge, guide)
            print(f"{label} w={w:g}: valid {r['valid']:.2f} judge MAE {r['judge_mae']:.3f} (unconditional "
                  f"{results['runs'][f'{label}/unconditional']['judge_mae']:.3f})", flush=True)
    for r in results["runs"].values():
        r.pop("_judge_values", None)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
