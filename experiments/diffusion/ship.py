"""Write a shipped diffusion checkpoint from a training state: the best EMA weights, how they were trained (the
run's command, steps, validation history, ledger) and the sampler settings chosen by a sampler study.

    python experiments/diffusion/ship.py experiments/diffusion/runs/perov5_d3pm.train.ckpt \\
        --out src/atomsmith/pretrained/perov-5.ckpt --step-lr 1e-5 --step-lr-csp 3e-5 \\
        --note "interim: step 43,000 of a 100,000-step run" --results experiments/diffusion/README.md
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="training checkpoint (kind train-state:diffusion)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--step-lr", type=float, required=True, help="corrector step size for generation")
    parser.add_argument("--step-lr-csp", type=float, required=True, help="corrector step size for structure prediction")
    parser.add_argument("--note", default="", help="free text stored as how_trained.note")
    parser.add_argument("--results", default="experiments/diffusion/README.md")
    parser.add_argument("--ledger", default="experiments/diffusion/runs/LEDGER.md")
    args = parser.parse_args()

    from atomsmith.generators.diffusion.model import DiffusionModel
    from atomsmith.training import checkpoint as ckpt
    from atomsmith.training.loop import count_params

    meta = ckpt.read_header(args.state)["metadata"]
    loop = meta["loop"]
    model = DiffusionModel.load(args.state)  # the best EMA parameters
    val = [h for h in loop["history"] if "val_loss" in h]
    best = min(val, key=lambda h: h["val_loss"]) if val else {}
    steps = max((h["step"] for h in loop["history"]), default=0)
    how = {**meta.get("how_trained", {}), "steps": steps, "epochs": loop["epoch"], "n_params": count_params(model.params),
           "train_config": meta["train_config"], "best_validation": best, "last_validation": val[-1] if val else {},
           "best_val_loss": loop["best"], "training_state": str(args.state), "ledger": args.ledger,
           "results": args.results, "note": args.note}
    sampler = {"step_lr": args.step_lr, "step_lr_csp": args.step_lr_csp,
               "chosen_by": f"corrector step-size study, {args.results}"}
    model.metadata = {k: v for k, v in model.metadata.items() if k not in ("loop", "train_config")}
    path = model.save(args.out, {"how_trained": how, "sampler": sampler}, overwrite=True)
    print(f"wrote {path}: {how['n_params']} parameters, step {steps}, best val loss {loop['best']:.4f} "
          f"(at step {best.get('step')}), sampler {sampler}")


if __name__ == "__main__":
    main()
