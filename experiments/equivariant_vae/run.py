"""Equivariant VAE vs Gram VAE on the same held-out a-Si environments.

    nice -n 10 python experiments/equivariant_vae/train.py --steps 4500 --frame moments --ship   # the model
    nice -n 10 python experiments/equivariant_vae/run.py --n-infill 40 --model eq-vae           # ~15 min

Data and split are the Gram-VAE experiment's (experiments/gram_vae/run.py): 20 SW melt-quench cells of 512 atoms,
split by cell 16 / 2 / 2 with seed 0, environments = 8 nearest neighbours within 4 Å, the same 1000 evaluated
test environments and the same infilling tasks. Models: the equivariant VAE of ``runs/eq_vae.ckpt`` (default: the
shipped ``eq-vae``) and the shipped ``gram-vae``. Metrics (shared module
:mod:`atomsmith.generators.environments.metrics`):

* reconstruction RMSD after the optimal O(3) map and assignment (both models), and for the equivariant VAE also
  in the input's own frame (assignment only, no rotation); after latent refinement on a subset;
* mirror-image recovery: reconstruct an environment X and its mirror image MX, and check with *proper* rotations
  only whether each reconstruction is closer to its own input than to the other's (chiral environments only);
* samples: W1 of neighbour distances and bond angles against the held-out set, fraction with no pair < 2 Å;
* infilling: RMSD of the generated atoms against the held-out truth for k = 7, 6, 5 fixed atoms.

Writes results.json, README.md and fig_comparison.png beside this script.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np

from atomsmith.generators.environments import metrics as em
from atomsmith.generators.environments import ops
from atomsmith.generators.environments import interpolation as li
from atomsmith.generators.eq_vae import EqVAE, infill as eq_infill, refine_reconstruction as eq_refine
from atomsmith.generators.gram_vae import InfillConfig, infill as gram_infill
from atomsmith.generators.gram_vae.data import load_cells
from atomsmith.generators.gram_vae.infill import refine_reconstruction as gram_refine
from atomsmith.generators.gram_vae.training import distance_ordered, split_cells
from atomsmith.pretrained import resolve_eq_vae, resolve_gram_vae

HERE = Path(__file__).resolve().parent
MIRROR = np.diag([1.0, 1.0, -1.0])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stats(values) -> dict:
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()), "median": float(np.median(values)), "n": int(len(values))}


def mirror_study(model, envs: np.ndarray, chiral_threshold: float) -> dict:
    """Handedness of reconstructions of ``envs`` and of their mirror images (proper rotations only)."""
    mirrored = envs @ MIRROR
    chirality = em.reconstruction_rmsd(envs, mirrored, allow_reflection=False)  # 0 for an achiral environment
    chiral = chirality > chiral_threshold
    rec, rec_m = model.reconstruct(envs[chiral]), model.reconstruct(mirrored[chiral])
    right, rmsd_m = [], []
    for x, mx, r, rm in zip(envs[chiral], mirrored[chiral], rec, rec_m):
        own, other = ops.aligned_rmsd(r, x, False), ops.aligned_rmsd(r, mx, False)
        own_m, other_m = ops.aligned_rmsd(rm, mx, False), ops.aligned_rmsd(rm, x, False)
        right += [own < other, own_m < other_m]
        rmsd_m.append(own_m)
    return {"recovered_fraction": float(np.mean(right)), "so3_rmsd_of_mirror_reconstruction": stats(rmsd_m),
            "n_chiral": int(chiral.sum()), "n_tested": len(envs),
            "chirality_rmsd_mean": float(chirality.mean())}


def infill_study(models: dict, evaluated: np.ndarray, library: np.ndarray, ks, n_envs: int, seed: int,
                 restarts: int) -> dict:
    out = {str(k): {name: [] for name in [*models, "retrieval"]} for k in ks}
    bonded = {str(k): {name: [] for name in [*models, "retrieval"]} for k in ks}
    fits = {str(k): {name: [] for name in models} for k in ks}
    for j, (k, idx, held) in enumerate(em.infill_tasks(evaluated, ks, n_envs, seed)):
        env = evaluated[idx]
        fixed, free = env[held], np.delete(env, held, axis=0)
        is_bond = np.linalg.norm(free, axis=1) < 2.85
        preds = {}
        for name, (model, fn) in models.items():
            result = fn(model, fixed, 1, jax.random.PRNGKey(seed * 1000 + j), InfillConfig(restarts=restarts))
            preds[name] = result.generated[0]
            fits[str(k)][name].append(float(result.fit_rmsd[0]))
        preds["retrieval"] = em.retrieval_infill(fixed, library)
        for name, gen in preds.items():
            err = em.free_atom_errors(gen, free)
            out[str(k)][name].append(float(np.sqrt(np.mean(err ** 2))))
            bonded[str(k)][name].extend(err[is_bond].tolist())
    result = {}
    for k in out:
        result[k] = {name: {**stats(v), "bonded_rmse": float(np.sqrt(np.mean(np.square(bonded[k][name]))))
                            if bonded[k][name] else None,
                            **({"fit_rmsd_mean": float(np.mean(fits[k][name]))} if name in fits[k] else {})}
                     for name, v in out[k].items()}
        log(f"infill k={k}: " + ", ".join(f"{n}={r['mean']:.3f}" for n, r in result[k].items()))
    return result


def figure(out: Path, r: dict, dist_data: dict, trajectory) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    names = ["gram-vae", "eq-vae"]
    labels = ["recon (O(3))", "refined (O(3))", "infill k=7", "infill k=6", "infill k=5"]
    for i, name in enumerate(names):
        rec = r["reconstruction"][name]
        vals = [rec["aligned"]["mean"], rec["refined"]["mean"]] + [r["infill"][k][name]["mean"] for k in "765"]
        axes[0].bar(np.arange(len(vals)) + 0.38 * (i - 0.5), vals, width=0.38, label=name)
    axes[0].bar([5.2], [r["reconstruction"]["eq-vae"]["own_frame"]["mean"]], width=0.38, color="tab:orange",
                alpha=0.5, label="eq-vae, own frame")
    axes[0].set_xticks(list(range(len(labels))) + [5.2], labels + ["recon (own frame)"], rotation=30, fontsize=8)
    axes[0].set_ylabel("RMSD (Å), held-out a-Si")
    axes[0].legend(fontsize=8)
    axes[1].bar(names, [r["mirror"][n]["recovered_fraction"] for n in names], color=["tab:blue", "tab:orange"])
    axes[1].axhline(0.5, color="gray", ls="--", lw=1)
    axes[1].set_ylim(0, 1), axes[1].set_ylabel("mirror images recovered (fraction)")
    for name, (dist, ang) in dist_data.items():
        axes[2].hist(dist, bins=80, range=(1.8, 4.2), density=True, histtype="step", label=name)
        axes[3].hist(ang, bins=90, range=(40, 180), density=True, histtype="step", label=name)
    axes[2].set_xlabel("centre-neighbour distance (Å)"), axes[3].set_xlabel("bond angle (°, < 2.85 Å)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig_comparison.png", dpi=110)
    plt.close(fig)
    from atomsmith.generators.environments.views import trajectory_strip_figure

    fig = trajectory_strip_figure(trajectory, n_panels=7)
    fig.suptitle("eq-vae: latent interpolation between two held-out environments (first frame in the first "
                 "environment's own frame)", fontsize=9)
    fig.savefig(out / "fig_interpolation.png", dpi=110)
    plt.close(fig)
    return ["fig_comparison.png", "fig_interpolation.png"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="asi:20")
    parser.add_argument("--model", default=str(HERE / "runs" / "eq_vae.ckpt"),
                        help="equivariant VAE checkpoint or registry name (default: runs/eq_vae.ckpt, else eq-vae)")
    parser.add_argument("--gram", default="gram-vae", help="Gram VAE checkpoint or registry name")
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-refine", type=int, default=150)
    parser.add_argument("--n-mirror", type=int, default=300)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-infill", type=int, default=60)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--chiral-threshold", type=float, default=0.3,
                        help="Å: environments closer than this to their own mirror image are skipped")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    t0 = time.time()
    cells = load_cells(args.data)
    splits = split_cells(cells, 8, 4.0, seed=0)
    test = distance_ordered(splits.test).astype(np.float64)
    evaluated = test[np.random.default_rng(0).permutation(len(test))[:args.n_eval]]  # as experiments/gram_vae
    library = distance_ordered(splits.train)[np.random.default_rng(1).permutation(len(splits.train))[:150]]
    eq = EqVAE.load(args.model) if Path(args.model).is_file() else resolve_eq_vae("eq-vae")
    gram = resolve_gram_vae(args.gram)
    models = {"gram-vae": gram, "eq-vae": eq}
    log(f"{len(evaluated)} evaluated held-out environments; eq-vae {eq.metadata.get('how_trained', {})}")
    r = {"command": "python experiments/equivariant_vae/run.py " + shlex.join(sys.argv[1:]),
         "data": {"source": args.data, "split_cells": dict(splits.cells), "n_test": len(test),
                  "n_evaluated": len(evaluated)},
         "eq_vae": {"config": eq.config.to_dict(), "how_trained": eq.metadata.get("how_trained"),
                    "n_params": int(sum(x.size for x in jax.tree.leaves(eq.params)))},
         "gram_vae": {"config": gram.config.to_dict(),
                      "n_params": int(sum(x.size for x in jax.tree.leaves(gram.params)))},
         "platform": {"python": platform.python_version(), "jax": jax.__version__}}

    log("reconstruction")
    sub = evaluated[:args.n_refine]
    r["reconstruction"] = {}
    for name, model in models.items():
        recon = model.reconstruct(evaluated)
        refined = (eq_refine(model, sub) if name == "eq-vae" else gram_refine(model, sub))
        row = {"aligned": stats(em.reconstruction_rmsd(recon, evaluated)),
               "aligned_so3": stats(em.reconstruction_rmsd(recon, evaluated, allow_reflection=False)),
               "refined": stats(em.reconstruction_rmsd(refined, sub)),
               "below_0.1A": float(np.mean(em.reconstruction_rmsd(recon, evaluated) < 0.1))}
        if name == "eq-vae":
            row["own_frame"] = stats(em.assignment_rmsd(recon, evaluated))
            row["refined_own_frame"] = stats(em.assignment_rmsd(refined, sub))
        r["reconstruction"][name] = row
        log(f"{name}: {row}")

    log("mirror images")
    r["mirror"] = {name: mirror_study(m, evaluated[:args.n_mirror], args.chiral_threshold)
                   for name, m in models.items()}
    log(str(r["mirror"]))

    log("samples")
    half = len(evaluated) // 2
    r["generation"] = {"held-out floor": em.generation_metrics(evaluated[:half], evaluated[half:])}
    dist_data = {"held-out": (ops.neighbor_distances(evaluated).ravel(), ops.bond_angles(evaluated))}
    for name, model in models.items():
        samples = model.sample_environments(jax.random.PRNGKey(1), args.n_samples)
        r["generation"][name] = em.generation_metrics(samples, evaluated)
        dist_data[f"{name} samples"] = (ops.neighbor_distances(samples).ravel(), ops.bond_angles(samples))
    log(str(r["generation"]))

    log("infilling")
    r["infill"] = infill_study({"gram-vae": (gram, gram_infill), "eq-vae": (eq, eq_infill)}, evaluated,
                               library, (7, 6, 5), args.n_infill, seed=0, restarts=args.restarts)
    r["infill_note"] = ("RMSD (Å) of the generated atoms against the held-out truth in the fixed atoms' frame (best "
                        "assignment); k random atoms of each of the first n held-out environments fixed (the tasks "
                        "of experiments/gram_vae); one completion, best of "
                        f"{args.restarts} latent restarts by the fit objective; retrieval = best partially aligned "
                        "of 150 training environments; bonded = RMS error of free atoms < 2.85 Å from the centre")
    trajectory = li.interpolate(eq, evaluated[0], evaluated[1], steps=13)
    r["figures"] = figure(args.out, r, dist_data, trajectory)
    r["seconds_total"] = round(time.time() - t0, 1)
    with open(args.out / "results.json", "w") as handle:
        json.dump(r, handle, indent=2)
    write_readme(args.out, r)
    log(f"done in {r['seconds_total']:.0f} s")


def write_readme(out: Path, r: dict) -> None:
    g, e = r["reconstruction"]["gram-vae"], r["reconstruction"]["eq-vae"]
    ht = r["eq_vae"].get("how_trained") or {}
    lines = [
        "# Equivariant VAE vs Gram VAE on held-out a-Si environments", "",
        "Both models see the same environments (8 nearest neighbours within 4 Å) of the same SW a-Si cells with "
        "the same split as experiments/gram_vae; the Gram VAE is the shipped `gram-vae`. Reproduce:", "",
        f"    {ht.get('command', 'python experiments/equivariant_vae/train.py --ship')}",
        f"    {r['command']}", "",
        f"Held-out: {r['data']['n_evaluated']} environments of the {r['data']['split_cells']['test']} test cells. "
        f"eq-vae: {r['eq_vae']['n_params']} parameters, trained {ht.get('train', {}).get('steps', '?')} steps in "
        f"{ht.get('seconds', float('nan')) / 60:.0f} min wall on 2 shared CPU cores; gram-vae: "
        f"{r['gram_vae']['n_params']} parameters, 10,000 steps.", "",
        "| metric | Gram VAE | equivariant VAE |", "|---|---|---|",
        f"| reconstruction RMSD, O(3)-aligned + assignment (Å, mean / median) | {g['aligned']['mean']:.3f} / "
        f"{g['aligned']['median']:.3f} | {e['aligned']['mean']:.3f} / {e['aligned']['median']:.3f} |",
        f"| reconstruction RMSD in the input's own frame, no rotation (Å) | – (no frame) | "
        f"{e['own_frame']['mean']:.3f} / {e['own_frame']['median']:.3f} |",
        f"| reconstruction RMSD, proper rotations only (Å) | {g['aligned_so3']['mean']:.3f} | "
        f"{e['aligned_so3']['mean']:.3f} |",
        f"| refined reconstruction (latent optimisation), O(3) (Å, {g['refined']['n']} envs) | "
        f"{g['refined']['mean']:.3f} | {e['refined']['mean']:.3f} |",
    ]
    mg, me = r["mirror"]["gram-vae"], r["mirror"]["eq-vae"]
    lines.append(f"| mirror images recovered ({me['n_chiral']} chiral envs and their mirror images) | "
                 f"{100 * mg['recovered_fraction']:.0f} % | {100 * me['recovered_fraction']:.0f} % |")
    for key, label, fmt in (("w1_neighbor_distance", "samples: W1 neighbour distance (Å)", "{:.3f}"),
                            ("w1_bond_angle", "samples: W1 bond angle (°)", "{:.2f}"),
                            ("fraction_no_pair_below_2A", "samples: no pair < 2 Å", "{:.1%}")):
        lines.append(f"| {label} | {fmt.format(r['generation']['gram-vae'][key])} | "
                     f"{fmt.format(r['generation']['eq-vae'][key])} |")
    for k in ("7", "6", "5"):
        x = r["infill"][k]
        lines.append(f"| infilling k = {k}: RMSD of generated atoms (Å, mean / median; retrieval "
                     f"{x['retrieval']['mean']:.3f}) | {x['gram-vae']['mean']:.3f} / {x['gram-vae']['median']:.3f} "
                     f"| {x['eq-vae']['mean']:.3f} / {x['eq-vae']['median']:.3f} |")
    f = r["generation"]["held-out floor"]
    lines += ["", f"Held-out vs held-out floor of the sample metrics: W1 distance {f['w1_neighbor_distance']:.3f} Å, "
              f"W1 angle {f['w1_bond_angle']:.2f}°, no pair < 2 Å {f['fraction_no_pair_below_2A']:.0%}. "
              f"Samples: {len(r['generation']) - 1} models x 1000 draws from each model's latent mixture.", "",
              r["infill_note"] + ".", "",
              "Mirror recovery: an environment X and its mirror image MX (chiral ones only: SO(3)-aligned RMSD "
              "between X and MX above the threshold) are reconstructed; a reconstruction counts as recovered when, "
              "with proper rotations only, it is closer to its own input than to the mirrored one. A Gram VAE maps "
              "X and MX to the same reconstruction, so it gets at most one of each pair right (<= 50 %).", "",
              "## Figures", ""] + [f"![{x}]({x})" for x in r["figures"]] + [""]
    notes = HERE / "notes.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    (out / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
