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
#: cells per size in the a-Si data set (``atomsmith data make-asi --n-cells``) and how many are held out.
N_CELLS = {64: 16, 216: 8, 512: 20}
HELD_OUT = {64: 4, 216: 2}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------- data
def load_cells(n_atoms: int) -> list[Crystal]:
    """The melt-quench cells of ``n_atoms`` atoms (regenerated with ``atomsmith data make-asi`` when absent)."""
    path = DATA / "output" / f"a_si_{n_atoms}.extxyz"
    if path.exists():
        return io.read(path)
    out = RUNS / f"a_si_{n_atoms}"
    made = out / "a_si.extxyz"
    if not made.exists():
        cmd = [sys.executable, "-m", "atomsmith", "data", "make-asi", "--n-atoms", str(n_atoms), "--n-cells",
               str(N_CELLS[n_atoms]), "--seed", "0", "--single-file", "--out", str(out)]
        log("regenerating a-Si cells: " + " ".join(cmd[2:]))
        subprocess.run(cmd, check=True)
    return io.read(made)


def split(cells: dict[int, list[Crystal]]) -> tuple[list[Crystal], list[Crystal]]:
    train, val = [], []
    for n, k in HELD_OUT.items():
        train += cells[n][:-k]
        val += cells[n][-k:]
    return train, val


# ------------------------------------------------------------------------------------------------------ training
@dataclasses.dataclass(frozen=True)
class Setup:
    irreps: str = "24x0e+8x1o+4x2e"
    layers: int = 2
    cutoff: float = 4.0
    batch_size: int = 8
    steps: int = 6000
    eval_every: int = 500
    chunk: int = 1500  # steps per call of the training loop (a log line between calls; resumes exactly)
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
        "dataset": ("SW melt-quench a-Si of experiments/a_si_data (atomsmith data make-asi --seed 0; 2.29 g/cm3 "
                    "cubic cells): " + ", ".join(f"{k} x {n} atoms" for n, k in counts.items()) + " for training"),
        "validation": ", ".join(f"last {k} of the {N_CELLS[n]} cells of {n} atoms" for n, k in HELD_OUT.items()),
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
#: the same short SW relaxation for every set (fixed cell): FIRE to f_max 0.01 eV/Å or 300 steps, whichever first.
SHORT_RELAX = dict(fmax=0.01, max_steps=300)
#: the melt-quench protocol's final relaxation (FIRE to f_max 0.001 eV/Å, at most 5000 steps), 64-atom cells only.
FULL_RELAX = dict(fmax=1e-3, max_steps=5000)
SW_MAX_DEGREE = 32
MAX_NEIGHBORS = 64


def sw_energy_per_atom(crystal: Crystal) -> float:
    """SW energy per atom (eV/atom) of ``crystal``; NaN if a neighbour capacity overflows (atoms piled up)."""
    from atomsmith.physics import evaluate

    try:
        return evaluate(crystal, max_degree=SW_MAX_DEGREE, max_neighbors=MAX_NEIGHBORS)["energy"] / crystal.n_atoms
    except ValueError:
        return float("nan")


def short_relax(crystal: Crystal, settings: dict = SHORT_RELAX) -> tuple[Crystal, dict]:
    """The short fixed-cell SW relaxation (:data:`SHORT_RELAX`, or ``settings``); returns the relaxed cell and its
    record (:func:`atomsmith.physics.relax.relax_crystal`, also behind ``atomsmith sample --relax``)."""
    from atomsmith.physics.relax import relax_crystal

    return relax_crystal(crystal, max_degree=SW_MAX_DEGREE, max_neighbors=MAX_NEIGHBORS, **settings)


def fourfold(crystal: Crystal) -> float:
    from atomsmith.metrics.amorphous import coordination_numbers

    return float(np.mean(coordination_numbers(crystal) == 4))


