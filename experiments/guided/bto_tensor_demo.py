"""Tensor-property guidance: steer BaTiO3 cells toward a target Ti Born-charge anisotropy.

One command (data: the GPL-3.0 e3response BaTiO3 ensemble, read from a data directory and never copied here):

    nice -n 10 python experiments/guided/bto_tensor_demo.py --data-dir ../shared/data

**Property.** The anisotropy of the Ti Born effective charges, ``a = mean over Ti atoms of ||Z - tr(Z)/3 I||_F`` (e;
``atomsmith.guidance.tensor_anisotropy(predictor, batch, species=22)``). It is exactly 0 in the ideal cubic
perovskite and grows as Ti leaves the centre of its O octahedron, so it is a rotation-invariant handle on a
tensor response. The **guide** is the Born-charge predictor of ``experiments/predictors/bto_tensors.py`` (40 training
cells, test RMSE 0.057 e; ``scratch/predictors/bto_tensors_born_charges_n40.ckpt``); the **judge** is the separately
trained larger model (``bto_tensors_large_born_charges_n40.ckpt``, 3 blocks, 4x channels, test RMSE 0.034 e), never
used for guidance. Both were trained on the same 40 cells: the judge checks that the guide is not fooled in a way
peculiar to its own weights, not that DFT would agree. Missing checkpoints are retrained into ``scratch/`` (GPL data:
never committed).

**Targets:** the 10th, 50th and 90th percentile of the guide's anisotropy over the 50 dataset cells.

(a) **Diffusion.** The shipped ``perov-5`` model in structure-prediction mode (composition BaTiO3; lattice and
coordinates generated), ``--n`` samples per arm, ``--steps`` reverse steps, gradient guidance on the denoised
estimate with ``AnisotropyTarget(guide, target, scale=0.05 e, species=Ti) + lam * MinDistance(1.65 Å)`` (1.65 Å is
the shortest distance in the training cells). Arms: unguided; guided with the lattice held at the training cells'
cubic 4.0 Å (``conditions["lattice"]``); guided with the lattice generated too.

(b) **Direct optimisation** on the 10 held-out dataset cells (135 atoms, inside the predictors' domain): Adam on
fractional coordinates (cell fixed), same objective, for the p10 and p90 targets and two targets outside the dataset's
range (0.35 and 0.80 e: extrapolation, where guide and judge may part).

Reported per arm: mean / median of guide and judge anisotropy, MAE to the target, validity (no pair < 0.5 Å),
distance from the training domain (lattice parameters, minimum distances, Ti off-centring = |mean vector to the six
nearest O|, match to ideal cubic BaTiO3 under CSP StructureMatcher tolerances). Writes bto_tensor_demo.json and
bto_tensor_demo.png (summary numbers only; no GPL data).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "experiments" / "predictors"))
from common import environment, write_json  # noqa: E402

from atomsmith import datasets  # noqa: E402
from atomsmith.graphs.batching import batch_graphs  # noqa: E402
from atomsmith.graphs.neighbors import neighbor_list  # noqa: E402
from atomsmith.guidance import AnisotropyTarget, MinDistance, tensor_anisotropy, value_and_grad  # noqa: E402
from atomsmith.metrics.matching import rms_dist  # noqa: E402
from atomsmith.metrics.validity import min_pair_distance  # noqa: E402
from atomsmith.predictors import load_predictor  # noqa: E402
from atomsmith.pretrained import load_model  # noqa: E402
from atomsmith.structures.crystal import Crystal  # noqa: E402

SCRATCH = ROOT / "scratch" / "predictors"
TI, O = 22, 8
BATIO3 = [56, 22, 8, 8, 8]
CUBIC = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], BATIO3)
#: how each predictor is (re)trained when its checkpoint is missing (experiments/predictors/README.md commands).
TRAIN_ARGS = {
    "bto_tensors": ["--steps", "2000"],
    "bto_tensors_large": ["--steps", "3000", "--layers", "3", "--irreps", "64x0e+16x1o+16x1e+8x2e+8x2o",
                          "--width", "32"],
}


def predictor(tag: str, data_dir: Path):
    path = SCRATCH / f"{tag}_born_charges_n40.ckpt"
    if not path.exists():
        print(f"{path} missing: training it (experiments/predictors/bto_tensors.py --tag {tag}) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "experiments" / "predictors" / "bto_tensors.py"),
                        "--data-dir", str(data_dir), "--targets", "born_charges", "--sizes", "40", "--tag", tag,
                        "--out", str(SCRATCH), *TRAIN_ARGS[tag]], check=True)
    return load_predictor(path, target="born_charges")[0], path


def anisotropy(model, crystals, batch_size: int = 64) -> np.ndarray:
    """``[n]`` Ti anisotropy (e) of host crystals."""
    fn = _anisotropy_fn()
    out = []
    for i in range(0, len(crystals), batch_size):
        chunk = crystals[i:i + batch_size]
        out.append(np.asarray(fn(model, batch_graphs(chunk, cutoff=model.config.encoder.cutoff)))[:len(chunk)])
    return np.concatenate(out).astype(float)


_FN = {}


def _anisotropy_fn():
    if "f" not in _FN:
        _FN["f"] = jax.jit(lambda p, b: tensor_anisotropy(p, b, species=TI))
    return _FN["f"]


def ti_off_centring(crystal: Crystal) -> float:
    """Median over Ti atoms of |mean vector from Ti to its six nearest O| (Å); NaN without six O within 3.2 Å."""
    graph = neighbor_list(crystal, 3.2)
    vec = graph.vectors(crystal)  # sender - receiver: from the centre (receiver) to the neighbour
    numbers = crystal.numbers
    out = []
    for i in np.flatnonzero(numbers == TI):
        sel = (graph.receivers == i) & (numbers[graph.senders] == O)
        v = vec[sel]
        if len(v) < 6:
            return float("nan")
        v = v[np.argsort(np.linalg.norm(v, axis=1))[:6]]
        out.append(np.linalg.norm(v.mean(axis=0)))
    return float(np.median(out))


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, float)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return {"n_finite": 0}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)), "std": float(finite.std()),
            "p10": float(np.percentile(finite, 10)), "p90": float(np.percentile(finite, 90)),
            "n_finite": int(finite.size)}


def domain(crystals) -> dict:
    """How far cells are from the predictors' training cells (3x3x3 cubic 4.0 Å perovskite at 400 K)."""
    per_fu = [c.n_atoms // 5 for c in crystals]
    lat = np.array([c.lattice_parameters for c in crystals])
    md = np.array([min_pair_distance(c, 5.0) for c in crystals])
    off = np.array([ti_off_centring(c) for c in crystals])
    out = {"min_distance_A": _stats(md), "ti_off_centring_A": _stats(off),
           "octahedral_fraction": float(np.mean(np.isfinite(off))),
           "volume_per_fu_A3": _stats([c.volume / k for c, k in zip(crystals, per_fu)]),
           "valid_0.5A": float(np.mean(md >= 0.5)), "min_distance_ge_1.65A": float(np.mean(md >= 1.65))}
    if all(c.n_atoms == 5 for c in crystals):
        out["lattice_a_A"] = _stats(lat[:, :3].ravel())
        out["angle_deviation_deg"] = _stats(np.abs(lat[:, 3:] - 90.0).max(axis=1))
        out["matches_cubic_BaTiO3"] = float(np.mean([rms_dist(c, CUBIC) is not None for c in crystals]))
    return out


def score(values: np.ndarray, target: float | None) -> dict:
    out = _stats(values)
    if target is not None:
        err = np.abs(values - target)
        out |= {"mae_to_target": float(err.mean()), "median_ae_to_target": float(np.median(err)),
                "within_0.05": float(np.mean(err <= 0.05))}
    return out


# ---------------------------------------------------------------------------------------------- (a) diffusion
def diffusion_arms(args, guide, judge, targets: dict[str, float]) -> dict:
    model = load_model("perov-5")
    held = np.eye(3) * 4.0
    arms = [("unguided", None, None, (1.0, 1.0, 1.0))]
    for name, t in targets.items():
        arms.append((f"guided {name}, lattice held 4.0 Å", t, held, (1.0, 1.0, 1.0)))
    for name, t in targets.items():
        arms.append((f"guided {name}, lattice generated", t, None, (1.0, 1.0, 1.0)))
    arms.append(("unguided, lattice held 4.0 Å", None, held, (1.0, 1.0, 1.0)))
    results = {}
    for k, (name, target, lattice, weights) in enumerate(arms):
        conditions = {"composition": BATIO3} | ({} if lattice is None else {"lattice": lattice})
        objective = None
        if target is not None:
            objective = (AnisotropyTarget(guide, target=target, scale=args.property_scale, species=TI)
                         + args.min_distance_weight * MinDistance(min_distance=args.min_distance))
        stats: dict = {}
        t0 = time.perf_counter()
        crystals = model.sample(jax.random.PRNGKey(args.seed), args.n, conditions=conditions, steps=args.steps,
                                guidance=objective, guidance_scale=args.guidance_scale, guidance_weights=weights,
                                stats=stats)
        wall = time.perf_counter() - t0
        g, j = anisotropy(guide, crystals), anisotropy(judge, crystals)
        results[name] = {"target_e": target, "lattice_held": lattice is not None, "guide": score(g, target),
                         "judge": score(j, target), "domain": domain(crystals), "sample_wall_s": round(wall, 1),
                         "neighbour_overflow": stats.get("overflow"),
                         "samples": {"guide": np.round(g, 4).tolist(), "judge": np.round(j, 4).tolist()}}
        r = results[name]
        print(f"(a) {name}: guide median {r['guide']['median']:.3f} judge median {r['judge']['median']:.3f}"
              + (f" judge MAE {r['judge']['mae_to_target']:.3f}" if target is not None else "")
              + f" valid {r['domain']['valid_0.5A']:.2f} min-d median {r['domain']['min_distance_A']['median']:.2f}"
              f" a {r['domain']['lattice_a_A']['mean']:.2f} cubic-match {r['domain']['matches_cubic_BaTiO3']:.2f}"
              f" ({wall:.0f} s)", flush=True)
    return results


# ---------------------------------------------------------------------------------------------- (b) direct Adam
def direct_optimisation(args, guide, judge, cells, targets: dict[str, float]) -> dict:
    cutoff = guide.config.encoder.cutoff
    n = len(cells)
    sizes = None
    step_fn = jax.jit(value_and_grad)
    results = {}
    for name, target in targets.items():
        objective = (AnisotropyTarget(guide, target=target, scale=args.property_scale, species=TI)
                     + args.min_distance_weight * MinDistance(min_distance=args.min_distance))
        frac = jnp.asarray(np.stack([c.frac_coords for c in cells]), jnp.float32)
        opt = optax.adam(args.opt_lr)
        state = opt.init(frac)
        history, current, batch = [], cells, None
        t0 = time.perf_counter()
        for step in range(args.opt_steps + 1):
            current = [c.replace(frac_coords=np.asarray(frac[k], np.float64)) for k, c in enumerate(cells)]
            if step % 10 == 0:
                batch = batch_graphs(current, cutoff=cutoff, sizes=sizes)
                sizes = sizes or (batch.n_nodes, int(batch.senders.shape[0] * 1.1), batch.n_graphs)
                batch = batch_graphs(current, cutoff=cutoff, sizes=sizes)
            batch = batch.replace(frac_coords=batch.frac_coords.at[: frac.size // 3].set(frac.reshape(-1, 3)))
            result = step_fn(objective, batch)
            if step % 5 == 0 or step == args.opt_steps:
                a = np.asarray(_anisotropy_fn()(guide, batch))[:n]
                history.append({"step": step, "guide_mean": float(a.mean()), "guide_std": float(a.std())})
            if step == args.opt_steps:
                break
            grad = result.frac_coords[: frac.size // 3].reshape(frac.shape)
            updates, state = opt.update(grad, state)
            frac = optax.apply_updates(frac, updates)
        wall = time.perf_counter() - t0
        g0, g1 = anisotropy(guide, cells), anisotropy(guide, current)
        j0, j1 = anisotropy(judge, cells), anisotropy(judge, current)
        disp = [np.sqrt(np.mean(np.sum(((b.frac_coords - a.frac_coords + 0.5) % 1.0 - 0.5) @ a.lattice
                                       * (((b.frac_coords - a.frac_coords + 0.5) % 1.0 - 0.5) @ a.lattice), axis=1)))
                for a, b in zip(cells, current)]
        results[name] = {"target_e": target, "guide_start": score(g0, target), "guide_final": score(g1, target),
                         "judge_start": score(j0, target), "judge_final": score(j1, target),
                         "rms_displacement_A": _stats(disp), "domain_start": domain(cells),
                         "domain_final": domain(current), "history": history, "wall_s": round(wall, 1)}
        print(f"(b) {name} target {target:.3f}: guide {g0.mean():.3f} -> {g1.mean():.3f}, judge {j0.mean():.3f} -> "
              f"{j1.mean():.3f}, judge MAE {np.abs(j0 - target).mean():.3f} -> {np.abs(j1 - target).mean():.3f}, "
              f"rms disp {np.mean(disp):.3f} Å, min-d {results[name]['domain_final']['min_distance_A']['p10']:.2f}"
              f" ({wall:.0f} s)", flush=True)
    return results


def _strip_plot(ax, arms: dict, dataset_guide: dict) -> None:
    import matplotlib.ticker

    names = list(arms)
    for k, name in enumerate(names):
        j, target = np.asarray(arms[name]["samples"]["judge"]), arms[name]["target_e"]
        jitter = np.random.default_rng(k).uniform(-0.15, 0.15, size=len(j))
        ax.scatter(np.clip(j, 0.2, 5.0), k + jitter, s=6, alpha=0.5, color="C0" if target is None else "C1")
        ax.plot([np.median(j)], [k], "k|", ms=14, mew=2)
        if target is not None:
            ax.plot([target], [k], "rv", ms=7)
    ax.axvspan(dataset_guide["p10"], dataset_guide["p90"], color="0.85", zorder=0, label="dataset p10-p90 (guide)")
    ax.set_xscale("log")
    ticks = [0.2, 0.3, 0.5, 1.0, 2.0, 5.0]
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("Ti Born-charge anisotropy, judge model (e; clipped to [0.2, 5])")
    ax.set_title("(a) perov-5 diffusion, BaTiO3 composition (| median, ▼ target)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


def plot(path: Path, out: dict) -> None:
    """Panel (a): judge anisotropy of every generated cell per arm; panel (b): Adam trajectories (guide) with the
    judge's start and final means as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), gridspec_kw={"width_ratios": [1.5, 1]})
    if out.get("diffusion"):
        _strip_plot(axes[0], out["diffusion"], out["dataset"]["guide"])
    else:
        axes[0].set_axis_off()
    ax = axes[1]
    for k, (name, run) in enumerate(out["direct"].items()):
        history, target = run["history"], run["target_e"]
        steps = [h["step"] for h in history]
        mean = np.array([h["guide_mean"] for h in history])
        std = np.array([h["guide_std"] for h in history])
        ax.plot(steps, mean, color=f"C{k}", label=f"target {name} ({target:.3f})")
        ax.fill_between(steps, mean - std, mean + std, color=f"C{k}", alpha=0.2)
        ax.axhline(target, color=f"C{k}", ls="--", lw=1)
        ax.plot([steps[0], steps[-1]], [run["judge_start"]["mean"], run["judge_final"]["mean"]], "o", color=f"C{k}",
                mfc="white")
    ax.set_xlabel("Adam step (coordinates of 10 held-out 135-atom cells)")
    ax.set_ylabel("Ti anisotropy (e): line guide mean ± std, o judge mean")
    ax.set_title("(b) direct optimisation on dataset cells", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("ATOMSMITH_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--n", type=int, default=64, help="samples per diffusion arm")
    parser.add_argument("--steps", type=int, default=100, help="reverse diffusion steps")
    parser.add_argument("--guidance-scale", type=float, default=1.0)
    parser.add_argument("--property-scale", type=float, default=0.05, help="e: a miss of this size costs 1")
    parser.add_argument("--min-distance", type=float, default=1.65, help="Å, MinDistance threshold")
    parser.add_argument("--min-distance-weight", type=float, default=100.0)
    parser.add_argument("--opt-steps", type=int, default=60)
    parser.add_argument("--opt-lr", type=float, default=5e-4, help="Adam step on fractional coordinates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-diffusion", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--plot-only", action="store_true", help="redraw the PNG from bto_tensor_demo.json")
    args = parser.parse_args()
    if args.plot_only:
        import json

        plot(args.out / "bto_tensor_demo.png", json.loads((args.out / "bto_tensor_demo.json").read_text()))
        return
    if not (args.data_dir / "bto_400K").exists():
        print(f"SKIPPED: BaTiO3 data not found at {args.data_dir}/bto_400K (GPL-3.0 e3response ensemble; pass "
              "--data-dir DIR or set ATOMSMITH_DATA_DIR)")
        return
    t_start = time.perf_counter()
    cells = datasets.load("bto_400K", "all", data_dir=args.data_dir)
    guide, guide_path = predictor("bto_tensors", args.data_dir)
    judge, judge_path = predictor("bto_tensors_large", args.data_dir)
    g_all, j_all = anisotropy(guide, cells, batch_size=10), anisotropy(judge, cells, batch_size=10)
    dft = []
    for c in cells:
        z = np.asarray(c.site_properties["born_charges"])[c.numbers == TI]
        dev = z - np.trace(z, axis1=-2, axis2=-1)[:, None, None] / 3.0 * np.eye(3)
        dft.append(np.sqrt((dev ** 2).sum(axis=(1, 2))).mean())
    targets = {f"p{q}": float(np.percentile(g_all, q)) for q in (10, 50, 90)}
    print("targets (guide percentiles over the 50 dataset cells):", {k: round(v, 3) for k, v in targets.items()})
    out = {"property": "mean over Ti atoms of ||Z* - tr(Z*)/3 I||_F (e)",
           "guide": str(guide_path.relative_to(ROOT)), "judge": str(judge_path.relative_to(ROOT)),
           "targets_e": targets, "dataset": {"n_cells": len(cells), "dft": _stats(dft), "guide": _stats(g_all),
                                             "judge": _stats(j_all),
                                             "guide_mae_vs_dft": float(np.mean(np.abs(g_all - dft))),
                                             "judge_mae_vs_dft": float(np.mean(np.abs(j_all - dft))),
                                             "domain": domain(cells[:10])},
           "ideal_cubic": {"guide": float(anisotropy(guide, [CUBIC])[0]), "judge": float(anisotropy(judge, [CUBIC])[0])},
           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "data_dir"}}
    print("dataset:", {k: round(v["median"], 3) for k, v in out["dataset"].items() if isinstance(v, dict) and "median" in v},
          flush=True)
    test_idx = datasets.split_indices(len(cells), 0.2, seed=0)[1]
    t0 = time.perf_counter()
    out["direct"] = direct_optimisation(args, guide, judge, [cells[i] for i in test_idx],
                                                {"p10": targets["p10"], "p90": targets["p90"],
                                                 "low 0.35": 0.35, "high 0.80": 0.80})
    out["direct_wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(args.out / "bto_tensor_demo.json", out)
    if not args.skip_diffusion:
        t0 = time.perf_counter()
        out["diffusion"] = diffusion_arms(args, guide, judge, targets)
        out["diffusion_wall_s"] = round(time.perf_counter() - t0, 1)
    out["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    out["environment"] = environment()
    write_json(args.out / "bto_tensor_demo.json", out)
    plot(args.out / "bto_tensor_demo.png", out)
    print(f"wrote {args.out / 'bto_tensor_demo.json'} and .png ({out['total_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
