"""Classifier-free guidance model: the shipped perov-5 diffusion model fine-tuned with heat_ref as an input.

One command (resumes from its training checkpoint if interrupted):

    nice -n 5 python experiments/guided/cfg_finetune.py --steps 3000

The unconditional model's parameters are grown (:func:`atomsmith.generators.diffusion.training.grow_params`: the
two new conditioning scalars - standardised heat_ref and a present flag - start with zero weights) and trained with
the shared loop on perov_5:train, heat_ref hidden in 20 % of the cells (``property_dropout``), so one network gives
the conditional and the unconditional score. Writes ``runs/perov5_cfg.ckpt`` (git-ignored) and
``cfg_finetune.json`` (losses, timing); the shipped copy is ``src/atomsmith/pretrained/perov-5-cfg.ckpt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from atomsmith import datasets
from atomsmith.generators.diffusion.training import train_diffusion
from atomsmith.pretrained import load_model
from atomsmith.training.loop import TrainConfig, count_params

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N cells per split (smoke runs)")
    parser.add_argument("--init", default="perov-5", help="model to start from: the unconditional shipped model "
                                                          "(grown) or an earlier conditional checkpoint (continued)")
    parser.add_argument("--summary", type=Path, default=HERE / "cfg_finetune.json")
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "perov5_cfg.ckpt")
    args = parser.parse_args()
    command = " ".join(["python experiments/guided/cfg_finetune.py"] + sys.argv[1:])

    base = load_model(args.init, kinds=("diffusion",))
    train = datasets.load("perov_5", "train", limit=args.limit)
    val = datasets.load("perov_5", "val", limit=args.limit)
    y = np.array([c.properties["heat_ref"] for c in train])
    config = base.config.with_properties(["heat_ref"], [y.mean()], [y.std()], dropout=args.dropout)
    if base.config.properties:  # continuing a conditional model: keep its standardisation
        config = base.config.with_properties(base.config.properties, base.config.property_mean,
                                             base.config.property_std, dropout=args.dropout)
    tc = TrainConfig(learning_rate=args.lr, max_steps=args.steps, warmup_steps=min(100, args.steps // 10),
                     eval_every=500, checkpoint_every=250, seed=args.seed)
    meta = {"how_trained": {"command": command, "dataset": "perov_5:train", "validation": "perov_5:val",
                            "init_from": f"{args.init} (grown with grow_params)", "n_train": len(train),
                            "batch_size": args.batch_size, "seed": args.seed, "property": "heat_ref",
                            "property_dropout": args.dropout}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model, result = train_diffusion(config, train, val, tc, batch_size=args.batch_size,
                                    checkpoint_path=args.out.with_suffix(".train.ckpt"), metadata=meta,
                                    progress=False, init_from=base.params)
    wall = time.perf_counter() - t0
    history = [h for h in result.history if "val_loss" in h]
    how = {**meta["how_trained"], "steps": int(result.state.step), "wall_time_s_last_call": round(wall, 1),
           "train_config": dataclasses.asdict(tc), "n_params": count_params(model.params),
           "final_validation": history[-1] if history else {}, "best_val_loss": result.best_metric}
    model.save(args.out, {"how_trained": how}, overwrite=True)
    summary = {"command": command, "wall_s": round(wall, 1), "steps": how["steps"], "n_params": how["n_params"],
               "best_val_loss": result.best_metric, "val_history": history,
               "base_model_val_loss": base.metadata.get("how_trained", {}).get("best_val_loss")}
    args.summary.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "val_history"}, default=float))


if __name__ == "__main__":
    main()