def describe(cells: list[Crystal], energies: list[float] | None = None) -> dict:
    """Amorphous statistics (2.85 Å bonds) + SW energy per atom (mean, std) of a set of cells."""
    from atomsmith.metrics.amorphous import amorphous_statistics

    stats = amorphous_statistics(cells).as_dict()
    e = np.array(energies if energies is not None else [sw_energy_per_atom(c) for c in cells], float)
    stats.update(energy_per_atom_mean=float(np.nanmean(e)), energy_per_atom_std=float(np.nanstd(e)),
                 energy_nan=int(np.isnan(e).sum()), fourfold_fraction=stats["coordination_fractions"].get("4", 0.0))
    return stats


def relax_set(cells: list[Crystal], settings: dict = SHORT_RELAX) -> tuple[list[Crystal], dict]:
    """Relax every cell (short relax by default); returns the relaxed cells and the summary of the relaxations
    (incl. seconds/cell)."""
    t0 = time.perf_counter()
    out, records = [], []
    for c in cells:
        relaxed, rec = short_relax(c, settings)
        out.append(relaxed)
        records.append(rec)
    e = [r["energy_per_atom"] for r in records]
    return out, {"seconds_per_cell": (time.perf_counter() - t0) / len(cells),
                 "steps_mean": float(np.mean([r["steps"] for r in records])),
                 "converged_fraction": float(np.mean([r["converged"] for r in records])),
                 "overflow": int(sum(r["overflow"] for r in records)), "energies": e}


def random_cells(n_atoms: int, lattice: np.ndarray, n: int, seed: int) -> list[Crystal]:
    """Uniform random positions with no pair closer than 2 Å (the melt-quench random start) in the held cell."""
    from atomsmith.physics.melt_quench import random_start

    rng = np.random.default_rng([seed, n_atoms])
    box = float(lattice[0, 0])
    return [Crystal.from_cartesian(lattice, random_start(rng, n_atoms, box, 2.0), [14] * n_atoms).wrapped()
            for _ in range(n)]


# ---------------------------------------------------------------------------------------------------- sampling
@dataclasses.dataclass(frozen=True)
class EvalSetup:
    sizes: tuple[int, ...] = (64, 216, 512)
    n_samples: tuple[tuple[int, int], ...] = ((64, 16), (216, 8), (512, 4))
    batch: tuple[tuple[int, int], ...] = ((64, 8), (216, 4), (512, 2))
    steps: int = 200
    energy_targets: tuple[float, ...] = (-3.4, -3.7, -4.0)
    energy_scale: float = 0.05  # eV/atom
    energy_guidance: float = 30.0
    energy_max_edge_grad: float = 1.0  # gradient clip per edge (objective units per Å)
    fourfold_targets: tuple[float, ...] = (0.45, 0.6, 0.75)
    fourfold_scale: float = 0.05
    fourfold_guidance: float = 10.0
    n_conditioned: int = 8  # 64-atom cells per target
    seed: int = 0


QUICK_EVAL = EvalSetup(sizes=(64,), n_samples=((64, 2),), batch=((64, 2),), steps=10, n_conditioned=2,
                       energy_targets=(-3.9, -4.1), fourfold_targets=(0.6,))


def sample_cells(model, key, n_atoms: int, lattice: np.ndarray, n: int, batch: int, steps: int, **kw
                 ) -> tuple[list[Crystal], dict]:
    """Amorphous mode: ``n`` cells of ``n_atoms`` Si in the held ``lattice``, sampled ``batch`` at a time (the
    first call compiles; the time of the later calls is the warm time per cell)."""
    out, times, overflow = [], [], 0
    conditions = {"composition": [14] * n_atoms, "lattice": lattice}
    for start in range(0, n, batch):
        key, sub = jax.random.split(key)
        stats: dict = {}
        out += model.sample(sub, min(batch, n - start), conditions=conditions, steps=steps, batch_size=batch,
                            stats=stats, **kw)
        times.append(stats["seconds"] / min(batch, n - start))
        overflow += stats["overflow"]
    return out, {"seconds_per_cell_first_call": times[0],
                 "seconds_per_cell_warm": float(np.mean(times[1:])) if len(times) > 1 else None,
                 "calls": len(times), "batch": batch, "overflow_cells": overflow}


