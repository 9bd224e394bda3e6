"""Amorphous silicon with diffusion: fixed cell and composition, property-conditioned a-Si cells.

One command (about 12 min of training plus ~10 min of sampling and analysis on the shared 2-core CPU; a trained
checkpoint under ``runs/`` is reused, an interrupted training resumes exactly; the shipped ``a-si`` model is that
checkpoint):

    nice -n 10 python experiments/guided/amorphous_si.py            # full run -> amorphous_si.json + PNGs
    python experiments/guided/amorphous_si.py --quick               # smoke run (tiny model, minutes)
    python experiments/guided/amorphous_si.py --tables              # README tables from amorphous_si.json

1. **Data.** The SW melt-quench cells of ``experiments/a_si_data`` (16 x 64, 8 x 216 and 20 x 512 atoms, 2.29 g/cm3,
   seed 0). When ``experiments/a_si_data/output/a_si_N.extxyz`` is absent they are regenerated with
   ``atomsmith data make-asi --n-atoms N --n-cells K --seed 0 --single-file --out runs/a_si_N``.
2. **Training.** A diffusion model (:mod:`atomsmith.generators.diffusion`, shared encoder, shared training loop) on
   12 x 64 + 6 x 216 cells; 4 x 64 + 2 x 216 cells are held out for validation. ``csp_fraction = 1`` (species are
   always given: all Si); the lattice is still diffused in training, and held at sampling (RePaint replacement).
3. **Amorphous mode.** ``model.sample(key, n, conditions={"composition": [14] * N, "lattice": L})`` with ``L`` the
   melt-quench cubic cell of N atoms (2.29 g/cm3). Every set - diffusion samples, melt-quench cells and
   random-placement cells (uniform positions, no pair closer than 2 Å, the melt-quench start) - gets the SAME short
   SW relaxation (:data:`SHORT_RELAX`: FIRE, fixed cell, at most 300 steps or f_max 0.01 eV/Å) before g(r), bond
   angles, coordination (2.85 Å) and SW energy per atom are compared; the 64-atom diffusion and random cells are
   also relaxed fully (:data:`FULL_RELAX`, the melt-quench protocol's final FIRE).
4. **Timing.** Wall time per cell of diffusion sampling (+ relaxation) against one melt-quench of a 64-atom cell
   with the data protocol, timed here in the same process, and the per-cell costs recorded in
   ``experiments/a_si_data/results.json``.
5. **Conditioned runs.** SW energy per atom steered with :class:`atomsmith.guidance.SWEnergyTarget` toward three
   targets, and the fraction of four-fold atoms with :class:`atomsmith.guidance.FourFoldTarget`; achieved values
   after sampling and after the short relaxation against requested, next to unconditional samples.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = HERE / "runs"
DATA = ROOT / "experiments" / "a_si_data"
#: the last shipped cell of these sizes is held out for validation (the others train).
HELD_OUT = {64: 1, 216: 1}
SIZES = (64, 216, 512)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def potential():
    """The SW parameter set the shipped a-Si was made with (``asi_set.SHIPPED_POTENTIAL``: Vink et al.)."""
    from atomsmith.physics.asi_set import SHIPPED_POTENTIAL
    from atomsmith.physics.stillinger_weber import parameter_set

    return parameter_set(SHIPPED_POTENTIAL)


# ---------------------------------------------------------------------------------------------------------- data
def load_cells(n_atoms: int) -> list[Crystal]:
    """The shipped melt-quench cells of ``n_atoms`` atoms (``atomsmith.physics.load_shipped``; made with
    ``atomsmith data make-asi --preset vink-1e12``, see ``experiments/a_si_data/README.md``)."""
    from atomsmith.physics import load_shipped

    return load_shipped(n_atoms=n_atoms)


def split(cells: dict[int, list[Crystal]]) -> tuple[list[Crystal], list[Crystal]]:
    train, val = [], []
    for n, group in cells.items():
        k = HELD_OUT.get(n, 0)
        train += group[:len(group) - k]
        val += group[len(group) - k:]
    return train, val


# ------------------------------------------------------------------------------------------------------ training
@dataclasses.dataclass(frozen=True)
class Setup:
    irreps: str = "48x0e+16x1o+8x2e"
    layers: int = 3
    cutoff: float = 4.0
    batch_size: int = 4
    steps: int = 20000
    eval_every: int = 1000
    chunk: int = 2000  # steps per call of the training loop (a log line between calls; resumes exactly)
    learning_rate: float = 1e-3
    seed: int = 0


QUICK_SETUP = Setup(irreps="8x0e+4x1o+2x2e", layers=1, cutoff=4.0, batch_size=2, steps=30, eval_every=15, chunk=15)


def train_model(setup: Setup, train: list[Crystal], val: list[Crystal], out: Path, command: str):
    """Train (or resume, or load when finished) the a-Si diffusion model; returns the model and its path."""
    from atomsmith.generators.diffusion.model import DiffusionModel
    from atomsmith.generators.diffusion.training import make_config, train_diffusion
    from atomsmith.training.loop import TrainConfig, count_params

    if out.exists():
        log(f"loading {out}")
        return DiffusionModel.load(out)
    config = make_config(train, irreps_hidden=setup.irreps, n_layers=setup.layers, cutoff=setup.cutoff,
                         csp_fraction=1.0, seed=setup.seed)
    tc = TrainConfig(learning_rate=setup.learning_rate, max_steps=setup.steps, warmup_steps=min(200, setup.steps // 10),
                     eval_every=setup.eval_every, checkpoint_every=min(250, setup.chunk), seed=setup.seed)
    counts = {n: sum(c.n_atoms == n for c in train) for n in sorted({c.n_atoms for c in train})}
    meta = {"how_trained": {
        "command": command, "script": "experiments/guided/amorphous_si.py",
        "dataset": ("the shipped a-Si (atomsmith.physics.load_shipped; Vink SW melt-quench, make-asi --preset "
                    "vink-1e12 --seed 0, 2.25 g/cm3 cubic cells): " + ", ".join(f"{k} x {n} atoms" for n, k in
                                                                             counts.items()) + " for training"),
        "validation": ", ".join(f"last {k} shipped cell(s) of {n} atoms" for n, k in HELD_OUT.items()),
        "n_train": len(train), "batch_size": setup.batch_size, "seed": setup.seed, "setup": dataclasses.asdict(setup),
        "csp_fraction": 1.0}}
    state_path = out.with_suffix(".train.ckpt")
    log(f"training: {len(train)} cells, {setup.steps} steps, batch {setup.batch_size}, irreps {setup.irreps}, "
        f"{setup.layers} layers, cutoff {setup.cutoff} Å, edge capacity {config.max_edges_per_cell}/cell")
    t0 = time.perf_counter()
    while True:
        model, result = train_diffusion(config, train, val, tc, batch_size=setup.batch_size,
                                        checkpoint_path=state_path, metadata=meta, progress=False,
                                        stop_after=setup.chunk)
        step = int(result.state.step)
        last_train = next((h for h in reversed(result.history) if "train_loss" in h), {})
        last_val = next((h for h in reversed(result.history) if "val_loss" in h), {})
        log(f"step {step}/{setup.steps}: train loss {last_train.get('train_loss', float('nan')):.4f}, "
            f"val loss {last_val.get('val_loss', float('nan')):.4f} (best {result.best_metric:.4f}), "
            f"{time.perf_counter() - t0:.0f} s")
        if step >= setup.steps or result.stopped_early:
            break
    wall = time.perf_counter() - t0
    how = {**meta["how_trained"], "steps": step, "wall_time_s": round(wall, 1), "train_config": tc.__dict__,
           "n_params": count_params(model.params), "final_validation": last_val,
           "best_val_loss": result.best_metric, "history": result.history}
    model.save(out, {"how_trained": how}, overwrite=True)
    log(f"wrote {out}: {how['n_params']} parameters, {step} steps, best val loss {result.best_metric:.4g}, "
        f"{wall:.0f} s")
    return DiffusionModel.load(out)


# ------------------------------------------------------------------------------------------ relaxation, statistics
#: the relaxation every set gets (diffusion samples, random placement and the melt-quench cells alike): fixed-cell
#: FIRE with the data's potential (Vink SW) to f_max 1e-3 eV/Å (the melt-quench protocol's threshold), at most
#: 2000 steps.
RELAX = dict(fmax=1e-3, max_steps=2000)
SW_MAX_DEGREE = 32
MAX_NEIGHBORS = 64
#: statistics compared between sets (keys of ``describe``); density is held (the cell is given).
COMPARED = ("energy_per_atom_mean", "coordination_mean", "fourfold_fraction", "fivefold_fraction", "angle_mean",
            "angle_std", "gr_peak_1", "gr_peak_2", "gr_peak_3", "sq_peak_1", "sq_peak_2", "sq_peak_3")


def sw_energy_per_atom(crystal: Crystal) -> float:
    """SW energy per atom (eV/atom, the data's potential) of ``crystal``; NaN if a neighbour capacity overflows."""
    from atomsmith.physics import evaluate

    try:
        return evaluate(crystal, potential(), max_degree=SW_MAX_DEGREE,
                        max_neighbors=MAX_NEIGHBORS)["energy"] / crystal.n_atoms
    except ValueError:
        return float("nan")


def relax_one(crystal: Crystal, settings: dict = RELAX) -> tuple[Crystal, dict]:
    """The fixed-cell relaxation (:data:`RELAX`) with the data's potential; returns the relaxed cell and its record
    (:func:`atomsmith.physics.relax.relax_crystal`)."""
    from atomsmith.physics.relax import relax_crystal

    return relax_crystal(crystal, max_degree=SW_MAX_DEGREE, max_neighbors=MAX_NEIGHBORS, params=potential(),
                         **settings)


def fourfold(crystal: Crystal) -> float:
    from atomsmith.metrics.amorphous import coordination_numbers

    return float(np.mean(coordination_numbers(crystal) == 4))


def describe(cells: list[Crystal], energies: list[float] | None = None) -> dict:
    """Amorphous statistics (2.85 Å bonds, g(r) and S(q) peaks), the issue-15 target check and the SW energy per
    atom (mean, std) of a set of cells."""
    from atomsmith.metrics.amorphous import amorphous_statistics, compare_to_targets

    st = amorphous_statistics(cells)
    stats = st.as_dict()
    targets = compare_to_targets(st)
    for k in range(3):
        stats[f"gr_peak_{k + 1}"] = targets[f"gr_peak_{k + 1}"]["value"]
        stats[f"sq_peak_{k + 1}"] = targets[f"sq_peak_{k + 1}"]["value"]
    e = np.array(energies if energies is not None else [sw_energy_per_atom(c) for c in cells], float)
    stats.update(energy_per_atom_mean=float(np.nanmean(e)), energy_per_atom_std=float(np.nanstd(e)),
                 energy_nan=int(np.isnan(e).sum()), targets=targets,
                 targets_met=[k for k, v in targets.items() if v["ok"]],
                 targets_missed=[k for k, v in targets.items() if not v["ok"]])
    return stats


def relax_set(cells: list[Crystal], settings: dict = RELAX) -> tuple[list[Crystal], dict]:
    """Relax every cell; returns the relaxed cells (property ``energy_per_atom``, eV/atom) and the summary of the
    relaxations (wall and process-CPU seconds per cell, steps, energies)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out, records = [], []
    for c in cells:
        relaxed, rec = relax_one(c, settings)
        out.append(relaxed.with_properties(energy_per_atom=rec["energy_per_atom"]))
        records.append(rec)
    return out, {"seconds_per_cell": (time.perf_counter() - t0) / len(cells),
                 "cpu_seconds_per_cell": (time.process_time() - c0) / len(cells),
                 "steps_mean": float(np.mean([r["steps"] for r in records])),
                 "converged_fraction": float(np.mean([r["converged"] for r in records])),
                 "overflow": int(sum(r["overflow"] for r in records)),
                 "energies": [r["energy_per_atom"] for r in records]}


def random_cells(n_atoms: int, lattice: np.ndarray, n: int, seed: int) -> list[Crystal]:
    """Uniform random positions with no pair closer than 2 Å (the melt-quench random start) in the held cell."""
    from atomsmith.physics.melt_quench import random_start

    rng = np.random.default_rng([seed, n_atoms])
    box = float(lattice[0, 0])
    return [Crystal.from_cartesian(lattice, random_start(rng, n_atoms, box, 2.0), [14] * n_atoms).wrapped()
            for _ in range(n)]


def closer_than_random(data: dict, generated: dict, random: dict) -> dict:
    """Per compared statistic: ``|generated - data|`` against ``|random - data|`` (``closer`` when strictly
    smaller)."""
    out = {}
    for k in COMPARED:
        d, g, r = float(data[k]), float(generated[k]), float(random[k])
        out[k] = {"data": d, "generated": g, "random": r, "gap_generated": abs(g - d), "gap_random": abs(r - d),
                  "closer": bool(abs(g - d) < abs(r - d))}
    return out


# ---------------------------------------------------------------------------------------------------- sampling
@dataclasses.dataclass(frozen=True)
class EvalSetup:
    """Generation and evaluation settings. ``guidance``: steer the sampler with the data potential's energy
    (:class:`atomsmith.guidance.SWEnergyTarget`, target the melt-quench cells' mean energy per atom of that size)
    plus :class:`atomsmith.guidance.FourFoldTarget` (target 1); ``None`` fields: unguided only."""

    sizes: tuple[int, ...] = SIZES
    n_samples: tuple[tuple[int, int], ...] = ((64, 8), (216, 8), (512, 8))
    batch: tuple[tuple[int, int], ...] = ((64, 8), (216, 4), (512, 2))
    steps: int = 200
    energy_scale: float = 0.05  # eV/atom
    fourfold_scale: float = 0.05
    fourfold_weight: float = 1.0  # weight of the four-fold term next to the energy term
    guidance_scale: float | None = 10.0
    max_edge_grad: float = 1.0  # gradient clip per edge (objective units per Å)
    guidance_cutoff: float = 3.8
    seed: int = 0


QUICK_EVAL = EvalSetup(sizes=(64,), n_samples=((64, 2),), batch=((64, 2),), steps=10)


def sample_cells(model, key, n_atoms: int, lattice: np.ndarray, n: int, batch: int, steps: int, **kw
                 ) -> tuple[list[Crystal], dict]:
    """Amorphous mode: ``n`` cells of ``n_atoms`` Si in the held ``lattice``, sampled ``batch`` at a time (the
    first call compiles; wall and process-CPU seconds of the later calls are the warm cost per cell)."""
    out, times, cpu, overflow = [], [], [], 0
    conditions = {"composition": [14] * n_atoms, "lattice": lattice}
    for start in range(0, n, batch):
        key, sub = jax.random.split(key)
        stats: dict = {}
        c0 = time.process_time()
        out += model.sample(sub, min(batch, n - start), conditions=conditions, steps=steps, batch_size=batch,
                            stats=stats, **kw)
        cpu.append((time.process_time() - c0) / min(batch, n - start))
        times.append(stats["seconds"] / min(batch, n - start))
        overflow += stats["overflow"]
    warm = slice(1, None) if len(times) > 1 else slice(0, None)
    return out, {"seconds_per_cell_first_call": times[0], "seconds_per_cell_warm": float(np.mean(times[warm])),
                 "cpu_seconds_per_cell_first_call": cpu[0], "cpu_seconds_per_cell_warm": float(np.mean(cpu[warm])),
                 "calls": len(times), "batch": batch, "overflow_cells": overflow}


def guidance_for(ev: EvalSetup, energy_target: float):
    from atomsmith.guidance import FourFoldTarget, SWEnergyTarget

    objective = SWEnergyTarget(energy_target, ev.energy_scale, params=potential(), max_edge_grad=ev.max_edge_grad)
    if ev.fourfold_weight:
        objective = objective + ev.fourfold_weight * FourFoldTarget(1.0, ev.fourfold_scale)
    return dict(guidance=objective, guidance_scale=ev.guidance_scale, guidance_cutoff=ev.guidance_cutoff,
                guidance_weights=(1.0, 0.0, 0.0))


def evaluate(model, cells: dict[int, list[Crystal]], args, out_dir: Path) -> None:
    """Everything after training: generation at 64/216/512 atoms, relaxation, comparison with the data, random
    placement and experiment, CPU time against melt-quench; JSON, extxyz and the figure."""
    ev = QUICK_EVAL if args.quick else EvalSetup()
    if args.guidance_scale is not None:
        ev = dataclasses.replace(ev, guidance_scale=args.guidance_scale or None)
    if args.sizes:
        ev = dataclasses.replace(ev, sizes=tuple(int(x) for x in args.sizes.split(",")))
    n_samples, batch = dict(ev.n_samples), dict(ev.batch)
    key = jax.random.PRNGKey(ev.seed)
    from atomsmith.metrics.amorphous import A_SI_EXPERIMENT, A_SI_TARGETS

    results: dict = {"eval_setup": dataclasses.asdict(ev), "relax": RELAX, "potential": dataclasses.asdict(potential()),
                     "experiment": A_SI_EXPERIMENT, "targets_definition": {k: list(v) for k, v in A_SI_TARGETS.items()},
                     "model": {"how_trained": {k: v for k, v in model.metadata.get("how_trained", {}).items()
                                               if k != "history"},
                               "config": {"irreps": model.config.encoder.irreps_hidden,
                                          "layers": model.config.encoder.n_layers,
                                          "cutoff": model.config.encoder.cutoff,
                                          "max_edges_per_cell": model.config.max_edges_per_cell}},
                     "machine": machine(), "sizes": {}}
    curves: dict = {}
    for n_atoms in ev.sizes:
        reference = cells[n_atoms][:2] if args.quick else cells[n_atoms]
        lattice = np.asarray(reference[0].lattice)
        k = n_samples[n_atoms]
        mq_energy = float(np.mean([c.properties["energy_per_atom"] for c in reference]))
        kinds = {"diffusion": {}}
        if ev.guidance_scale:
            kinds["diffusion_guided"] = guidance_for(ev, mq_energy)
        size = {"n_cells": {}, "melt_quench_cpu_seconds_per_cell": float(np.mean(
            [c.properties["seconds"] for c in reference]))}
        sets = {}
        for name, kw in kinds.items():
            log(f"{n_atoms} atoms, {name}: sampling {k} cells (cell {lattice[0, 0]:.3f} Å, {ev.steps} steps)")
            key, k_s = jax.random.split(key)
            sets[name], size[f"timing_{name}"] = sample_cells(model, k_s, n_atoms, lattice, k, batch[n_atoms],
                                                              ev.steps, **kw)
            size[f"{name}_before_relax"] = describe(sets[name])
            log(f"  sampled: {size[f'timing_{name}']}")
        sets["melt_quench"] = reference
        sets["random"] = random_cells(n_atoms, lattice, k, ev.seed)
        curves[n_atoms] = {}
        for name, group in sets.items():
            relaxed, rec = relax_set(group)
            size[name] = {**describe(relaxed, rec.pop("energies")), "relax": rec}
            size["n_cells"][name] = len(group)
            curves[n_atoms][name] = relaxed
            s = size[name]
            log(f"  {name}: E {s['energy_per_atom_mean']:.4f} eV/atom, coordination {s['coordination_mean']:.3f}, "
                f"4-fold {s['fourfold_fraction']:.3f}, angles {s['angle_mean']:.1f} ± {s['angle_std']:.1f}, g(r) "
                f"{s['gr_peak_1']:.3f}/{s['gr_peak_2']:.3f}/{s['gr_peak_3']:.3f}, S(q) {s['sq_peak_1']:.3f}/"
                f"{s['sq_peak_2']:.3f}/{s['sq_peak_3']:.3f}, relax {rec['cpu_seconds_per_cell']:.1f} CPU s/cell, "
                f"{rec['steps_mean']:.0f} steps")
        for name in kinds:
            t = size[f"timing_{name}"]
            cpu = t["cpu_seconds_per_cell_warm"] + size[name]["relax"]["cpu_seconds_per_cell"]
            size[f"{name}_vs"] = {
                "closer_than_random": closer_than_random(size["melt_quench"], size[name], size["random"]),
                "fourfold_at_least_0.90": bool(size[name]["fourfold_fraction"] >= 0.90),
                "energy_gap_to_melt_quench": size[name]["energy_per_atom_mean"] - size["melt_quench"][
                    "energy_per_atom_mean"],
                "cpu_seconds_per_cell": cpu,
                "speedup_vs_melt_quench": size["melt_quench_cpu_seconds_per_cell"] / cpu}
            v = size[f"{name}_vs"]
            log(f"  {name}: closer than random on {sum(x['closer'] for x in v['closer_than_random'].values())}"
                f"/{len(COMPARED)}, energy gap {v['energy_gap_to_melt_quench']:+.4f} eV/atom, "
                f"{cpu:.1f} CPU s/cell ({v['speedup_vs_melt_quench']:.0f}x below melt-quench)")
        results["sizes"][str(n_atoms)] = size
        name = "diffusion_guided" if "diffusion_guided" in kinds else "diffusion"
        results["sizes"][str(n_atoms)]["shipped_as_generated"] = name
        target = out_dir / f"asi_generated_{n_atoms}.extxyz" if args.quick else HERE / f"asi_generated_{n_atoms}.extxyz"
        io.write(target, curves[n_atoms][name], overwrite=True)
        log(f"wrote {target}")
        stem = "amorphous_si_quick" if args.quick else "amorphous_si"
        write_json(results, (out_dir if args.quick else HERE) / f"{stem}.json")  # after every size: partial results
    stem = "amorphous_si_quick" if args.quick else "amorphous_si"
    plot_structure(curves, (out_dir if args.quick else HERE) / f"{stem}_structure.png", A_SI_EXPERIMENT)


def machine() -> dict:
    import os
    import platform

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_at_start": os.getloadavg(), "device": "CPU (no GPU)"}


def write_json(results: dict, path: Path) -> None:
    from atomsmith.metrics.evaluate import json_safe

    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(json_safe(results), indent=2))
    tmp.replace(path)
    log(f"wrote {path}")


def plot_structure(curves: dict, path: Path, experiment: dict) -> None:
    """g(r), S(q) and bond angles of every set (after the relaxation) per size, experimental peaks dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomsmith.metrics.amorphous import bond_angles, pair_distribution, structure_factor

    sizes = sorted(curves)
    fig, axes = plt.subplots(3, len(sizes), figsize=(4.4 * len(sizes), 9.5), squeeze=False)
    styles = {"melt_quench": ("k", "-", 2.0), "diffusion": ("tab:blue", "-", 1.2),
              "diffusion_guided": ("tab:green", "-", 1.2), "random": ("tab:red", ":", 1.2)}
    for j, n in enumerate(sizes):
        for name, group in curves[n].items():
            color, ls, lw = styles[name]
            label = name.replace("_", "-")
            r, g = pair_distribution(group, r_max=8.0, n_bins=400)
            axes[0, j].plot(r, g, color=color, ls=ls, lw=lw, label=label)
            q, s = structure_factor(group)
            axes[1, j].plot(q, s, color=color, ls=ls, lw=lw, label=label)
            angles = np.concatenate([bond_angles(c) for c in group])
            axes[2, j].hist(angles, bins=np.linspace(40, 180, 71), density=True, histtype="step", color=color, ls=ls,
                            lw=lw, label=label)
        for x in experiment["gr_peaks"]:
            axes[0, j].axvline(x, color="0.5", ls="--", lw=0.8)
        for x in experiment["sq_peaks"]:
            axes[1, j].axvline(x, color="0.5", ls="--", lw=0.8)
        axes[2, j].axvline(109.47, color="0.5", ls="--", lw=0.8)
        axes[0, j].set(title=f"{n} atoms (all relaxed, Vink SW)", xlabel="r (Å)", ylabel="g(r)")
        axes[1, j].set(xlabel="q (1/Å)", ylabel="S(q)", xlim=(0.5, 12))
        axes[2, j].set(xlabel="bond angle (°), bonds < 2.85 Å", ylabel="density")
        axes[0, j].legend(fontsize=8)
    fig.text(0.5, 0.005, "dashed grey: experimental a-Si peaks (Laaziri et al. 1999), tetrahedral angle",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    log(f"wrote {path}")


def markdown_tables(results: dict) -> str:
    """The README tables (markdown) from ``amorphous_si.json``."""
    exp = results["experiment"]
    lines = ["| atoms | set | E (eV/atom) | coordination | 4-fold / 5-fold | angle mean ± std (°) | g(r) peaks (Å) | "
             "S(q) peaks (1/Å) | CPU s/cell |", "|---" * 9 + "|"]
    for n, size in results["sizes"].items():
        names = [k for k in ("diffusion", "diffusion_guided") if k in size] + ["random", "melt_quench"]
        for name in names:
            st = size[name]
            if name in ("diffusion", "diffusion_guided"):
                cpu = f"{size[f'{name}_vs']['cpu_seconds_per_cell']:.1f}"
            elif name == "random":
                cpu = f"{st['relax']['cpu_seconds_per_cell']:.1f} (relax)"
            else:
                cpu = f"{size['melt_quench_cpu_seconds_per_cell']:.0f}"
            label = {"diffusion": "diffusion + relax", "diffusion_guided": "guided diffusion + relax",
                     "random": "random + relax", "melt_quench": "melt-quench (data)"}[name]
            lines.append(
                f"| {n} | {label} | {st['energy_per_atom_mean']:.3f} ± {st['energy_per_atom_std']:.3f} | "
                f"{st['coordination_mean']:.3f} | {100 * st['fourfold_fraction']:.1f} % / "
                f"{100 * st['fivefold_fraction']:.1f} % | {st['angle_mean']:.1f} ± {st['angle_std']:.1f} | "
                f"{st['gr_peak_1']:.2f} / {st['gr_peak_2']:.2f} / {st['gr_peak_3']:.2f} | "
                f"{st['sq_peak_1']:.2f} / {st['sq_peak_2']:.2f} / {st['sq_peak_3']:.2f} | {cpu} |")
    lines.append("| | experiment (Laaziri 1999) / targets | | 3.90–4.05 | ≥ 95 % / ≤ 3 % | 109.5 ± 1.5, std ≤ 11 | "
                 + " / ".join(f"{x:.2f}" for x in exp["gr_peaks"]) + " | "
                 + " / ".join(f"{x:.2f}" for x in exp["sq_peaks"]) + " | |")
    lines += ["", "| atoms | set | closer to the data than random + relax | 4-fold ≥ 90 % | E − E(melt-quench) "
              "(eV/atom) | CPU time vs melt-quench |", "|---" * 6 + "|"]
    for n, size in results["sizes"].items():
        for name in ("diffusion", "diffusion_guided"):
            if f"{name}_vs" not in size:
                continue
            v = size[f"{name}_vs"]
            c = v["closer_than_random"]
            missed = [k for k, x in c.items() if not x["closer"]]
            lines.append(f"| {n} | {name.replace('_', ' ')} | {sum(x['closer'] for x in c.values())}/{len(c)}"
                         + (f" (not: {', '.join(missed)})" if missed else "") + f" | "
                         f"{'yes' if v['fourfold_at_least_0.90'] else 'no'} | {v['energy_gap_to_melt_quench']:+.3f} | "
                         f"{v['speedup_vs_melt_quench']:.0f}× less |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, few samples")
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: Setup.steps)")
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated cell sizes to generate (default "
                        "64,216,512)")
    parser.add_argument("--guidance-scale", type=float, default=None,
                        help="scale of the energy + four-fold guidance (0: unguided only; default EvalSetup's)")
    parser.add_argument("--tables", action="store_true", help="print the README tables from amorphous_si.json")
    args = parser.parse_args(argv)
    if args.tables:
        print(markdown_tables(json.loads((HERE / "amorphous_si.json").read_text())))
        return
    setup = QUICK_SETUP if args.quick else Setup()
    if args.steps is not None:
        setup = dataclasses.replace(setup, steps=args.steps)
    command = "python experiments/guided/amorphous_si.py" + (" --quick" if args.quick else "") + \
        (f" --steps {args.steps}" if args.steps is not None else "")
    out_dir = RUNS / ("quick" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = {n: load_cells(n) for n in SIZES}
    train, val = split(cells)
    if args.quick:
        train, val = cells[64][:2], cells[64][-1:]
    model = train_model(setup, train, val, out_dir / "a_si_vink_diffusion.ckpt", command)
    if args.train_only:
        return
    evaluate(model, cells, args, out_dir)


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    main()
