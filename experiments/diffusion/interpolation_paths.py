"""Predicted property and validity along latent paths between pairs of perov_5 test cells (issue 20, the figure).

``--pairs`` random pairs of distinct cells of a split (``numpy.random.default_rng(seed)``; perov_5 cells all have
5 atoms) are interpolated with :func:`atomsmith.generators.diffusion.interpolation.interpolate` (``--steps`` frames,
``--ode-steps`` probability-flow steps). Every frame gets the shipped heat_ref predictor's value (eV), structural
validity (CDVAE: atoms >= 0.5 Å apart, volume >= 0.1 Å^3) and compositional validity (SMACT charge balance,
:func:`atomsmith.metrics.validity.smact_validity`); the end frames' StructureMatcher RMS against the inputs is
recorded. With ``--target heat_ref=VALUE`` the paths are decoded with gradient guidance towards it (strength
``--guidance-scale * sin(pi t)``, zero at the ends) and the unguided paths are computed too, for comparison.

    python experiments/diffusion/interpolation_paths.py --model perov-5 --pairs 20 --steps 9 \\
        --out experiments/diffusion/interpolation_paths_perov5.json
    python experiments/diffusion/interpolation_paths.py --model perov-5 --pairs 20 --target heat_ref=0.0 \\
        --out experiments/diffusion/interpolation_paths_perov5_guided.json

Writes the JSON (per pair and frame, and the fractions of valid frames at each t) and a PNG beside it (same name):
predicted heat_ref along every path (thin) and their mean, and the valid fractions against t.
"""

from __future__ import annotations

import argparse
import io as io_bytes
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def choose_pairs(cells: Sequence[Any], n_pairs: int, seed: int) -> list[tuple[int, int]]:
    """``n_pairs`` distinct pairs ``(i, j)``, ``i != j``, of cells with the same atom count (fixed seed)."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    seen = set()
    for _ in range(100 * n_pairs):
        i, j = (int(x) for x in rng.choice(len(cells), size=2, replace=False))
        if (i, j) in seen or cells[i].n_atoms != cells[j].n_atoms:
            continue
        seen.add((i, j))
        pairs.append((i, j))
        if len(pairs) == n_pairs:
            break
    return pairs


def path_record(path, predictor) -> dict[str, Any]:
    """Per-frame numbers of one :class:`~atomsmith.generators.diffusion.interpolation.CrystalPath`."""
    from atomsmith.api.prediction import predict
    from atomsmith.metrics.validity import smact_validity, structure_validity

    frames = [f.wrapped() for f in path.frames]
    heat = [float(v) for v in predict(predictor, frames, warn=False)]
    return {
        "t": path.t.tolist(),
        "formulas": [f.formula for f in frames],
        "heat_ref": heat,
        "struct_valid": [bool(structure_validity(f)) for f in frames],
        "comp_valid": [bool(smact_validity(f.numbers)) for f in frames],
        "end_rms": list(path.end_rms),
        "end_error": list(path.end_error),
        "residual": list(path.residual),
        "species": path.species,
        "switch": path.switch,
        "matching_rms_angstrom": path.correspondence.rms,
        "species_changed_by_matching": path.correspondence.species_changed,
        "guidance_objective": [f.properties.get("guidance_objective") for f in path.frames],
    }


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Fractions of valid frames and mean predicted heat_ref at each t, over the paths."""
    if not records:
        return {}
    heat = np.array([r["heat_ref"] for r in records])
    return {
        "t": records[0]["t"],
        "struct_valid_fraction": np.mean([r["struct_valid"] for r in records], axis=0).tolist(),
        "comp_valid_fraction": np.mean([r["comp_valid"] for r in records], axis=0).tolist(),
        "heat_ref_mean": heat.mean(0).tolist(),
        "heat_ref_std": heat.std(0).tolist(),
        "end_matched_fraction": float(np.mean([[x is not None for x in r["end_rms"]] for r in records])),
    }


