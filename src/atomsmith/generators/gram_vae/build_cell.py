"""Assemble a periodic amorphous cell by repeated environment infilling with the Gram VAE, then relax it with SW.

Procedure (cubic cell of fixed density, as the melt-quench cells):

1. one seed atom; its environment is a sample of the model (k = 0);
2. *network growth*: repeat while some atom has fewer than ``target_bonds`` neighbours closer than
   ``bond_cutoff``: pick such an atom with the most neighbours within ``r_cut`` (the most constrained one), hold its
   (up to ``n_neighbors - 1``) nearest neighbours fixed, infill ``candidates`` completions, and add the generated
   atoms *bonded to the centre* of the completion that places the most of them without coming closer than
   ``min_distance`` to any existing atom (periodic images included). The other generated atoms are context only.
   An atom whose completions all clash is marked finished;
3. *filling*: if the cell is not full yet, the same with every atom whose environment within ``r_cut`` has fewer
   than ``n_neighbors`` atoms, now adding all generated atoms that fit;
4. if no candidate centre remains before the cell is full, each missing atom goes to the grid point farthest from
   every atom (counted as ``n_fallback``);
5. a brief FIRE relaxation with Stillinger-Weber (:mod:`atomsmith.physics`), cell fixed.

Minimum-image vectors are exact here because the cell edge exceeds ``2 r_cut`` (checked).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.gram_vae.infill import InfillConfig, infill
from atomsmith.structures.crystal import Crystal

if TYPE_CHECKING:
    from atomsmith.generators.gram_vae.model import GramVAE


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Settings of :func:`build_cell`.

    Attributes:
      n_atoms: atoms in the cubic cell.
      density: g/cm^3 (the a-Si melt-quench cells use 2.29).
      min_distance: a generated atom closer than this (Å) to an existing one is rejected.
      candidates: completions infilled per step (the one placing the most atoms is used).
      bond_cutoff: Å, bonded neighbours (a-Si: 2.85).
      target_bonds: bonds every atom should get in the growth phase (a-Si: 4).
      infill: latent-optimisation settings.
      relax_steps: FIRE steps of the final SW relaxation (0: no relaxation).
      fmax: FIRE force tolerance, eV/Å.
      seed: random seed.
    """

    n_atoms: int = 64
    density: float = 2.29
    min_distance: float = 2.1
    candidates: int = 4
    bond_cutoff: float = 2.85
    target_bonds: int = 4
    infill: InfillConfig = InfillConfig(restarts=4, rounds=3, steps=80)
    relax_steps: int = 300
    fmax: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_atoms < 2 or self.density <= 0 or self.min_distance <= 0 or self.candidates < 1 \
                or self.relax_steps < 0:
            raise ValueError(f"invalid BuildConfig {self}")


def box_length(n_atoms: int, density: float) -> float:
    """Edge (Å) of a cubic cell of ``n_atoms`` Si atoms at ``density`` g/cm^3 (same as the melt-quench cells)."""
    from atomsmith.physics.melt_quench import MeltQuenchConfig

    return MeltQuenchConfig(n_atoms=n_atoms, density=density).box_length


def _min_image(d: np.ndarray, box: float) -> np.ndarray:
    return d - box * np.round(d / box)


def _neighbors(positions: np.ndarray, i: int, box: float, r_cut: float) -> np.ndarray:
    """Minimum-image vectors ``[m, 3]`` from atom ``i`` to the other atoms within ``r_cut``, closest first."""
    d = _min_image(np.delete(positions, i, axis=0) - positions[i], box)
    r = np.linalg.norm(d, axis=1)
    inside = r < r_cut
    return d[inside][np.argsort(r[inside], kind="stable")]


def _accept(positions: np.ndarray, new: np.ndarray, box: float, min_distance: float, limit: int) -> np.ndarray:
    """The atoms of ``new`` (in order) that keep ``min_distance`` to all atoms and to each other, at most ``limit``."""
    kept: list[np.ndarray] = []
    for atom in new:
        others = np.concatenate([positions, np.array(kept).reshape(-1, 3)])
        if len(kept) >= limit:
            break
        if np.all(np.linalg.norm(_min_image(others - atom, box), axis=1) >= min_distance):
            kept.append(atom % box)
    return np.array(kept).reshape(-1, 3)


def _farthest_point(positions: np.ndarray, box: float, grid: int = 24) -> np.ndarray:
    axis = (np.arange(grid) + 0.5) / grid * box
    pts = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    dmin = np.full(len(pts), np.inf)
    for p in positions:
        dmin = np.minimum(dmin, np.linalg.norm(_min_image(pts - p, box), axis=1))
    return pts[int(np.argmax(dmin))]