def evaluate(model, cells: dict[int, list[Crystal]], args, out_dir: Path) -> None:
    """Everything after training: amorphous comparison, timing, conditioned runs, JSON and plots."""
    from atomsmith.guidance import FourFoldTarget, SWEnergyTarget

    ev = QUICK_EVAL if args.quick else EvalSetup()
    if args.no_512:
        ev = dataclasses.replace(ev, sizes=tuple(s for s in ev.sizes if s != 512))
    n_samples, batch = dict(ev.n_samples), dict(ev.batch)
    key = jax.random.PRNGKey(ev.seed)
    results: dict = {"eval_setup": dataclasses.asdict(ev), "short_relax": SHORT_RELAX, "full_relax": FULL_RELAX,
                     "model": {"how_trained": {k: v for k, v in model.metadata.get("how_trained", {}).items()
                                               if k != "history"},
                               "config": {"irreps": model.config.encoder.irreps_hidden,
                                          "layers": model.config.encoder.n_layers,
                                          "cutoff": model.config.encoder.cutoff,
                                          "max_edges_per_cell": model.config.max_edges_per_cell}},
                     "sizes": {}}
    curves: dict = {}
    for n_atoms in ev.sizes:
        reference = cells.get(n_atoms) or load_cells(n_atoms)
        if args.quick:
            reference = reference[:2]
        lattice = np.asarray(reference[0].lattice)
        k = n_samples[n_atoms]
        log(f"{n_atoms} atoms: sampling {k} cells (cell {lattice[0, 0]:.3f} Å, {ev.steps} PC steps)")
        key, k_s = jax.random.split(key)
        generated, timing = sample_cells(model, k_s, n_atoms, lattice, k, batch[n_atoms], ev.steps)
        log(f"  sampled: {timing}")
        e_raw = [sw_energy_per_atom(c) for c in generated]
        sets = {"diffusion": generated, "melt_quench": reference,
                "random": random_cells(n_atoms, lattice, k, ev.seed)}
        size = {"timing_sampling": timing, "n_cells": {name: len(v) for name, v in sets.items()},
                "diffusion_before_relax": describe(generated, e_raw)}
        curves[n_atoms] = {}
        for name, group in sets.items():
            relaxed, rec = relax_set(group)
            size[name] = {**describe(relaxed, rec.pop("energies")), "relax": rec}
            curves[n_atoms][name] = relaxed
            log(f"  {name}: E {size[name]['energy_per_atom_mean']:.4f} eV/atom, coordination "
                f"{size[name]['coordination_mean']:.3f}, 4-fold {size[name]['fourfold_fraction']:.3f}, angles "
                f"{size[name]['angle_mean']:.1f} ± {size[name]['angle_std']:.1f}, relax {rec['seconds_per_cell']:.2f} "
                f"s/cell, {rec['steps_mean']:.0f} steps")
        if n_atoms == 64:  # does the diffusion start relax to a better minimum than random placement?
            size["full_relax"] = {"settings": FULL_RELAX}
            for name in ("diffusion", "random"):
                relaxed, rec = relax_set(sets[name], FULL_RELAX)
                size["full_relax"][name] = {**describe(relaxed, rec.pop("energies")), "relax": rec}
                log(f"  full relax, {name}: E {size['full_relax'][name]['energy_per_atom_mean']:.4f} eV/atom, "
                    f"4-fold {size['full_relax'][name]['fourfold_fraction']:.3f}, {rec['steps_mean']:.0f} steps")
        if n_atoms in HELD_OUT and not args.quick:
            held = reference[-HELD_OUT[n_atoms]:]
            size["melt_quench_held_out"] = describe(held)
        results["sizes"][str(n_atoms)] = size
        io.write(out_dir / f"diffusion_a_si_{n_atoms}.extxyz", curves[n_atoms]["diffusion"], overwrite=True)
    results["timing"] = timing_table(results, args.quick)
    # ------------------------------------------------------------------ conditioned runs (64 atoms)
    lattice = np.asarray(cells[64][0].lattice)
    n = ev.n_conditioned
    runs = {"sw_energy_per_atom": (lambda t, s: SWEnergyTarget(t, s, max_edge_grad=ev.energy_max_edge_grad),
                                   ev.energy_targets, ev.energy_scale, ev.energy_guidance),
            "fourfold_fraction": (FourFoldTarget, ev.fourfold_targets, ev.fourfold_scale, ev.fourfold_guidance)}
    conditioned = {}
    for prop, (objective_cls, targets, scale, w) in runs.items():
        key, k_u = jax.random.split(key)
        rows = []
        for target in (None, *targets):
            kw = {} if target is None else dict(guidance=objective_cls(target, scale), guidance_scale=w,
                                                guidance_cutoff=3.8, guidance_weights=(1.0, 0.0, 0.0))
            t0 = time.perf_counter()
            # the same key for every target: the runs differ only by the guidance
            made, timing = sample_cells(model, k_u, 64, lattice, n, min(n, 8), ev.steps, **kw)
            relaxed, rec = relax_set(made)
            before = [measure(prop, c) for c in made]
            after = [measure(prop, c) for c in relaxed]
            row = {"target": target, "guidance_scale": 0.0 if target is None else w, "objective_scale": scale,
                   "before_relax_mean": float(np.nanmean(before)), "before_relax_std": float(np.nanstd(before)),
                   "after_relax_mean": float(np.nanmean(after)), "after_relax_std": float(np.nanstd(after)),
                   "before_relax": before, "after_relax": after,
                   "coordination_after": describe(relaxed, rec["energies"])["coordination_mean"],
                   "energy_after": float(np.mean(rec["energies"])), "seconds": time.perf_counter() - t0,
                   "overflow_cells": timing["overflow_cells"]}
            if target is not None:
                row["abs_error_before"] = abs(row["before_relax_mean"] - target)
                row["abs_error_after"] = abs(row["after_relax_mean"] - target)
            rows.append(row)
            log(f"  {prop} target {target}: before relax {row['before_relax_mean']:.4f} ± "
                f"{row['before_relax_std']:.4f}, after {row['after_relax_mean']:.4f} ± {row['after_relax_std']:.4f}")
        conditioned[prop] = rows
    results["conditioned"] = conditioned
    name = "amorphous_si_quick" if args.quick else "amorphous_si"
    target_dir = out_dir if args.quick else HERE
    path = target_dir / f"{name}.json"
    from atomsmith.metrics.evaluate import json_safe

    path.write_text(json.dumps(json_safe(results), indent=2))
    log(f"wrote {path}")
    plot_structure(curves, target_dir / f"{name}_structure.png")
    plot_conditioned(conditioned, target_dir / f"{name}_conditioned.png")