def figure(runs: dict[str, dict[str, Any]], path: Path, target: float | None) -> None:
    """PNG: predicted heat_ref along each path and the valid fractions, per run (plain / guided)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = {"plain": "tab:blue", "guided": "tab:orange"}
    for name, run in runs.items():
        t = np.asarray(run["aggregate"]["t"])
        for r in run["paths"]:
            axes[0].plot(t, r["heat_ref"], color=colors[name], alpha=0.25, lw=0.8)
        axes[0].plot(t, run["aggregate"]["heat_ref_mean"], color=colors[name], lw=2.5, label=f"{name} (mean)")
        axes[1].plot(t, run["aggregate"]["struct_valid_fraction"], "-o", color=colors[name], ms=3,
                     label=f"{name}: structural")
        axes[1].plot(t, run["aggregate"]["comp_valid_fraction"], "--s", color=colors[name], ms=3,
                     label=f"{name}: compositional")
    if target is not None:
        axes[0].axhline(target, color="black", ls=":", lw=1, label="target")
    axes[0].set_xlabel("t"), axes[0].set_ylabel("predicted heat_ref (eV)"), axes[0].legend(fontsize=8)
    axes[1].set_xlabel("t"), axes[1].set_ylabel("fraction of paths valid"), axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    buffer = io_bytes.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    from atomsmith.structures.io import atomic_write

    with atomic_write(path, mode="wb", overwrite=True) as handle:
        handle.write(buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="perov-5", help="shipped model name or checkpoint path")
    parser.add_argument("--predictor", default="perov-5-heat-ref", help="heat_ref predictor (name or path)")
    parser.add_argument("--dataset", default="perov_5")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair draw")
    parser.add_argument("--steps", type=int, default=9, help="frames per path, both ends included")
    parser.add_argument("--ode-steps", type=int, default=100)
    parser.add_argument("--species", choices=("latent", "held"), default=None, help="default: by the model")
    parser.add_argument("--target", default=None, help="guided paths towards heat_ref=VALUE (eV)")
    parser.add_argument("--guidance-scale", type=float, default=10.0)
    parser.add_argument("--property-scale", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=None, help="JSON (PNG beside it; default: beside this script)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)

    from atomsmith.api.sampling import parse_requests, plan_guidance
    from atomsmith.generators.diffusion import interpolation as ci
    from atomsmith.generators.diffusion.data import load_split_cached
    from atomsmith.metrics.evaluate import json_safe
    from atomsmith.pretrained import load_model
    from atomsmith.structures import io

    tag = "_guided" if args.target else ""
    out = args.out or HERE / f"interpolation_paths_{args.dataset}_{args.split}_p{args.pairs}{tag}.json"
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to overwrite it")
    cells = load_split_cached(args.dataset, args.split)
    pairs = choose_pairs(cells, args.pairs, args.seed)
    model = load_model(args.model)
    predictor = load_model(args.predictor)
    mode = ci.species_mode(model, args.species)
    objective, target_value = None, None
    if args.target:
        requests = parse_requests(args.target, None, args.property_scale)
        plan = plan_guidance(model, str(args.model), requests, predictors=[args.predictor], mode="gradient")
        objective, target_value = plan.objective, float(requests[0].low)
    runs: dict[str, dict[str, Any]] = {}
    for name, obj in [("plain", None)] + ([("guided", objective)] if objective is not None else []):
        t0 = time.perf_counter()
        records = []
        for k, (i, j) in enumerate(pairs):
            path = ci.interpolate(model, cells[i], cells[j], steps=args.steps, ode_steps=args.ode_steps,
                                  species=mode, objective=obj, guidance_scale=args.guidance_scale)
            records.append({"pair": [i, j], **path_record(path, predictor)})
            print(f"{name} {k + 1}/{len(pairs)}: {cells[i].formula} -> {cells[j].formula}, valid "
                  f"{sum(records[-1]['struct_valid'])}/{args.steps}", flush=True)
        runs[name] = {"paths": records, "aggregate": aggregate(records),
                      "seconds_incl_compilation": time.perf_counter() - t0}
    record = {
        "task": f"latent interpolation paths between {args.dataset}:{args.split} cells",
        "model": str(args.model), "predictor": str(args.predictor), "species": mode,
        "species_process": model.config.species_process, "frames": args.steps, "ode_steps": args.ode_steps,
        "pairs": [list(p) for p in pairs], "pair_seed": args.seed,
        "target": args.target, "guidance_scale": args.guidance_scale if args.target else None,
        "runs": runs,
        "command": "python experiments/diffusion/interpolation_paths.py " + shlex.join(
            sys.argv[1:] if argv is None else list(argv)),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    png = out.with_suffix(".png")
    figure(runs, png, target_value)
    with io.atomic_write(out, overwrite=True) as handle:
        json.dump(json_safe(record), handle, indent=2)
        handle.write("\n")
    for name, run in runs.items():
        agg = run["aggregate"]
        print(f"{name}: structurally valid at t = 0.5: {agg['struct_valid_fraction'][len(agg['t']) // 2]:.2f}, "
              f"mean over frames {np.mean(agg['struct_valid_fraction']):.2f}")
    print(f"wrote {out} and {png}")
    return record


if __name__ == "__main__":
    main()
