"""FIRE relaxation (Bitzek et al., Phys. Rev. Lett. 97, 170201 (2006)) of positions and, optionally, the cell,
jitted with ``jax.lax.while_loop``.

The cell is relaxed through a strain ``eps`` (3x3, symmetric) acting on a reference cell: ``lattice = L0 (I + eps)``,
``positions = u (I + eps)``, with ``u`` the atoms in the reference frame. The generalised force on ``eps`` is
``-(dE/d eps + p V (I + eps)^-T)`` (enthalpy at external pressure ``p``), divided by ``cell_factor`` (= number of
atoms by default, as ase's ``UnitCellFilter``) so that cell and atoms move at similar rates; convergence needs
every atomic force and every cell-force component below ``fmax``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.physics import verlet
from atomsmith.physics.stillinger_weber import SILICON, SWModel, SWParams, parameter_set


@dataclasses.dataclass(frozen=True)
class FireConfig:
    """FIRE settings (defaults as ase's FIRE, in units where the 'mass' is 1 and time is arbitrary).

    Attributes:
      fmax: convergence threshold, eV/Å (max per-atom force norm; cell forces in eV per cell_factor).
      max_steps: hard limit on iterations.
      dt_start, dt_max: initial and largest FIRE time step.
      max_move: largest displacement of any atom in one step, Å.
      n_min, f_inc, f_dec, alpha_start, f_alpha: the FIRE constants.
      relax_cell: also relax the cell (symmetric strain, no rotation).
      pressure: external pressure, eV/Å^3 (only with ``relax_cell``).
      skin: Verlet-list skin, Å.
      model: the energy model.
    """

    fmax: float = 1e-3
    max_steps: int = 3000
    dt_start: float = 0.1
    dt_max: float = 1.0
    max_move: float = 0.1
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    relax_cell: bool = False
    pressure: float = 0.0
    skin: float = 1.0
    model: SWModel = SWModel()

    def __post_init__(self) -> None:
        if self.fmax <= 0 or self.max_steps < 1 or self.dt_start <= 0 or self.max_move <= 0 or self.skin <= 0:
            raise ValueError(f"invalid FIRE config {self}")


class RelaxResult(NamedTuple):
    """``positions [n, 3]`` Å, ``lattice [3, 3]`` Å, ``energy`` eV, ``max_force`` eV/Å (largest generalised force),
    ``n_steps``, ``converged`` (bool), ``overflow`` (bool: a neighbour capacity was exceeded; result unreliable)."""

    positions: jax.Array
    lattice: jax.Array
    energy: jax.Array
    max_force: jax.Array
    n_steps: jax.Array
    converged: jax.Array
    overflow: jax.Array


class _Fire(NamedTuple):
    u: jax.Array  # [n, 3] reference-frame positions
    strain: jax.Array  # [3, 3] cell_factor * eps
    v_u: jax.Array
    v_s: jax.Array
    f_u: jax.Array
    f_s: jax.Array
    energy: jax.Array
    dt: jax.Array
    alpha: jax.Array
    n_pos: jax.Array
    step: jax.Array
    vlist: verlet.VerletList
    overflow: jax.Array


def relax_spec(lattice, n_atoms: int, config: FireConfig, max_neighbors: int = 40) -> verlet.ListSpec:
    """Verlet-list spec for relaxing this cell (10% margin on the image range when the cell may change)."""
    margin = 0.1 if config.relax_cell else 0.0
    return verlet.ListSpec.for_cell(np.asarray(lattice), config.model.cutoff + config.skin, max_neighbors * n_atoms,
                                    margin)


@functools.partial(jax.jit, static_argnums=(2, 3))
def fire_relax(positions: jax.Array, lattice: jax.Array, spec: verlet.ListSpec, config: FireConfig
               ) -> RelaxResult:
    """Relax ``positions`` ``[n, 3]`` Å (and the cell ``lattice`` ``[3, 3]`` Å if ``config.relax_cell``) with FIRE."""
    n_atoms = positions.shape[0]
    cell_factor = float(n_atoms)
    lattice0 = lattice
    eye = jnp.eye(3, dtype=positions.dtype)

    def geometry(u, strain):
        deform = eye + strain / cell_factor
        return u @ deform, lattice0 @ deform

    def forces(u, strain, vlist):
        def enthalpy(u, strain):
            pos, lat = geometry(u, strain)
            energy, overflow = config.model(pos, lat, vlist.neighbors)
            h = energy + config.pressure * jnp.abs(jnp.linalg.det(lat)) if config.relax_cell else energy
            return h, (energy, overflow)

        (_, (energy, overflow)), (g_u, g_s) = jax.value_and_grad(enthalpy, argnums=(0, 1), has_aux=True)(u, strain)
        g_s = 0.5 * (g_s + g_s.T) if config.relax_cell else jnp.zeros_like(g_s)
        return energy, -g_u, -g_s, overflow

    def max_force(f_u, f_s):
        return jnp.maximum(jnp.sqrt(jnp.max(jnp.sum(f_u ** 2, axis=-1))), jnp.max(jnp.abs(f_s)))

    vlist = verlet.build(positions, lattice, spec)
    strain0 = jnp.zeros((3, 3), positions.dtype)
    energy, f_u, f_s, overflow = forces(positions, strain0, vlist)
    state = _Fire(positions, strain0, jnp.zeros_like(positions), strain0, f_u, f_s, energy,
                  jnp.asarray(config.dt_start, positions.dtype), jnp.asarray(config.alpha_start, positions.dtype),
                  jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32), vlist, overflow | vlist.overflow)

    def cond(s: _Fire):
        return (max_force(s.f_u, s.f_s) > config.fmax) & (s.step < config.max_steps)

    def body(s: _Fire) -> _Fire:
        power = jnp.sum(s.f_u * s.v_u) + jnp.sum(s.f_s * s.v_s)
        f_norm = jnp.sqrt(jnp.sum(s.f_u ** 2) + jnp.sum(s.f_s ** 2))
        v_norm = jnp.sqrt(jnp.sum(s.v_u ** 2) + jnp.sum(s.v_s ** 2))
        scale = v_norm / jnp.maximum(f_norm, 1e-30)
        downhill = power > 0
        mix = lambda v, f: jnp.where(downhill, (1 - s.alpha) * v + s.alpha * scale * f, 0.0)  # noqa: E731
        v_u, v_s = mix(s.v_u, s.f_u), mix(s.v_s, s.f_s)
        grow = downhill & (s.n_pos > config.n_min)
        dt = jnp.where(downhill, jnp.where(grow, jnp.minimum(s.dt * config.f_inc, config.dt_max), s.dt),
                       s.dt * config.f_dec)
        alpha = jnp.where(downhill, jnp.where(grow, s.alpha * config.f_alpha, s.alpha), config.alpha_start)
        n_pos = jnp.where(downhill, s.n_pos + 1, 0)
        v_u, v_s = v_u + dt * s.f_u, v_s + dt * s.f_s
        d_u, d_s = dt * v_u, dt * v_s
        largest = jnp.maximum(jnp.sqrt(jnp.max(jnp.sum(d_u ** 2, axis=-1))), jnp.max(jnp.abs(d_s)))
        shrink = jnp.minimum(1.0, config.max_move / jnp.maximum(largest, 1e-30))
        u, strain = s.u + shrink * d_u, s.strain + shrink * d_s
        pos, lat = geometry(u, strain)
        vl = verlet.update(s.vlist, pos, lat, spec, config.skin)
        energy, f_u, f_s, overflow = forces(u, strain, vl)
        return _Fire(u, strain, v_u, v_s, f_u, f_s, energy, dt, alpha, n_pos, s.step + 1, vl,
                     s.overflow | overflow | vl.overflow)

    final = jax.lax.while_loop(cond, body, state)
    pos, lat = geometry(final.u, final.strain)
    fmax = max_force(final.f_u, final.f_s)
    return RelaxResult(pos, lat, final.energy, fmax, final.step, fmax <= config.fmax, final.overflow)


def relax_crystal(crystal, fmax: float = 0.01, max_steps: int = 300, max_degree: int = 32,
                  max_neighbors: int = 64, params: SWParams | str = SILICON):
    """Fixed-cell FIRE relaxation of a Si cell with Stillinger-Weber (e.g. the short relaxation after sampling).

    Args:
      crystal: a :class:`~atomsmith.structures.crystal.Crystal` (all atoms are treated as Si; the species are kept).
      fmax: force threshold, eV/Å; max_steps: iteration limit; max_degree, max_neighbors: SW and Verlet capacities.
      params: the SW parameter set, or its name in :data:`~atomsmith.physics.stillinger_weber.PARAMETER_SETS`
        (``"original"``, ``"vink"``: the shipped a-Si is scored with ``asi_set.SHIPPED_POTENTIAL``).
    Returns:
      ``(relaxed crystal, record)`` with ``record = {steps, max_force (eV/Å), converged, overflow,
      energy_per_atom (eV/atom)}``.
    """
    from atomsmith.structures.crystal import Crystal

    if isinstance(params, str):
        params = parameter_set(params)
    config = FireConfig(fmax=fmax, max_steps=max_steps, model=SWModel(params=params, max_degree=max_degree))
    spec = relax_spec(crystal.lattice, crystal.n_atoms, config, max_neighbors)
    r = fire_relax(jnp.asarray(crystal.positions, jnp.float32), jnp.asarray(crystal.lattice, jnp.float32), spec,
                   config)
    relaxed = Crystal.from_cartesian(crystal.lattice, np.asarray(r.positions, np.float64), crystal.numbers,
                                     properties=dict(crystal.properties)).wrapped()
    record = {"steps": int(r.n_steps), "max_force": float(r.max_force), "converged": bool(r.converged),
              "overflow": bool(r.overflow), "energy_per_atom": float(r.energy) / crystal.n_atoms}
    return relaxed, record
