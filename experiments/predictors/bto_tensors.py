"""BaTiO3 (400 K, 135-atom cells) Born effective charges and Raman tensors: learning curves and parity plots.

One command (data: the GPL-3.0 e3response ensemble, read from a data directory, never copied into the repo):

    nice -n 10 python experiments/predictors/bto_tensors.py --data-dir ../shared/data

The 50 structures are split deterministically (``atomsmith.datasets.split_indices(50, 0.2, seed=0)``): 10 held out
for testing, the first 5/10/20/40 of the other 40 for training. Each run trains for a fixed number of steps (there
is no spare data for early stopping at 40) and is scored on the 10 held-out cells by Cartesian-component RMSE, MAE and
R^2, next to the per-species-mean baseline (the mean Cartesian tensor of each element over the training atoms).
Writes TAG.json, TAG_learning_curves.png and TAG_parity.png (TAG = --tag, default bto_tensors).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from common import HERE, SCRATCH, environment, parity_plot, write_json

from atomsmith import datasets
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.predictors import PredictorConfig, PredictorData, evaluate, metrics, train_predictor
from atomsmith.predictors.targets import default_readout
from atomsmith.training.loop import TrainConfig

TARGETS = {"born_charges": "Born effective charges Z* (e)", "raman_tensors": "Raman tensors dχ/du (arb.)"}


def per_species_mean(train, test, target):
    """Predict each atom's tensor as the mean over training atoms of its element (full Cartesian tensor)."""
    numbers = np.concatenate([c.numbers for c in train])
    values = np.concatenate([np.asarray(c.site_properties[target]) for c in train])
    means = {z: values[numbers == z].mean(axis=0) for z in np.unique(numbers)}
    return [np.stack([means[z] for z in c.numbers]) for c in test]


def learning_curve_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.8), squeeze=False)
    for ax, (target, runs) in zip(axes[0], results.items()):
        ns = [r["n_train"] for r in runs]
        ax.plot(ns, [r["predictor"]["rmse"] for r in runs], "o-", label="equivariant predictor")
        ax.plot(ns, [r["per_species_mean"]["rmse"] for r in runs], "s--", label="per-species mean")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.set_xlabel("training structures (135 atoms each)")
        ax.set_ylabel("test component RMSE")
        ax.set_title(TARGETS[target], fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("ATOMSMITH_DATA_DIR", str(HERE.parents[2] / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[5, 10, 20, 40])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--irreps", default="32x0e+8x1o+8x1e+4x2e+4x2o")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--cutoff", type=float, default=4.5)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--tag", default="bto_tensors")
    parser.add_argument("--plot-only", action="store_true", help="redraw the learning curves from TAG.json")
    args = parser.parse_args()
    if args.plot_only:
        import json

        saved = json.loads((args.out / f"{args.tag}.json").read_text())
        learning_curve_plot(saved["runs"], args.out / f"{args.tag}_learning_curves.png")
        return

    try:
        cells = datasets.load("bto_400K", "all", data_dir=args.data_dir)
    except datasets.DatasetError as exc:
        raise SystemExit(f"BaTiO3 data not found ({exc}); pass --data-dir DIR with DIR/bto_400K/ (GPL-3.0, from "
                         "camml-lab/e3response)") from exc
    train_idx, test_idx = datasets.split_indices(len(cells), 0.2, seed=0)
    pool = [cells[i] for i in train_idx]
    test = [cells[i] for i in test_idx]
    results: dict = {"dataset": "bto_400K (50 cells x 135 atoms, DFT at 400 K; e3response)", "n_test": len(test),
                     "test_indices": test_idx.tolist(), "runs": {}}
    parity = []
    for target in args.targets:
        runs = []
        for n in args.sizes:
            train = pool[:n]
            encoder = EncoderConfig(irreps_hidden=args.irreps, n_layers=args.layers, cutoff=args.cutoff,
                                    avg_num_neighbors=27.0)
            readout = dataclasses.replace(default_readout(target), width=args.width)
            config = PredictorConfig.for_target(target, encoder=encoder, readout=readout, loss="mse")
            train_data = PredictorData.build(train, config)
            test_data = PredictorData.build(test, config)
            tc = TrainConfig(learning_rate=args.lr, weight_decay=1e-5, warmup_steps=50, max_steps=args.steps,
                             ema_decay=0.99, eval_every=0, checkpoint_every=250, seed=args.seed)
            tag = f"{args.tag}_{target}_n{n}"
            t0 = time.perf_counter()
            trained = train_predictor(config, train_data, None, tc, batch_size=args.batch_size,
                                      checkpoint_path=SCRATCH / f"{tag}.train.ckpt",
                                      output_path=SCRATCH / f"{tag}.ckpt",
                                      metadata={"dataset": "bto_400K", "target": target, "seed": args.seed,
                                                "train_indices": train_idx[:n].tolist()}, progress=False)
            wall = time.perf_counter() - t0
            model_metrics, pred = evaluate(trained.predictor, test_data, batch_size=2)
            baseline_pred = per_species_mean(train, test, target)
            n_comp = int(np.prod(config.readout.output_shape))
            baseline = metrics(baseline_pred, test_data.values, n_comp)
            train_metrics, _ = evaluate(trained.predictor, train_data, batch_size=2)
            run = {"n_train": n, "predictor": model_metrics, "per_species_mean": baseline,
                   "rmse_ratio_to_baseline": model_metrics["rmse"] / baseline["rmse"], "train_rmse":
                   train_metrics["rmse"], "steps": int(trained.fit.state.step), "train_wall_s": round(wall, 1),
                   "n_params": trained.n_params}
            runs.append(run)
            print(target, n, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.items()
                              if k not in ("predictor", "per_species_mean")},
                  "model", {k: round(v, 4) for k, v in model_metrics.items()},
                  "baseline", {k: round(v, 4) for k, v in baseline.items()}, flush=True)
            if n == max(args.sizes):
                parity.append((f"{target}, n={n}: RMSE {model_metrics['rmse']:.3f} "
                               f"(baseline {baseline['rmse']:.3f})", np.concatenate(test_data.values),
                               np.concatenate(pred)))
                results.setdefault("config", {})[target] = config.to_dict()
            results["runs"][target] = runs
            results["train_config"] = dataclasses.asdict(tc) | {"batch_size": args.batch_size}
            write_json(args.out / f"{args.tag}.json", results)  # partial results survive an interruption
    born = results["runs"].get("born_charges")
    if born:
        at40 = [r for r in born if r["n_train"] == 40]
        if at40:
            results["born_target_ratio"] = 1 / 3
            results["born_met_target"] = bool(at40[0]["rmse_ratio_to_baseline"] <= 1 / 3)
    results["environment"] = environment()
    write_json(args.out / f"{args.tag}.json", results)
    learning_curve_plot(results["runs"], args.out / f"{args.tag}_learning_curves.png")
    if parity:
        parity_plot(parity, args.out / f"{args.tag}_parity.png", "component")


if __name__ == "__main__":
    main()
