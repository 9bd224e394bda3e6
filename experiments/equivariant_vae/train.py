"""Train the equivariant VAE on the a-Si environments of the Gram-VAE experiment (same cells, same split).

    nice -n 10 python experiments/equivariant_vae/train.py [--steps 6000] [--frame moments] [--out DIR] [--ship]

Writes ``runs/eq_vae.ckpt`` (or ``DIR/eq_vae.ckpt``) (the trained model with a 16-component latent mixture fitted to the training
posterior) and ``runs/train_summary.json``; ``--ship`` also copies it to ``src/atomsmith/pretrained/eq_vae.ckpt``.
Resumes from ``runs/eq_vae.train.ckpt`` if interrupted. ``run.py`` evaluates it against the Gram VAE.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path


from atomsmith.generators.eq_vae import EnvironmentSet, default_config, train_eq_vae
from atomsmith.generators.gram_vae.data import load_cells
from atomsmith.generators.gram_vae.training import split_cells
from atomsmith.training.loop import TrainConfig

HERE = Path(__file__).resolve().parent
SHIP_PATH = HERE.parents[1] / "src" / "atomsmith" / "pretrained" / "eq_vae.ckpt"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="asi:20", help="training cells (see gram_vae.data.load_cells)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--latent-dim", type=int, default=18)
    parser.add_argument("--kl-weight", type=float, default=1e-3)
    parser.add_argument("--frame-weight", type=float, default=1.0)
    parser.add_argument("--hand-weight", type=float, default=0.0, help="handedness term (ablation: 1.0 with "
                        "--frame-weight 0.3)")
    parser.add_argument("--shape-weight", type=float, default=1.0)
    parser.add_argument("--weight-decay", type=float, default=1e-6, help="AdamW decoupled weight decay")
    parser.add_argument("--frame", default="moments", choices=("learned", "moments"),
                        help="frame construction (EqVAEConfig.frame): 'moments' (fixed, non-learned; the shipped "
                        "model) or 'learned' (the previous model)")
    parser.add_argument("--out", type=Path, default=HERE / "runs")
    parser.add_argument("--ship", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cells = load_cells(args.data, progress=None)
    splits = split_cells(cells, 8, 4.0, seed=0)  # the Gram-VAE experiment's split (by cell, seed 0)
    train, val = EnvironmentSet.of_silicon(splits.train), EnvironmentSet.of_silicon(splits.val)
    log(f"{args.data}: {len(train)} train / {len(val)} val environments")
    config = default_config()
    config = type(config)(**{**config.to_dict(), "latent_dim": args.latent_dim, "kl_weight": args.kl_weight,
                             "frame_weight": args.frame_weight, "hand_weight": args.hand_weight,
                             "shape_weight": args.shape_weight, "frame": args.frame})
    tc = TrainConfig(learning_rate=args.lr, max_steps=args.steps, warmup_steps=200, weight_decay=args.weight_decay,
                     eval_every=max(args.steps // 10, 1), checkpoint_every=max(args.steps // 20, 1))
    command = "python experiments/equivariant_vae/train.py " + shlex.join(sys.argv[1:])
    model, summary = train_eq_vae(train, val, config, tc, batch_size=args.batch_size,
                                  checkpoint_path=args.out / "eq_vae.train.ckpt", progress=False,
                                  metadata={"command": command})
    log(f"trained: {summary['steps']} steps in {summary['seconds']:.0f} s, val {summary['val']}")
    model = model.with_latent_mixture(train.vectors, n_components=16, seed=0)
    how = {"command": command, "data": {"source": args.data, "split_cells": dict(splits.cells),
                                        "n_train": len(train), "n_val": len(val), "n_neighbors": 8, "r_cut": 4.0},
           "train": {"steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                     "weight_decay": args.weight_decay},
           "seconds": summary["seconds"], "validation": summary["val"], "latent_mixture_components": 16,
           "results": "experiments/equivariant_vae/results.json"}
    model.save(args.out / "eq_vae.ckpt", {"how_trained": how})
    with open(args.out / "train_summary.json", "w") as handle:
        json.dump({k: v for k, v in summary.items()}, handle, indent=1, default=float)
    if args.ship:
        model.save(SHIP_PATH, {"how_trained": how})
        log(f"shipped {SHIP_PATH} ({SHIP_PATH.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