def sw_relax(crystal: Crystal, max_steps: int, fmax: float = 0.01) -> tuple[Crystal, dict]:
    """Brief FIRE relaxation (positions only) with Stillinger-Weber; returns the relaxed cell and a summary."""
    from atomsmith.physics import relax
    from atomsmith.physics import stillinger_weber as sw

    config = relax.FireConfig(fmax=fmax, max_steps=max(max_steps, 1))
    lattice = np.asarray(crystal.lattice)
    spec = relax.relax_spec(lattice, crystal.n_atoms, config)
    before = sw.evaluate(crystal)["energy"] / crystal.n_atoms
    result = relax.fire_relax(jnp.asarray(crystal.positions, jnp.float32), jnp.asarray(lattice, jnp.float32), spec,
                              config)
    if bool(result.overflow):
        raise RuntimeError("neighbour capacity overflowed during the SW relaxation")
    relaxed = Crystal.from_cartesian(lattice, np.asarray(result.positions, np.float64), crystal.numbers).wrapped()
    after = sw.evaluate(relaxed)["energy"] / crystal.n_atoms
    return relaxed, {"energy_per_atom_before": before, "energy_per_atom_after": after,
                     "relax_steps": int(result.n_steps), "max_force": float(result.max_force),
                     "converged": bool(result.converged)}


def build_cell(model: GramVAE, config: BuildConfig = BuildConfig(), progress=None) -> tuple[Crystal, Crystal, dict]:
    """Build a cell by repeated infilling. Returns ``(unrelaxed, relaxed, summary)``; with ``relax_steps = 0`` the
    relaxed cell is the unrelaxed one. ``summary`` counts infill steps, atoms placed by infilling and by the
    fallback, and the SW energies. Raises ``ValueError`` if the cell would be smaller than ``2 r_cut``."""
    t0 = time.perf_counter()
    box = box_length(config.n_atoms, config.density)
    r_cut, n = model.config.r_cut, model.n_neighbors
    if box <= 2 * r_cut:
        raise ValueError(f"a {config.n_atoms}-atom cell at {config.density} g/cm^3 has edge {box:.2f} Å <= 2 r_cut "
                         f"= {2 * r_cut} Å; minimum-image environments would be wrong; use more atoms")
    key = jax.random.PRNGKey(config.seed)
    positions = np.full((1, 3), box / 2.0)
    steps = 0
    placed = {"growth": 0, "filling": 0}
    for phase in ("growth", "filling"):
        finished = np.zeros(len(positions), bool)
        while len(positions) < config.n_atoms:
            near = [_neighbors(positions, i, box, r_cut) for i in range(len(positions))]
            counts = np.array([len(v) for v in near])
            if phase == "growth":
                bonds = np.array([int(np.sum(np.linalg.norm(v, axis=1) < config.bond_cutoff)) for v in near])
                open_ = np.flatnonzero(~finished & (bonds < config.target_bonds))
            else:
                open_ = np.flatnonzero(~finished & (counts < n))
            if not open_.size:
                break
            centre = int(open_[np.argmax(counts[open_])])
            nbrs = near[centre][:n - 1]
            key, sub = jax.random.split(key)
            if len(nbrs) == 0:
                completions = model.sample_environments(sub, config.candidates)
            else:
                completions = infill(model, nbrs, config.candidates, sub, config.infill).generated
            limit = config.n_atoms - len(positions)
            best = np.zeros((0, 3))
            for gen in completions:
                if phase == "growth":
                    gen = gen[np.linalg.norm(gen, axis=1) < config.bond_cutoff]
                kept = _accept(positions, positions[centre] + gen, box, config.min_distance, limit)
                if len(kept) > len(best):
                    best = kept
            steps += 1
            if not len(best):
                finished[centre] = True
                continue
            positions = np.concatenate([positions, best])
            finished = np.concatenate([finished, np.zeros(len(best), bool)])
            placed[phase] += len(best)
            if progress is not None:
                progress(f"{phase} step {steps}: centre {centre} (k={len(nbrs)}) +{len(best)} -> {len(positions)}")
    n_fallback = 0
    while len(positions) < config.n_atoms:
        positions = np.concatenate([positions, _farthest_point(positions, box)[None]])
        n_fallback += 1
    lattice = np.eye(3) * box
    unrelaxed = Crystal.from_cartesian(lattice, positions, np.full(config.n_atoms, 14)).wrapped()
    summary = {"n_atoms": config.n_atoms, "box": box, "infill_steps": steps,
               "placed_by_infill": placed["growth"] + placed["filling"], "placed_in_growth": placed["growth"],
               "placed_in_filling": placed["filling"], "n_seed": 1, "n_fallback": n_fallback,
               "min_distance_unrelaxed": float(min(d for *_, d in unrelaxed.close_pairs(3.0)))
               if unrelaxed.close_pairs(3.0) else None}
    relaxed = unrelaxed
    if config.relax_steps:
        relaxed, info = sw_relax(unrelaxed, config.relax_steps, config.fmax)
        summary.update(info)
    summary["seconds"] = time.perf_counter() - t0
    return unrelaxed, relaxed.with_properties(**{k: v for k, v in summary.items() if v is not None}), summary
