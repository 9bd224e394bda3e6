"""FIRE relaxation: back to the diamond minimum (positions), and to the SW lattice constant (cell)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.physics import relax

BASIS = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4


def test_fire_relaxes_positions_to_diamond():
    a = 5.431
    cells = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = (cells[:, None] + BASIS[None]).reshape(-1, 3) / 2
    rng = np.random.default_rng(0)
    pos = jnp.asarray(frac * 2 * a + 0.15 * rng.normal(size=frac.shape), jnp.float32)
    lat = jnp.asarray(np.eye(3) * 2 * a, jnp.float32)
    config = relax.FireConfig(fmax=1e-3, max_steps=2000)
    result = relax.fire_relax(pos, lat, relax.relax_spec(lat, 64, config), config)
    assert bool(result.converged) and not bool(result.overflow)
    assert float(result.max_force) <= 1e-3
    assert float(result.energy) / 64 == pytest.approx(-4.3366, abs=2e-4)
    np.testing.assert_allclose(result.lattice, lat)  # the cell did not move


def test_fire_relaxes_cell_to_sw_lattice_constant():
    a0 = 5.6  # stretched 3%
    pos = jnp.asarray(BASIS * a0 + 0.05 * np.random.default_rng(1).normal(size=(8, 3)), jnp.float32)
    lat = jnp.asarray(np.eye(3) * a0, jnp.float32)
    config = relax.FireConfig(fmax=5e-4, max_steps=3000, relax_cell=True)
    result = relax.fire_relax(pos, lat, relax.relax_spec(np.asarray(lat), 8, config), config)
    assert bool(result.converged), (float(result.max_force), int(result.n_steps))
    lengths = np.linalg.norm(np.asarray(result.lattice), axis=1)
    np.testing.assert_allclose(lengths, 5.431, atol=2e-3)
    assert float(result.energy) / 8 == pytest.approx(-4.3366, abs=1e-4)


def test_fire_config_validation():
    with pytest.raises(ValueError):
        relax.FireConfig(fmax=0.0)


def test_relax_crystal_uses_the_named_parameter_set():
    """A jittered diamond cell relaxes to each set's diamond energy (original -4.3366, Vink -3.2967 eV/atom; the
    diamond minimum is 2 * epsilon lower per bond for both, so the sets are told apart)."""
    from atomsmith.physics.stillinger_weber import VINK
    from atomsmith.structures.crystal import Crystal

    a = 5.431
    frac = BASIS + 0.01 * np.random.default_rng(2).normal(size=BASIS.shape)
    crystal = Crystal(np.eye(3) * a, frac % 1.0, [14] * 8)
    energies = {}
    for name in ("original", "vink", VINK):
        relaxed, record = relax.relax_crystal(crystal, fmax=1e-4, max_steps=2000, params=name)
        assert record["converged"] and not record["overflow"]
        energies[str(name)[:8]] = record["energy_per_atom"]
    assert energies["original"] == pytest.approx(-4.3366, abs=2e-4)
    assert energies["vink"] == pytest.approx(-3.2967, abs=2e-4)
    assert list(energies.values())[2] == pytest.approx(energies["vink"], abs=1e-6)
    with pytest.raises(ValueError, match="unknown SW parameter set"):
        relax.relax_crystal(crystal, params="tersoff")