def measure(prop: str, crystal: Crystal) -> float:
    return sw_energy_per_atom(crystal) if prop == "sw_energy_per_atom" else fourfold(crystal)


def timing_table(results: dict, quick: bool) -> dict:
    """Wall time per cell: diffusion sampling (+ relaxation) against melt-quench MD."""
    out: dict = {"melt_quench_recorded_s_per_cell": {}, "note": (
        "diffusion: seconds per cell of model.sample at the sampling batch (warm = after the first, compiling call); "
        "short relax: the same FIRE for every set; melt-quench: one 64-atom cell timed here with the data protocol "
        "(MeltQuenchConfig(n_atoms=64), includes its JIT compilation) and the per-cell means recorded in "
        "experiments/a_si_data/results.json (2 shared cores, includes compilation per run)")}
    recorded = json.loads((DATA / "results.json").read_text()) if (DATA / "results.json").exists() else {}
    for n, stats in recorded.get("statistics", {}).items():
        if isinstance(stats, dict) and "seconds_per_cell_mean" in stats and n.isdigit():
            out["melt_quench_recorded_s_per_cell"][n] = stats["seconds_per_cell_mean"]
    if not quick:
        from atomsmith.physics.melt_quench import MeltQuenchConfig, melt_quench

        t0 = time.perf_counter()
        melt_quench(MeltQuenchConfig(n_atoms=64), seed=1, index=0)
        out["melt_quench_64_timed_here_s"] = time.perf_counter() - t0
        log(f"  one 64-atom melt-quench: {out['melt_quench_64_timed_here_s']:.1f} s")
    for n, size in results["sizes"].items():
        t = size["timing_sampling"]
        warm = t["seconds_per_cell_warm"] or t["seconds_per_cell_first_call"]
        out[n] = {"diffusion_sample_s_per_cell": warm,
                  "diffusion_first_call_s_per_cell": t["seconds_per_cell_first_call"],
                  "short_relax_s_per_cell": size["diffusion"]["relax"]["seconds_per_cell"],
                  "diffusion_plus_relax_s_per_cell": warm + size["diffusion"]["relax"]["seconds_per_cell"]}
    return out


