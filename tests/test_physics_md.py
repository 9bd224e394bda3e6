"""Velocity-Verlet / Langevin MD: NVE energy conservation, thermostat temperature, Verlet-list rebuilds,
and jit against eager."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.physics import md, stillinger_weber as sw, verlet


def diamond_positions(reps: int, jitter: float, seed: int = 0):
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    cells = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = (cells[:, None] + basis[None]).reshape(-1, 3) / reps
    a = 5.431 * reps
    pos = frac * a + jitter * np.random.default_rng(seed).normal(size=frac.shape)
    return jnp.asarray(pos, jnp.float32), jnp.asarray(np.eye(3) * a, jnp.float32)


@pytest.fixture(scope="module")
def nve_run():
    pos, lat = diamond_positions(2, 0.1)
    config = md.MDConfig(dt=1.0, friction=0.0, skin=0.5)
    spec = md.md_spec(lat, 64, config)
    state = md.init_state(pos, lat, jax.random.PRNGKey(0), jnp.float32(1500.0), spec, config)
    final, log = md.run(state, jnp.zeros(400, jnp.float32), lat, spec, config)
    return state, final, log, lat, spec, config


def test_nve_conserves_energy(nve_run):
    state, final, log, *_ = nve_run
    total = np.asarray(log.total)
    assert not bool(final.overflow)
    assert int(final.vlist.n_builds) > 1  # the list was rebuilt during the run, and energy still holds
    # 64 atoms, 400 fs at ~1650 K, dt = 1 fs: the total energy fluctuates by < 5e-4 eV/atom (it scales as dt^2)
    # and does not drift, while the potential energy swings by ~0.1 eV/atom
    assert np.ptp(total) / 64 < 5e-4
    assert abs(total[-100:].mean() - total[:100].mean()) / 64 < 1e-4
    assert np.ptp(np.asarray(log.potential)) / 64 > 0.02
    # momentum is conserved by velocity Verlet (started at zero)
    assert np.abs(np.asarray(final.velocities).sum(axis=0)).max() < 1e-4


def test_nve_rebuilt_list_matches_fresh(nve_run):
    *_, final, _, lat, spec, config = nve_run
    fresh = verlet.build(final.positions, lat, spec)
    e_fresh, _ = config.model(final.positions, lat, fresh.neighbors)
    assert float(final.energy) == pytest.approx(float(e_fresh), abs=1e-3)


def test_initial_velocities():
    v = md.maxwell_boltzmann(jax.random.PRNGKey(1), 100, 800.0, md.MASS_SI)
    assert float(md.temperature(v, md.MASS_SI)) == pytest.approx(800.0, rel=1e-4)
    assert np.abs(np.asarray(v).mean(axis=0)).max() < 1e-6


def test_langevin_reaches_target_temperature():
    pos, lat = diamond_positions(2, 0.05, seed=1)
    config = md.MDConfig(dt=2.0, friction=0.05)
    spec = md.md_spec(lat, 64, config)
    state = md.init_state(pos, lat, jax.random.PRNGKey(2), jnp.float32(50.0), spec, config)
    _, log = md.run(state, jnp.full(600, 900.0, jnp.float32), lat, spec, config)
    temps = np.asarray(log.temperature)
    assert temps[0] < 300  # starts cold
    assert temps[300:].mean() == pytest.approx(900.0, rel=0.12)  # 64 atoms: ~10% fluctuations


def test_jit_matches_eager_energy_and_forces():
    pos, lat = diamond_positions(2, 0.2, seed=3)
    spec = sw.spec_for(np.asarray(lat), 64, sw.SILICON.cutoff)
    nbrs = sw.neighbors_for(pos, lat, spec)
    with jax.disable_jit():
        eager = sw.sw_energy_forces_stress(pos, lat, nbrs, max_degree=16)
    jitted = jax.jit(sw.sw_energy_forces_stress, static_argnums=(3, 4))(pos, lat, nbrs, sw.SILICON, 16)
    assert float(jitted.energy) == pytest.approx(float(eager.energy), rel=1e-5)
    np.testing.assert_allclose(jitted.forces, eager.forces, atol=2e-4)


def test_config_validation():
    with pytest.raises(ValueError):
        md.MDConfig(dt=0.0)
    with pytest.raises(ValueError):
        md.MDConfig(friction=-1.0)
