"""perov_5 heat_ref benchmark: test MAE of the shared-encoder predictor next to two baselines.

One command (about 25 CPU-minutes on a quiet 2-core machine; nice it when sharing):

    nice -n 10 python experiments/predictors/perov5_heat_ref.py

Trains on the CDVAE train split, early-stops on val, reports test MAE (eV) of
  * the training mean,
  * composition-only models: ridge on element fractions (= the predictor's normaliser) and an MLP on fractions,
  * the equivariant predictor (shared encoder + mean-pooled scalar head, per-species normalisation, EMA).
Writes perov5_heat_ref.json, perov5_heat_ref_parity.png and the shipped checkpoint perov5_heat_ref.ckpt.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from common import (HERE, SCRATCH, composition_fractions, composition_mlp, environment, linear_composition,
                    parity_plot, write_json)

from atomsmith import datasets
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.predictors import PredictorConfig, PredictorData, evaluate, train_predictor
from atomsmith.predictors.targets import default_readout
from atomsmith.training.loop import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--irreps", default="32x0e+8x1o+4x2e")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--loss", default="mae")
    parser.add_argument("--limit", type=int, default=None, help="first N structures per split (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--tag", default="perov5_heat_ref")
    parser.add_argument("--resplit", type=int, default=None, metavar="SEED",
                        help="pool train+val and draw a new train/val split of the same sizes with this seed (the "
                             "test split is untouched); used for the independent judge of experiments/guided")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    splits = {s: datasets.load("perov_5", s, limit=args.limit) for s in ("train", "val", "test")}
    if args.resplit is not None:
        pool_ = splits["train"] + splits["val"]
        order = np.random.default_rng(args.resplit).permutation(len(pool_))
        n_val = len(splits["val"])
        splits["val"] = [pool_[i] for i in order[:n_val]]
        splits["train"] = [pool_[i] for i in order[n_val:]]
    y = {s: np.array([c.properties["heat_ref"] for c in cs]) for s, cs in splits.items()}
    x = {s: composition_fractions(cs) for s, cs in splits.items()}
    print(f"loaded {[len(v) for v in splits.values()]} structures in {time.perf_counter() - t0:.0f} s", flush=True)

    results: dict = {"dataset": "perov_5 (CDVAE split)" if args.resplit is None else
                     f"perov_5 (CDVAE test split; train+val re-split with seed {args.resplit})", "target": "heat_ref", "units": "eV",
                     "n": {s: len(v) for s, v in y.items()}, "baselines": {}}
    mean_pred = np.full_like(y["test"], y["train"].mean())
    results["baselines"]["train_mean"] = {"test_mae": float(np.mean(np.abs(mean_pred - y["test"])))}
    lin = linear_composition(x["train"], y["train"], x["test"])
    results["baselines"]["composition_linear"] = {"test_mae": float(np.mean(np.abs(lin - y["test"])))}
    t1 = time.perf_counter()
    mlp = composition_mlp(x["train"], y["train"], x["val"], y["val"], x["test"], seed=args.seed)
    results["baselines"]["composition_mlp"] = {"test_mae": float(np.mean(np.abs(mlp - y["test"]))),
                                               "wall_s": round(time.perf_counter() - t1, 1)}
    print("baselines", results["baselines"], flush=True)

    encoder = EncoderConfig(irreps_hidden=args.irreps, n_layers=args.layers, cutoff=args.cutoff,
                            avg_num_neighbors=40.0)
    readout = dataclasses.replace(default_readout("heat_ref"), width=args.width)
    config = PredictorConfig.for_target("heat_ref", encoder=encoder, readout=readout, loss=args.loss)
    data = {s: PredictorData.build(cs, config) for s, cs in splits.items()}
    tc = TrainConfig(learning_rate=args.lr, weight_decay=1e-5, warmup_steps=200, max_steps=args.steps,
                     ema_decay=0.99, eval_every=500, checkpoint_every=500, patience=6, seed=args.seed)
    ckpt_path = SCRATCH / f"{args.tag}.ckpt"  # shipped copy: src/atomsmith/pretrained/perov-5-heat-ref.ckpt
    split_note = ("train/val" if args.resplit is None else
                  f"train+val pooled and re-split with numpy default_rng({args.resplit}).permutation")
    meta = {"dataset": "perov_5", "train_split": "train", "val_split": "val", "split": split_note,
            "target": "heat_ref", "seed": args.seed, "how_trained": {"command": environment()["command"]}}
    t2 = time.perf_counter()
    trained = train_predictor(config, data["train"], data["val"], tc, batch_size=args.batch_size,
                              checkpoint_path=SCRATCH / f"{args.tag}.train.ckpt", output_path=ckpt_path,
                              metadata=meta, progress=False)
    wall = time.perf_counter() - t2
    test_metrics, pred = evaluate(trained.predictor, data["test"], batch_size=64)
    results["predictor"] = {"test_mae": test_metrics["mae"], "test_rmse": test_metrics["rmse"],
                            "test_r2": test_metrics["r2"], "best_val_mae": trained.fit.best_metric,
                            "steps": int(trained.fit.state.step), "stopped_early": trained.fit.stopped_early,
                            "n_params": trained.n_params, "train_wall_s": round(wall, 1),
                            "config": config.to_dict(), "train_config": dataclasses.asdict(tc),
                            "batch_size": args.batch_size,
                            "checkpoint": str(ckpt_path.relative_to(HERE.parents[1])),
                            "shipped_as": ("src/atomsmith/pretrained/perov-5-heat-ref.ckpt (registry name "
                                           "'perov-5-heat-ref'; copied by hand from the checkpoint above)"
                                           if args.tag == "perov5_heat_ref" else None),
                            "val_history": [h for h in trained.fit.history if "val_mae" in h]}
    results["target_mae_eV"] = 0.10
    results["met_target"] = bool(test_metrics["mae"] <= 0.10)
    results["environment"] = environment()
    write_json(args.out / f"{args.tag}.json", results)
    parity_plot([("composition MLP", y["test"], mlp),
                 (f"predictor (MAE {test_metrics['mae']:.3f} eV)", y["test"], np.asarray(pred))],
                args.out / f"{args.tag}_parity.png", "eV")
    print({k: v for k, v in results["predictor"].items() if k not in ("config", "val_history", "train_config")})


if __name__ == "__main__":
    main()
