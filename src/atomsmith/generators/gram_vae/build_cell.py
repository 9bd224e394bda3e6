"""Assemble a periodic amorphous cell by repeated environment infilling with the Gram VAE, then relax it with SW.

Procedure (cubic cell of fixed density, as the melt-quench cells):

1. one seed atom; its environment is a prior sample (k = 0);
2. repeat until the cell holds ``n_atoms``: pick the unfinished atom with the most neighbours within ``r_cut``
   (the most constrained one; fewer than ``n_neighbors`` neighbours, so its environment is incomplete), take its
   (up to ``n_neighbors - 1``) nearest neighbours as the fixed atoms, infill ``candidates`` completions, and add
   the generated atoms of the completion that places the most atoms without coming closer than ``min_distance``
   to any existing atom (periodic images included). An atom whose completions all clash is marked finished;
3. if no unfinished atom remains before the cell is full, each missing atom goes to the point of a grid that is
   farthest from every atom (counted as ``n_fallback`` in the result);
4. a brief FIRE relaxation with Stillinger-Weber (:mod:`atomsmith.physics`), cell fixed.

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
      infill: latent-optimisation settings.
      relax_steps: FIRE steps of the final SW relaxation (0: no relaxation).
      fmax: FIRE force tolerance, eV/Å.
      seed: random seed.
    """

    n_atoms: int = 64
    density: float = 2.29
    min_distance: float = 2.1
    candidates: int = 4
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
    finished = np.zeros(1, bool)
    steps = placed_by_infill = 0
    while len(positions) < config.n_atoms:
        counts = np.array([len(_neighbors(positions, i, box, r_cut)) for i in range(len(positions))])
        open_ = np.flatnonzero(~finished & (counts < n))
        if not open_.size:
            break
        centre = int(open_[np.argmax(counts[open_])])
        nbrs = _neighbors(positions, centre, box, r_cut)[:n - 1]
        key, sub = jax.random.split(key)
        if len(nbrs) == 0:
            completions = model.sample_environments(sub, config.candidates)
        else:
            completions = infill(model, nbrs, config.candidates, sub, config.infill).generated
        limit = config.n_atoms - len(positions)
        best = np.zeros((0, 3))
        for gen in completions:
            kept = _accept(positions, positions[centre] + gen, box, config.min_distance, limit)
            if len(kept) > len(best):
                best = kept
        steps += 1
        if not len(best):
            finished[centre] = True
            continue
        positions = np.concatenate([positions, best])
        finished = np.concatenate([finished, np.zeros(len(best), bool)])
        placed_by_infill += len(best)
        if progress is not None:
            progress(f"step {steps}: centre {centre} (k={len(nbrs)}) +{len(best)} -> {len(positions)} atoms")
    n_fallback = 0
    while len(positions) < config.n_atoms:
        positions = np.concatenate([positions, _farthest_point(positions, box)[None]])
        n_fallback += 1
    lattice = np.eye(3) * box
    unrelaxed = Crystal.from_cartesian(lattice, positions, np.full(config.n_atoms, 14)).wrapped()
    summary = {"n_atoms": config.n_atoms, "box": box, "infill_steps": steps, "placed_by_infill": placed_by_infill,
               "n_seed": 1, "n_fallback": n_fallback,
               "min_distance_unrelaxed": float(min(d for *_, d in unrelaxed.close_pairs(3.0)))
               if unrelaxed.close_pairs(3.0) else None}
    relaxed = unrelaxed
    if config.relax_steps:
        relaxed, info = sw_relax(unrelaxed, config.relax_steps, config.fmax)
        summary.update(info)
    summary["seconds"] = time.perf_counter() - t0
    return unrelaxed, relaxed.with_properties(**{k: v for k, v in summary.items() if v is not None}), summary
