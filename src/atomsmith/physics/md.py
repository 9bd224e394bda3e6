"""Molecular dynamics at fixed cell: velocity Verlet with a Langevin thermostat (BAOAB splitting), jitted with
``jax.lax.scan``.

One step of length ``dt`` (Leimkuhler & Matthews, "BAOAB")::

    B: v += dt/2 F/m     A: x += dt/2 v     O: v = c1 v + sqrt((1 - c1^2) kT/m) xi,  c1 = exp(-friction dt)
    A: x += dt/2 v       (new forces)       B: v += dt/2 F/m

With ``friction = 0`` the O step is the identity and the step is exactly velocity Verlet (NVE). The target
temperature is given per step, so a melt-quench schedule is one array. Units: Å, fs, eV, amu, K.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.physics import verlet
from atomsmith.physics.stillinger_weber import SWModel

#: Boltzmann constant, eV/K.
KB_EV = 8.617333262e-5
#: 1 eV / (Å amu) expressed in Å / fs^2.
ACCEL = 1.602176634e-19 / (1e-10 * 1.66053906660e-27) * 1e10 / 1e30
#: Atomic mass of silicon, amu.
MASS_SI = 28.0855


@dataclasses.dataclass(frozen=True)
class MDConfig:
    """Static MD settings.

    Attributes:
      dt: time step, fs.
      friction: Langevin friction, 1/fs (0: NVE velocity Verlet).
      mass: atomic mass, amu (one species).
      skin: Verlet-list skin, Å (the list is built with ``model.cutoff + skin``).
      model: the energy model (:class:`SWModel` or anything with the same call signature and ``cutoff``).
    """

    dt: float = 1.0
    friction: float = 0.01
    mass: float = MASS_SI
    skin: float = 1.0
    model: SWModel = SWModel()

    def __post_init__(self) -> None:
        if self.dt <= 0 or self.friction < 0 or self.mass <= 0 or self.skin <= 0:
            raise ValueError(f"invalid MD config {self}: dt, mass, skin must be > 0 and friction >= 0")


class MDState(NamedTuple):
    """Dynamical state. ``positions``/``velocities``/``forces`` ``[n, 3]`` (Å, Å/fs, eV/Å), ``energy`` potential
    energy (eV), ``vlist`` the :class:`~atomsmith.physics.verlet.VerletList`, ``key`` PRNG key, ``overflow`` sticky
    flag (a capacity was exceeded somewhere: the trajectory is not trustworthy)."""

    positions: jax.Array
    velocities: jax.Array
    forces: jax.Array
    energy: jax.Array
    vlist: verlet.VerletList
    key: jax.Array
    overflow: jax.Array


class MDLog(NamedTuple):
    """Per-step record: kinetic ``temperature`` (K), ``potential`` and ``total`` energy (eV)."""

    temperature: jax.Array
    potential: jax.Array
    total: jax.Array


def md_spec(lattice, n_atoms: int, config: MDConfig, max_neighbors: int = 40) -> verlet.ListSpec:
    """The Verlet-list spec for a fixed cell: cutoff ``rc + skin``, capacity ``max_neighbors`` per atom."""
    return verlet.ListSpec.for_cell(np.asarray(lattice), config.model.cutoff + config.skin,
                                    max_neighbors * n_atoms)


def kinetic_energy(velocities: jax.Array, mass: float) -> jax.Array:
    """0.5 m v^2 summed, in eV."""
    return 0.5 * mass * jnp.sum(velocities ** 2) / ACCEL


def temperature(velocities: jax.Array, mass: float) -> jax.Array:
    """Kinetic temperature (K) with 3N degrees of freedom."""
    return 2.0 * kinetic_energy(velocities, mass) / (velocities.size * KB_EV)


def _forces(model, positions, lattice, vlist):
    (energy, overflow), grad = jax.value_and_grad(model, has_aux=True)(positions, lattice, vlist.neighbors)
    return energy, -grad, overflow


def maxwell_boltzmann(key: jax.Array, n_atoms: int, temp: float, mass: float, dtype=jnp.float32) -> jax.Array:
    """Velocities ``[n, 3]`` Å/fs drawn at ``temp`` K, centre-of-mass motion removed, rescaled to exactly ``temp``."""
    v = jax.random.normal(key, (n_atoms, 3), dtype) * jnp.sqrt(KB_EV * temp / mass * ACCEL)
    v = v - jnp.mean(v, axis=0)
    scale = jnp.where(temp > 0, jnp.sqrt(temp / jnp.maximum(temperature(v, mass), 1e-12)), 0.0)
    return v * scale


@functools.partial(jax.jit, static_argnums=(4, 5))
def init_state(positions: jax.Array, lattice: jax.Array, key: jax.Array, temp: jax.Array, spec: verlet.ListSpec,
               config: MDConfig) -> MDState:
    """Initial state at ``positions`` ``[n, 3]`` Å with Maxwell-Boltzmann velocities at ``temp`` K."""
    key, sub = jax.random.split(key)
    vlist = verlet.build(positions, lattice, spec)
    energy, forces, overflow = _forces(config.model, positions, lattice, vlist)
    velocities = maxwell_boltzmann(sub, positions.shape[0], temp, config.mass, positions.dtype)
    return MDState(positions, velocities, forces, energy, vlist, key, overflow | vlist.overflow)


def step(state: MDState, temp: jax.Array, lattice: jax.Array, spec: verlet.ListSpec, config: MDConfig) -> MDState:
    """One BAOAB step at target temperature ``temp`` (K); pure, jit-able."""
    dt, m = config.dt, config.mass
    half_kick = 0.5 * dt * ACCEL / m
    v = state.velocities + half_kick * state.forces
    x = state.positions + 0.5 * dt * v
    key, sub = jax.random.split(state.key)
    if config.friction > 0:
        c1 = jnp.exp(-config.friction * dt)
        sigma = jnp.sqrt((1.0 - c1 ** 2) * KB_EV * temp / m * ACCEL)
        v = c1 * v + sigma * jax.random.normal(sub, v.shape, v.dtype)
    x = x + 0.5 * dt * v
    vlist = verlet.update(state.vlist, x, lattice, spec, config.skin)
    energy, forces, overflow = _forces(config.model, x, lattice, vlist)
    v = v + half_kick * forces
    return MDState(x, v, forces, energy, vlist, key, state.overflow | overflow | vlist.overflow)


@functools.partial(jax.jit, static_argnums=(3, 4))
def run(state: MDState, temperatures: jax.Array, lattice: jax.Array, spec: verlet.ListSpec, config: MDConfig
        ) -> tuple[MDState, MDLog]:
    """Run ``len(temperatures)`` steps, step k thermostatted at ``temperatures[k]`` K (ignored when friction is 0).

    Returns the final state and an :class:`MDLog` with one entry per step.
    """

    def body(s, temp):
        s = step(s, temp, lattice, spec, config)
        kin = kinetic_energy(s.velocities, config.mass)
        return s, MDLog(temperature(s.velocities, config.mass), s.energy, s.energy + kin)

    return jax.lax.scan(body, state, temperatures)
