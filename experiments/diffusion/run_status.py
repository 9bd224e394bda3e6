"""Where a diffusion training run stands, read from its training checkpoint's header (no JAX, no payload):
step, epoch, validation losses so far, running training losses; optionally the validation-loss curve as a PNG.

    python experiments/diffusion/run_status.py experiments/diffusion/runs/perov5_d3pm.train.ckpt [--plot curve.png]
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

MAGIC = b"ATOMSMITH-CKPT\n"


def read_header(path: Path) -> dict:
    """The JSON header of an atomsmith checkpoint (layout in ``atomsmith.training.checkpoint``)."""
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise SystemExit(f"error: {path} is not an atomsmith checkpoint")
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--plot", type=Path, help="write the validation-loss curve here (PNG)")
    args = parser.parse_args()
    meta = read_header(args.checkpoint)["metadata"]
    loop, tc = meta["loop"], meta["train_config"]
    history = loop["history"]
    val = [h for h in history if "val_loss" in h]
    train = [h for h in history if "train_loss" in h]
    step = max([h["step"] for h in history], default=0)
    print(f"{args.checkpoint}: step ~{step} of {tc['max_steps']}, epoch {loop['epoch']}, "
          f"best val loss {loop['best']:.4f}, finished {loop.get('finished', False)}")
    for h in val:
        print(f"  val @ {h['step']:6d}: loss {h['val_loss']:.4f}  coord {h['val_coord']:.4f}  "
              f"lattice {h['val_lattice']:.4f}  species {h['val_species']:.4f}")
    if train:
        last = train[-1]
        print(f"  train (running) @ {last['step']}: " + "  ".join(
            f"{k[6:]} {v:.4f}" for k, v in last.items() if k.startswith("train_")))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
        for ax, name in zip(axes, ("loss", "coord", "lattice", "species")):
            ax.plot([h["step"] for h in train], [h[f"train_{name}"] for h in train], lw=0.6, alpha=0.6,
                    label="train (running)")
            ax.plot([h["step"] for h in val], [h[f"val_{name}"] for h in val], "o-", ms=3, label="validation")
            ax.set_title(name)
            ax.set_xlabel("step")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
