"""Symmetries of the diffusion score network (tiny config): periodic translations, permutations, rotations of the
cell, padding; and that the outputs actually depend on the inputs (so the tests are not vacuous)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.lattice import matrix_from_parameters
from atomsmith.generators.diffusion.network import ScoreNetwork
from tests.helpers.symmetry import assert_close_scaled

jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="module")
def setup():
    config = DiffusionConfig.tiny()
    net = ScoreNetwork(config)
    rng = np.random.default_rng(0)
    b, a, k = 2, 5, config.n_species
    frac = jnp.asarray(rng.random((b, a, 3)), jnp.float32)
    params6 = np.array([[np.log(4.1), np.log(4.3), np.log(3.9), 85.0, 95.0, 100.0],
                        [np.log(4.0), np.log(4.0), np.log(4.2), 90.0, 80.0, 92.0]])
    lattice = matrix_from_parameters(jnp.asarray(params6, jnp.float32))
    species = jnp.asarray(rng.normal(size=(b, a, k)), jnp.float32)
    mask = jnp.ones((b, a), bool)
    t = jnp.array([0.3, 0.8])
    csp = jnp.array([0.0, 1.0])
    params = jax.jit(net.init)(jax.random.PRNGKey(0), frac, lattice, species, mask, t, csp)
    apply = jax.jit(net.apply)
    return apply, params, (frac, lattice, species, mask, t, csp), rng


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return jnp.asarray(q, jnp.float32)


def test_outputs_are_finite_and_nontrivial(setup):
    apply, params, inputs, _ = setup
    coord, lat, spe, overflow = apply(params, *inputs)
    assert coord.shape == (2, 5, 3) and lat.shape == (2, 6) and spe.shape == (2, 5, 3)
    assert not bool(jnp.any(overflow))
    for x in (coord, lat, spe):
        assert bool(jnp.all(jnp.isfinite(x))) and float(jnp.max(jnp.abs(x))) > 1e-4
    frac = inputs[0]
    moved = frac.at[0, 0].add(jnp.array([0.1, -0.05, 0.02]))
    coord2, *_ = apply(params, moved, *inputs[1:])
    assert float(jnp.max(jnp.abs(coord2[0] - coord[0]))) > 1e-4  # the score depends on the geometry


def test_translation_invariance_and_periodicity(setup):
    apply, params, (frac, *rest), rng = setup
    ref = apply(params, frac, *rest)
    shifted = (frac + jnp.asarray(rng.random((1, 1, 3)), jnp.float32)) % 1.0
    imaged = frac + jnp.asarray(rng.integers(-2, 3, size=frac.shape), jnp.float32)
    for other in (shifted, imaged):
        out = apply(params, other, *rest)
        for a, b in zip(out[:3], ref[:3]):
            assert_close_scaled(a, b, rtol=2e-4, what="translation/periodic image")


def test_permutation_equivariance(setup):
    apply, params, (frac, lattice, species, mask, t, csp), _ = setup
    perm = jnp.array([3, 0, 4, 1, 2])
    ref = apply(params, frac, lattice, species, mask, t, csp)
    out = apply(params, frac[:, perm], lattice, species[:, perm], mask, t, csp)
    assert_close_scaled(out[0], ref[0][:, perm], rtol=2e-4, what="coordinate score")
    assert_close_scaled(out[2], ref[2][:, perm], rtol=2e-4, what="species eps")
    assert_close_scaled(out[1], ref[1], rtol=2e-4, what="lattice eps")


def test_rotating_the_cell(setup):
    """L -> L Q^T: the fractional score and lattice/species outputs are invariant, the Cartesian score rotates."""
    apply, params, (frac, lattice, species, mask, t, csp), rng = setup
    q = _random_rotation(rng)
    rotated = lattice @ q.T
    ref = apply(params, frac, lattice, species, mask, t, csp)
    out = apply(params, frac, rotated, species, mask, t, csp)
    for a, b, what in zip(out[:3], ref[:3], ("fractional score", "lattice eps", "species eps")):
        assert_close_scaled(a, b, rtol=5e-4, what=what)

    def cartesian(score_frac, lat):  # s_F = v L^T / V^(1/3)  =>  v = s_F L^-T V^(1/3)
        vol = jnp.abs(jnp.linalg.det(lat)) ** (1 / 3)
        return jnp.einsum("baj,bjk->bak", score_frac, jnp.linalg.inv(jnp.swapaxes(lat, 1, 2))) * vol[:, None, None]

    assert_close_scaled(cartesian(out[0], rotated), cartesian(ref[0], lattice) @ q.T, rtol=5e-4,
                        what="Cartesian score rotates")


def test_padding_atom_slots_do_not_change_real_atoms(setup):
    apply, params, (frac, lattice, species, mask, t, csp), rng = setup
    pad = 3
    frac_p = jnp.concatenate([frac, jnp.asarray(rng.random((2, pad, 3)), jnp.float32)], axis=1)
    species_p = jnp.concatenate([species, jnp.asarray(rng.normal(size=(2, pad, 3)), jnp.float32)], axis=1)
    mask_p = jnp.concatenate([mask, jnp.zeros((2, pad), bool)], axis=1)
    ref = apply(params, frac, lattice, species, mask, t, csp)
    out = apply(params, frac_p, lattice, species_p, mask_p, t, csp)
    assert_close_scaled(out[0][:, :5], ref[0], rtol=2e-4, what="coord (padded)")
    assert_close_scaled(out[1], ref[1], rtol=2e-4, what="lattice (padded)")
    assert float(jnp.max(jnp.abs(out[0][:, 5:]))) == 0.0
