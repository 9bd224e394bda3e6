"""Gram-matrix VAE of a-Si local environments: the reference study reproduced, then improved.

    nice -n 10 python experiments/gram_vae/run.py                 # everything (about 30-60 min on 2 busy cores)
    python experiments/gram_vae/run.py --ship                     # also write src/atomsmith/pretrained/gram_vae.ckpt

Data: the main a-Si set of experiments/a_si_data (20 SW melt-quench cells of 512 atoms, seed 0, read from the
atomsmith cache; ``--data`` takes any source of :func:`atomsmith.generators.gram_vae.data.load_cells`), split by
cell into train / validation / test (16 / 2 / 2 cells). Environments: the 8 nearest neighbours within 4 Å.

Steps:
1. train the reference configuration and three cumulative changes (same data, steps, batch, learning rate);
2. held-out metrics for each: reconstruction RMSD after optimal alignment (O(3) + assignment) from the encoder
   mean and after latent refinement; Wasserstein-1 distances between generated and held-out neighbour distances
   and bond angles; fraction of generated environments with no pair closer than 2.0 Å;
3. infilling with 7 / 6 / 5 fixed atoms (RMSD of the generated atoms against the held-out truth), against a
   retrieval baseline (the best-fitting training environment) and the reference model;
4. a 64-atom cell built by repeated infilling, relaxed briefly with SW, compared with melt-quench cells and with
   a random start given the same relaxation;
5. figures (PNG) and results.json beside this script; README.md is rewritten with the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np

from atomsmith.generators.environments import ops
from atomsmith.generators.environments.metrics import free_atom_errors, free_atom_rmsd, generation_metrics, \
    reconstruction_rmsd, retrieval_infill
from atomsmith.generators.gram_vae import GramVAE, InfillConfig, improved_config, infill, reference_config
from atomsmith.generators.gram_vae.build_cell import BuildConfig, box_length, build_cell, sw_relax
from atomsmith.generators.gram_vae.data import load_cells
from atomsmith.generators.gram_vae.infill import refine_reconstruction
from atomsmith.generators.gram_vae.training import distance_ordered, split_cells, train_gram_vae
from atomsmith.training.loop import TrainConfig

HERE = Path(__file__).resolve().parent
SHIP_PATH = HERE.parents[1] / "src" / "atomsmith" / "pretrained" / "gram_vae.ckpt"

#: Cumulative changes from the reference study (each row adds one change to the previous one).
IMPROVED = improved_config()
VARIANTS = {
    "reference": reference_config(),
    "+coords decoder": dataclasses.replace(reference_config(), decoder="coords"),
    "+shell-perm loss": dataclasses.replace(reference_config(), decoder="coords", loss="shell-perm",
                                            augment="shells"),
    "improved": IMPROVED,
    "improved without augmentation": dataclasses.replace(IMPROVED, augment="none"),
}
DESCRIPTION = {
    "reference": "36-28-18-8 tanh MLP encoder, mirrored decoder of the 36 normalised Gram entries, latent 8, "
                 "(G - G~)^2 + sum KL, random permutation copies of all neighbour labels",
    "+coords decoder": "decoder outputs 8x3 coordinates, compared through their Gram matrix (PSD, rank <= 3)",
    "+shell-perm loss": "loss = min over relabellings inside distance blocks 4+4 (576); augmentation inside blocks",
    "improved": "MLP 256-256 SiLU, latent 18 (= 3n - 6), KL weight 1e-3; samples from a 16-component Gaussian "
                "mixture fitted to the training posterior means",
    "improved without augmentation": "the same without the within-block permutation augmentation (ablation)",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------- metrics
def infill_study(model: GramVAE, test: np.ndarray, library: np.ndarray, ks, n_envs: int, seed: int,
                 baseline_model: GramVAE | None = None) -> dict:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(test), size=min(n_envs, len(test)), replace=False)
    out = {}
    examples = {}
    for k in ks:
        rows = {"vae": [], "vae_fit": [], "vae_best_of_8": [], "retrieval": [], "reference": []}
        bonded = {"vae": [], "retrieval": [], "reference": []}  # errors of free atoms bonded to the centre
        for j, idx in enumerate(chosen):
            env = test[idx]
            held = rng.permutation(len(env))[:k]
            fixed, free = env[held], np.delete(env, held, axis=0)
            is_bond = np.linalg.norm(free, axis=1) < 2.85
            preds = {"vae": infill(model, fixed, 1, jax.random.PRNGKey(seed * 1000 + j), InfillConfig(restarts=8))}
            rows["vae_fit"].append(float(preds["vae"].fit_rmsd[0]))
            preds = {name: p.generated[0] for name, p in preds.items()}
            several = infill(model, fixed, 8, jax.random.PRNGKey(seed * 1000 + j + 500), InfillConfig(restarts=1))
            rows["vae_best_of_8"].append(min(free_atom_rmsd(g, free) for g in several.generated))
            preds["retrieval"] = retrieval_infill(fixed, library)
            if baseline_model is not None:
                preds["reference"] = infill(baseline_model, fixed, 1, jax.random.PRNGKey(seed * 1000 + j),
                                            InfillConfig(restarts=8)).generated[0]
            for name, gen in preds.items():
                err = free_atom_errors(gen, free)
                rows[name].append(float(np.sqrt(np.mean(err ** 2))))
                bonded[name].extend(err[is_bond].tolist())
            if j < 1:
                examples[k] = {"fixed": fixed, "free": free, "generated": preds["vae"]}
        out[str(k)] = {f"{name}_{stat}": float(fn(v)) for name, v in rows.items() if v
                       for stat, fn in (("mean", np.mean), ("median", np.median))}
        out[str(k)].update({f"{name}_bonded_rmse": float(np.sqrt(np.mean(np.square(v)))) for name, v in
                            bonded.items() if v})
        out[str(k)]["n_bonded_free_atoms"] = len(bonded["vae"])
        out[str(k)]["n_environments"] = len(chosen)
        log(f"infill k={k}: " + ", ".join(f"{a}={b:.3f}" for a, b in out[str(k)].items()))
    return out, examples


# ----------------------------------------------------------------------------------------------- figures
def _scatter(ax, env, color, label=None, size=30, marker="o"):
    ax.scatter(env[:, 0], env[:, 1], env[:, 2], c=color, s=size, label=label, marker=marker, depthshade=False)


def _frame(ax, title):
    ax.scatter([0], [0], [0], c="black", s=60)
    ax.set_title(title, fontsize=8)
    ax.set_xlim(-4, 4), ax.set_ylim(-4, 4), ax.set_zlim(-4, 4)
    ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])


def figures(out: Path, test, recon, samples, frames, infill_examples, dist_data, cell_data) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    # reconstructions
    fig = plt.figure(figsize=(12, 3.2))
    for i in range(4):
        ax = fig.add_subplot(1, 4, i + 1, projection="3d")
        al = ops.align(recon[i], test[i])
        _scatter(ax, test[i], "tab:blue", "held-out")
        _scatter(ax, recon[i] @ al.rotation, "tab:orange", "reconstruction", marker="x", size=40)
        _frame(ax, f"RMSD {al.rmsd:.2f} Å")
    fig.axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Reconstruction of held-out environments (improved model, aligned in O(3))")
    fig.savefig(out / "fig_reconstruction.png", dpi=110), plt.close(fig)
    written.append("fig_reconstruction.png")
    # generated samples
    fig = plt.figure(figsize=(12, 3.2))
    for i in range(4):
        ax = fig.add_subplot(1, 4, i + 1, projection="3d")
        d = np.linalg.norm(samples[i], axis=1)
        _scatter(ax, samples[i], np.where(d < 2.85, "tab:red", "tab:gray"))
        _frame(ax, f"sample {i} (red: bonded < 2.85 Å)")
    fig.suptitle("Generated environments (improved model)")
    fig.savefig(out / "fig_samples.png", dpi=110), plt.close(fig)
    written.append("fig_samples.png")
    # distributions
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, (dist, ang) in dist_data.items():
        axes[0].hist(dist, bins=80, range=(1.8, 4.2), density=True, histtype="step", label=name)
        axes[1].hist(ang, bins=90, range=(40, 180), density=True, histtype="step", label=name)
    axes[0].set_xlabel("centre-neighbour distance (Å)"), axes[1].set_xlabel("bond angle at centre (deg, < 2.85 Å)")
    axes[0].legend(fontsize=7)
    fig.tight_layout(), fig.savefig(out / "fig_distributions.png", dpi=110), plt.close(fig)
    written.append("fig_distributions.png")
    # interpolation
    fig = plt.figure(figsize=(2.2 * len(frames), 2.6))
    for i, f in enumerate(frames):
        ax = fig.add_subplot(1, len(frames), i + 1, projection="3d")
        d = np.linalg.norm(f, axis=1)
        _scatter(ax, f, np.where(d < 2.85, "tab:red", "tab:gray"))
        _frame(ax, f"t = {i / (len(frames) - 1):.2f}")
    fig.suptitle("Latent interpolation between two held-out environments (frames aligned)")
    fig.savefig(out / "fig_interpolation.png", dpi=110), plt.close(fig)
    written.append("fig_interpolation.png")
    # infilling
    fig = plt.figure(figsize=(10, 3.4))
    for i, (k, ex) in enumerate(sorted(infill_examples.items(), reverse=True)):
        ax = fig.add_subplot(1, len(infill_examples), i + 1, projection="3d")
        _scatter(ax, ex["fixed"], "tab:blue", "fixed")
        _scatter(ax, ex["free"], "tab:green", "truth", marker="s")
        _scatter(ax, ex["generated"], "tab:orange", "generated", marker="x", size=50)
        _frame(ax, f"k = {k} fixed, RMSD {free_atom_rmsd(ex['generated'], ex['free']):.2f} Å")
    fig.axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Infilling: hold k atoms of a held-out environment, generate the rest")
    fig.savefig(out / "fig_infill.png", dpi=110), plt.close(fig)
    written.append("fig_infill.png")
    # cells
    if cell_data:
        from atomsmith.metrics.amorphous import bond_angles, pair_distribution

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for name, cells in cell_data.items():
            r, g = pair_distribution(cells, r_max=6.0, n_bins=120)
            axes[0].plot(r, g, label=name)
            ang = np.concatenate([bond_angles(c) for c in cells])
            axes[1].hist(ang, bins=60, range=(40, 180), density=True, histtype="step", label=name)
        axes[0].set_xlabel("r (Å)"), axes[0].set_ylabel("g(r)"), axes[1].set_xlabel("bond angle (deg)")
        axes[0].legend(fontsize=7)
        fig.tight_layout(), fig.savefig(out / "fig_cells.png", dpi=110), plt.close(fig)
        written.append("fig_cells.png")
    return written


# ----------------------------------------------------------------------------------------------- cells
def random_cell(n_atoms: int, density: float, min_distance: float, seed: int):
    from atomsmith.physics.melt_quench import random_start
    from atomsmith.structures.crystal import Crystal

    box = box_length(n_atoms, density)
    pos = random_start(np.random.default_rng(seed), n_atoms, box, min_distance)
    return Crystal.from_cartesian(np.eye(3) * box, pos, np.full(n_atoms, 14))


def cell_study(model: GramVAE, reference_cells, n_cells: int, relax_steps: int) -> tuple[dict, dict]:
    from atomsmith.metrics.amorphous import amorphous_statistics
    from atomsmith.physics import stillinger_weber as sw

    built, built_raw, random_raw, random_relaxed, summaries = [], [], [], [], []
    for seed in range(n_cells):
        raw, relaxed, summary = build_cell(model, BuildConfig(n_atoms=64, relax_steps=relax_steps, seed=seed),
                                           progress=None)
        built_raw.append(raw), built.append(relaxed), summaries.append(summary)
        log(f"built cell {seed}: {summary}")
        random_raw.append(random_cell(64, 2.29, 2.1, seed))
        rnd, info = sw_relax(random_raw[-1], relax_steps)
        random_relaxed.append(rnd)
        log(f"random start {seed} relaxed the same way: {info}")
    sets = {"melt-quench (SW)": list(reference_cells), "VAE infilling + SW relax": built,
            "VAE infilling, unrelaxed": built_raw, "random start + same SW relax": random_relaxed,
            "random start (min. distance 2.1 Å), unrelaxed": random_raw}
    stats = {}
    for name, cells in sets.items():
        s = amorphous_statistics(cells).as_dict()
        s["energy_per_atom_eV"] = float(np.mean([sw.evaluate(c)["energy"] / c.n_atoms for c in cells]))
        stats[name] = s
    return {"statistics": stats, "build_summaries": summaries, "relax_steps": relax_steps}, \
        {k: v for k, v in sets.items() if "unrelaxed" not in k}


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="asi:20", help="training cells (see load_cells)")
    parser.add_argument("--cells64", default="asi:16:64", help="melt-quench 64-atom cells for the comparison")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-eval", type=int, default=1000, help="held-out environments evaluated")
    parser.add_argument("--n-refine", type=int, default=300, help="held-out environments refined")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-infill", type=int, default=60)
    parser.add_argument("--n-build", type=int, default=4)
    parser.add_argument("--relax-steps", type=int, default=300)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--ship", action="store_true", help="write the improved model to the package")
    args = parser.parse_args()
    t_start = time.time()
    out = args.out
    (out / "runs").mkdir(parents=True, exist_ok=True)

    cells = load_cells(args.data, progress=log)
    splits = split_cells(cells, 8, 4.0, seed=0)
    train, val = splits.train, splits.val
    test = distance_ordered(splits.test).astype(np.float64)
    log(f"{args.data}: {len(cells)} cells -> {len(train)} / {len(val)} / {len(test)} environments "
        f"({splits.dropped} atoms with < 8 neighbours within 4 Å skipped)")
    evaluated = test[np.random.default_rng(0).permutation(len(test))[:args.n_eval]]
    results = {"command": "python experiments/gram_vae/run.py " + shlex.join(sys.argv[1:]),
               "data": {"source": args.data, "n_cells": len(cells), "split_cells": dict(splits.cells),
                        "n_train": len(train), "n_val": len(val), "n_test": len(test), "dropped": splits.dropped,
                        "n_neighbors": 8, "r_cut": 4.0},
               "train": {"steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr},
               "generation_n_samples": args.n_samples,
               "platform": {"python": platform.python_version(), "jax": jax.__version__,
                            "machine": platform.machine()}}
    # held-out data against itself: the floor of the generation metrics
    half = len(evaluated) // 2
    results["held_out_floor"] = generation_metrics(evaluated[:half], evaluated[half:])
    results["held_out_floor"]["note"] = "one half of the held-out environments against the other half"
    pairs = reconstruction_rmsd(evaluated[:200], evaluated[200:400])
    results["held_out_floor"]["random_pair_rmsd_mean"] = float(pairs.mean())
    results["held_out_floor"]["random_pair_rmsd_note"] = ("aligned RMSD between two different held-out "
                                                          "environments: what a reconstruction that ignored its "
                                                          "input would score")
    results["variants"] = {}
    models = {}
    for name in args.variants.split(","):
        config = VARIANTS[name]
        tc = TrainConfig(learning_rate=args.lr, max_steps=args.steps, warmup_steps=200,
                         eval_every=max(args.steps // 10, 1), checkpoint_every=max(args.steps // 10, 1))
        slug = name.replace("+", "plus_").replace(" ", "_").replace("-", "_")
        log(f"training {name}: {config}")
        model, summary = train_gram_vae(train, val, config, tc, batch_size=args.batch_size,
                                        checkpoint_path=out / "runs" / f"{slug}.train.ckpt", progress=False,
                                        metadata={"variant": name})
        if name.startswith("improved"):
            model = model.with_latent_mixture(train, n_components=16, seed=0)
        models[name] = model
        recon = model.reconstruct(evaluated)
        rmsd = reconstruction_rmsd(recon, evaluated)
        sub = evaluated[:args.n_refine]
        refined = reconstruction_rmsd(refine_reconstruction(model, sub), sub)
        key = jax.random.PRNGKey(1)
        row = {"description": DESCRIPTION[name], "config": config.to_dict(), "n_params": summary["n_params"],
               "train_seconds": round(summary["seconds"], 1), "validation": summary["val"],
               "recon_rmsd_mean": float(rmsd.mean()), "recon_rmsd_median": float(np.median(rmsd)),
               "recon_rmsd_below_0.1A": float(np.mean(rmsd < 0.1)),
               "refined_rmsd_mean": float(refined.mean()), "refined_rmsd_median": float(np.median(refined)),
               "refined_rmsd_below_0.1A": float(np.mean(refined < 0.1)),
               "generation_prior": generation_metrics(model.sample_environments(key, args.n_samples,
                                                                                 source="prior"), evaluated)}
        if model.latent_mixture is not None:
            row["generation_mixture"] = generation_metrics(model.sample_environments(key, args.n_samples),
                                                           evaluated)
        results["variants"][name] = row
        log(f"{name}: recon {row['recon_rmsd_mean']:.3f} Å, refined {row['refined_rmsd_mean']:.3f} Å, "
            f"prior samples {row['generation_prior']}")
        model.save(out / "runs" / f"{slug}.ckpt")
    best = models.get("improved") or models[list(models)[-1]]
    reference = models.get("reference")

    log("infilling study")
    library = distance_ordered(train)[np.random.default_rng(1).permutation(len(train))[:150]].astype(np.float64)
    results["infill"], examples = infill_study(best, evaluated, library, (7, 6, 5), args.n_infill, seed=0,
                                               baseline_model=reference)
    results["infill"]["note"] = ("RMSD (Å) of the generated atoms against the held-out truth in the fixed atoms' "
                                 "frame (best assignment); k random atoms of each held-out environment fixed; one "
                                 "completion (best of 8 latent restarts by the fit objective); retrieval = best "
                                 "partially aligned of 150 training environments; reference = the reference model. "
                                 "Bonded: RMS error over the free atoms closer than 2.85 Å to the centre (the "
                                 "missing bonds). Best of 8: the closest of 8 independent completions (single "
                                 "restart each) to the truth, an oracle choice that measures whether the truth is "
                                 "among the completions the model proposes")
    log("cell building")
    cells64 = load_cells(args.cells64, progress=log) if args.n_build else []
    cell_results, cell_sets = cell_study(best, cells64, args.n_build, args.relax_steps) if args.n_build \
        else ({}, {})
    results["cells"] = cell_results

    frames = best.interpolate(evaluated[0], evaluated[1], steps=7)
    samples = best.sample_environments(jax.random.PRNGKey(2), args.n_samples)
    dist_data = {"held-out": (ops.neighbor_distances(evaluated).ravel(), ops.bond_angles(evaluated))}
    for name, model in models.items():
        s = model.sample_environments(jax.random.PRNGKey(1), args.n_samples)
        dist_data[f"{name} samples"] = (ops.neighbor_distances(s).ravel(), ops.bond_angles(s))
    results["figures"] = figures(out, evaluated, best.reconstruct(evaluated[:4]), samples, frames, examples,
                                 dist_data, cell_sets)
    results["seconds_total"] = round(time.time() - t_start, 1)
    with open(out / "results.json", "w") as handle:
        json.dump(results, handle, indent=2)
    write_readme(out, results)
    if args.ship:
        how = {"command": results["command"], "data": results["data"], "train": results["train"],
               "variant": "improved", "config": IMPROVED.to_dict(),
               "test_reconstruction_rmsd_mean": results["variants"]["improved"]["recon_rmsd_mean"],
               "latent_mixture_components": 16, "results": "experiments/gram_vae/results.json"}
        best.save(SHIP_PATH, {"how_trained": how})
        log(f"shipped {SHIP_PATH} ({SHIP_PATH.stat().st_size / 1024:.0f} kB)")
    log(f"done in {results['seconds_total']:.0f} s")


def write_readme(out: Path, r: dict) -> None:
    lines = ["# Gram-matrix VAE of a-Si local environments", "",
             "Reference study reproduced (36-28-18-8 tanh VAE on normalised Gram matrices, latent 8, permutation "
             "copies), then improved step by step. Everything below comes from one command:", "",
             f"    {r['command']}", "",
             f"Data: {r['data']['source']} ({r['data']['n_cells']} SW melt-quench cells; split by cell "
             f"{r['data']['split_cells']}): {r['data']['n_train']} training, {r['data']['n_val']} validation, "
             f"{r['data']['n_test']} test environments (8 nearest neighbours within 4 Å). Training: "
             f"{r['train']['steps']} steps, batch {r['train']['batch_size']}, peak lr {r['train']['learning_rate']} "
             "(shared loop: AdamW, cosine, EMA; best validation ELBO kept).", "",
             "## Held-out results", "",
             "| variant | recon RMSD mean / median (Å) | refined RMSD mean / median (Å) | W1 dist (Å) "
             "| W1 angle (°) | no pair < 2 Å | params |",
             "|---|---|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        g = v.get("generation_mixture", v["generation_prior"])
        src = " (mixture)" if "generation_mixture" in v else ""
        lines.append(f"| {name} | {v['recon_rmsd_mean']:.3f} / {v['recon_rmsd_median']:.3f} | "
                     f"{v['refined_rmsd_mean']:.3f} / {v['refined_rmsd_median']:.3f} | "
                     f"{g['w1_neighbor_distance']:.3f}{src} | {g['w1_bond_angle']:.2f} | "
                     f"{100 * g['fraction_no_pair_below_2A']:.1f} % | {v['n_params']} |")
    f = r["held_out_floor"]
    lines += [f"| another held-out environment (no model) | {f['random_pair_rmsd_mean']:.3f} | – | – | – | – | – |",
              f"| held-out vs held-out (floor) | – | – | {f['w1_neighbor_distance']:.3f} | "
              f"{f['w1_bond_angle']:.2f} | {100 * f['fraction_no_pair_below_2A']:.1f} % | – |", ""]
    lines += ["Changes (cumulative): " + "; ".join(f"**{k}**: {v['description']}" for k, v in r["variants"].items()),
              "",
              "Reconstruction: decode the encoder mean; *refined*: then optimise the latent against the input's "
              "Gram matrix (semi-amortised inference, same objective as training). RMSD after the optimal "
              "orthogonal map (reflections allowed: a Gram matrix cannot tell mirror images apart) and the optimal "
              f"assignment of neighbours. Generation metrics: {r['generation_n_samples']} samples vs the held-out "
              "environments; the "
              "improved model's prior-sampled numbers are in results.json (`generation_prior`).", "",
              "## Infilling (improved model)", "",
              "| k fixed | VAE (Å) | VAE, best of 8 (oracle) | retrieval baseline (Å) | reference model (Å) | "
              "bonded free atoms: VAE / retrieval / reference (Å) | fit of held atoms (Å) |",
              "|---|---|---|---|---|---|---|"]
    for k in ("7", "6", "5"):
        x = r["infill"][k]
        lines.append(f"| {k} | {x['vae_mean']:.3f} (median {x['vae_median']:.3f}) | "
                     f"{x['vae_best_of_8_mean']:.3f} | {x['retrieval_mean']:.3f} | "
                     f"{x.get('reference_mean', float('nan')):.3f} | {x.get('vae_bonded_rmse', float('nan')):.3f} / "
                     f"{x.get('retrieval_bonded_rmse', float('nan')):.3f} / "
                     f"{x.get('reference_bonded_rmse', float('nan')):.3f} ({x['n_bonded_free_atoms']} atoms) | "
                     f"{x['vae_fit_mean']:.3f} |")
    lines += ["", r["infill"]["note"], ""]
    if r.get("cells"):
        lines += ["## A 64-atom cell built by repeated infilling", "",
                  f"SW FIRE relaxation of {r['cells']['relax_steps']} steps (fixed cell, 2.29 g/cm^3).", "",
                  "| cells | coordination | 4-fold | angle mean ± std (°) | first g(r) peak (Å) | E (eV/atom) |",
                  "|---|---|---|---|---|---|"]
        for name, s in r["cells"]["statistics"].items():
            lines.append(f"| {name} ({s['n_cells']}) | {s['coordination_mean']:.2f} | "
                         f"{100 * s['coordination_fractions'].get('4', 0.0):.0f} % | {s['angle_mean']:.1f} ± "
                         f"{s['angle_std']:.1f} | {s['first_peak']:.3f} | {s['energy_per_atom_eV']:.3f} |")
        lines.append("")
    lines += ["## Figures", ""] + [f"![{f}]({f})" for f in r["figures"]] + [""]
    notes = HERE / "notes.md"  # hand-written discussion of these numbers (kept separate so reruns keep it)
    if notes.exists():
        lines += ["", notes.read_text().strip(), ""]
    (out / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