def plot_structure(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomsmith.metrics.amorphous import bond_angles, pair_distribution

    sizes = sorted(curves)
    fig, axes = plt.subplots(2, len(sizes), figsize=(4.2 * len(sizes), 6.5), squeeze=False)
    styles = {"melt_quench": ("k", "-"), "diffusion": ("tab:blue", "-"), "random": ("tab:red", ":")}
    for j, n in enumerate(sizes):
        for name, group in curves[n].items():
            color, ls = styles[name]
            r, g = pair_distribution(group, r_max=min(8.0, 0.5 * group[0].lattice[0, 0] * 1.5), n_bins=200)
            axes[0, j].plot(r, g, color=color, ls=ls, label=name.replace("_", "-"))
            angles = np.concatenate([bond_angles(c) for c in group])
            axes[1, j].hist(angles, bins=np.linspace(40, 180, 71), density=True, histtype="step", color=color, ls=ls,
                            label=name.replace("_", "-"))
        axes[0, j].set(title=f"{n} atoms (after the short SW relax)", xlabel="r (Å)", ylabel="g(r)")
        axes[1, j].set(xlabel="bond angle (°), bonds < 2.85 Å", ylabel="density")
        axes[0, j].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log(f"wrote {path}")


def plot_conditioned(conditioned: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(conditioned), figsize=(5 * len(conditioned), 4.4), squeeze=False)
    labels = {"sw_energy_per_atom": "SW energy per atom (eV/atom)", "fourfold_fraction": "four-fold fraction"}
    for ax, (prop, rows) in zip(axes[0], conditioned.items()):
        guided = [r for r in rows if r["target"] is not None]
        plain = next(r for r in rows if r["target"] is None)
        t = np.array([r["target"] for r in guided])
        for when, marker, color in (("before_relax", "o", "tab:blue"), ("after_relax", "s", "tab:orange")):
            ax.errorbar(t, [r[f"{when}_mean"] for r in guided], yerr=[r[f"{when}_std"] for r in guided], fmt=marker,
                        color=color, capsize=3, label=f"guided, {when.replace('_', ' ')}")
            ax.axhline(plain[f"{when}_mean"], color=color, ls=":", label=f"unconditional, {when.replace('_', ' ')}")
        lo, hi = min(t.min(), ax.get_ylim()[0]), max(t.max(), ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="achieved = requested")
        ax.set(xlabel=f"requested {labels[prop]}", ylabel=f"achieved {labels[prop]}", title=f"64-atom a-Si: {prop}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log(f"wrote {path}")


def markdown_tables(results: dict) -> str:
    """The README tables (markdown) from ``amorphous_si.json``."""
    lines = ["| atoms | set | E (eV/atom) | coordination | 4-fold | 5-fold | angle mean ± std (°) | "
             "4-fold-centre angle std (°) | first g(r) peak (Å) | relax steps (mean) |", "|---" * 10 + "|"]
    for n, size in results["sizes"].items():
        rows = [("diffusion, raw (no relax)", size["diffusion_before_relax"], None)]
        rows += [(name.replace("_", "-"), size[name], size[name]["relax"]) for name in ("diffusion", "melt_quench",
                                                                                        "random")]
        for label, st, relax in rows:
            fr = st["coordination_fractions"]
            steps = "" if relax is None else f"{relax['steps_mean']:.0f}"
            lines.append(
                f"| {n} | {label} | {st['energy_per_atom_mean']:.3f} ± {st['energy_per_atom_std']:.3f} | "
                f"{st['coordination_mean']:.2f} | {100 * fr.get('4', 0):.0f} % | {100 * fr.get('5', 0):.0f} % | "
                f"{st['angle_mean']:.1f} ± {st['angle_std']:.1f} | {st['angle_std_fourfold']:.1f} | "
                f"{st['first_peak']:.3f} | {steps} |")
    full = results["sizes"].get("64", {}).get("full_relax")
    if full:
        lines += ["", "| 64 atoms, full relax (f_max 0.001 eV/Å) | E (eV/atom) | coordination | 4-fold | "
                  "angle std (°) | FIRE steps (mean) |", "|---" * 6 + "|"]
        for name in ("diffusion", "random"):
            st = full[name]
            lines.append(f"| {name} | {st['energy_per_atom_mean']:.3f} ± {st['energy_per_atom_std']:.3f} | "
                         f"{st['coordination_mean']:.2f} | {100 * st['fourfold_fraction']:.0f} % | "
                         f"{st['angle_std']:.1f} | {st['relax']['steps_mean']:.0f} |")
        mq = results["sizes"]["64"]["melt_quench"]
        lines.append(f"| melt-quench (its own final FIRE) | {mq['energy_per_atom_mean']:.3f} ± "
                     f"{mq['energy_per_atom_std']:.3f} | {mq['coordination_mean']:.2f} | "
                     f"{100 * mq['fourfold_fraction']:.0f} % | {mq['angle_std']:.1f} | - |")
    t = results["timing"]
    lines += ["", "| atoms | diffusion sample (s/cell, warm) | first call incl. compile (s/cell) | "
              "short relax (s/cell) | sample + relax (s/cell) | melt-quench (s/cell) |", "|---" * 6 + "|"]
    for n in results["sizes"]:
        mq = t["melt_quench_recorded_s_per_cell"].get(n)
        here = t.get("melt_quench_64_timed_here_s") if n == "64" else None
        mq_text = (f"{mq:.0f} (recorded)" if mq else "-") + (f", {here:.0f} (timed here)" if here else "")
        r = t[n]
        lines.append(f"| {n} | {r['diffusion_sample_s_per_cell']:.2f} | {r['diffusion_first_call_s_per_cell']:.2f} | "
                     f"{r['short_relax_s_per_cell']:.2f} | {r['diffusion_plus_relax_s_per_cell']:.2f} | {mq_text} |")
    for prop, rows in results["conditioned"].items():
        lines += ["", f"| {prop}: requested | guidance scale | achieved, raw sample | achieved, after short relax | "
                  "|error| raw | |error| relaxed | E after relax (eV/atom) |", "|---" * 7 + "|"]
        for r in rows:
            req = "unconditional" if r["target"] is None else f"{r['target']:.3g}"
            err = ("-", "-") if r["target"] is None else (f"{r['abs_error_before']:.3f}", f"{r['abs_error_after']:.3f}")
            lines.append(f"| {req} | {r['guidance_scale']:g} | "
                         f"{r['before_relax_mean']:.3f} ± {r['before_relax_std']:.3f}"
                         f" | {r['after_relax_mean']:.3f} ± {r['after_relax_std']:.3f} | {err[0]} | {err[1]} | "
                         f"{r['energy_after']:.3f} |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, few samples")
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: Setup.steps)")
    parser.add_argument("--no-512", action="store_true", help="skip the 512-atom cells")
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
    cells = {n: load_cells(n) for n in (64, 216)}
    train, val = split(cells)
    if args.quick:
        train, val = cells[64][:2], cells[64][-1:]
    model = train_model(setup, train, val, out_dir / "a_si_diffusion.ckpt", command)
    if args.train_only:
        return
    evaluate(model, cells, args, out_dir)


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    main()
