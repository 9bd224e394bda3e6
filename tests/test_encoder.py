"""Symmetry of the shared encoder: O(3) (with reflections), permutation, translation, periodic images, cells."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs
from atomsmith.nn.encoder import Encoder, EncoderConfig
from tests.helpers.symmetry import assert_close_scaled, random_crystal, random_o3, random_unimodular

CFG = EncoderConfig.tiny(irreps_out="6x0e+4x1o+3x1e+3x2e+2x2o", conditioning_dim=2)
SIZES = (48, 4096, 3)  # one padded shape for every test: a single compilation


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    crystal = random_crystal(rng, 5)
    batch = batch_graphs([crystal], cutoff=CFG.cutoff, sizes=SIZES)
    enc = Encoder(CFG)
    params = jax.jit(lambda k, b: enc.init(k, b, conditioning=jnp.zeros((b.n_graphs, 2))))(jax.random.PRNGKey(1), batch)
    apply = jax.jit(lambda p, b, c: enc.apply(p, b, conditioning=c))
    return params, apply


def features(model, crystals, cond=None):
    params, apply = model
    batch = batch_graphs(crystals, cutoff=CFG.cutoff, sizes=SIZES)
    if cond is None:
        cond = np.tile([[0.3, -1.2]], (batch.n_graphs, 1))
    out = apply(params, batch, jnp.asarray(cond, jnp.float32))
    return out, batch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_o3_equivariance_with_reflections(model, seed):
    rng = np.random.default_rng(seed)
    crystal = random_crystal(rng, 6)
    out, batch = features(model, [crystal])
    for reflection in (False, True):
        rot = random_o3(rng, reflection)
        rotated = batch.replace(lattices=batch.lattices @ jnp.asarray(rot.T, jnp.float32))
        params, apply = model
        out_rot = apply(params, rotated, jnp.tile(jnp.array([[0.3, -1.2]]), (batch.n_graphs, 1)))
        d = out.irreps.D_from_matrix(jnp.asarray(rot, jnp.float32))
        expected = out.array @ d.T
        n = crystal.n_atoms
        assert_close_scaled(out_rot.array[:n], expected[:n], 1e-4, f"O(3) reflection={reflection}")
        # every irrep type must actually be non-trivial, otherwise the test proves little
        for mul_ir, sl in zip(out.irreps, out.irreps.slices()):
            assert float(jnp.max(jnp.abs(out.array[:n, sl]))) > 1e-4, f"{mul_ir} output is ~0"


def test_permutation_equivariance(model):
    rng = np.random.default_rng(3)
    crystal = random_crystal(rng, 6)
    perm = rng.permutation(6)
    out, _ = features(model, [crystal])
    out_p, _ = features(model, [crystal.permuted(perm)])
    assert_close_scaled(out_p.array[:6], out.array[:6][perm], 1e-5, "permutation")


def test_translation_and_image_invariance(model):
    rng = np.random.default_rng(4)
    crystal = random_crystal(rng, 5)
    out, _ = features(model, [crystal])
    shifted = crystal.replace(frac_coords=crystal.frac_coords + rng.random(3))
    imaged = crystal.replace(frac_coords=crystal.frac_coords + rng.integers(-2, 3, size=(5, 3)))
    for other, what in ((shifted, "translation"), (imaged, "atoms moved to other images")):
        out_o, _ = features(model, [other])
        assert_close_scaled(out_o.array[:5], out.array[:5], 1e-4, what)


def test_supercell_and_cell_rechoice(model):
    rng = np.random.default_rng(5)
    crystal = random_crystal(rng, 4, size=3.5)
    out, _ = features(model, [crystal])
    n = crystal.n_atoms
    sup = crystal.supercell((2, 2, 2))
    out_s, _ = features(model, [sup])
    for k in range(8):  # every image block of the supercell equals the primitive cell's features
        assert_close_scaled(out_s.array[k * n:(k + 1) * n], out.array[:n], 1e-4, f"supercell block {k}")
    m = random_unimodular(rng)
    rechosen = crystal.transformed_cell(m)
    assert not np.allclose(rechosen.lattice, crystal.lattice)
    out_m, _ = features(model, [rechosen])
    assert_close_scaled(out_m.array[:n], out.array[:n], 1e-4, "unimodular cell re-choice")


def test_batched_equals_single_and_padding_is_inert(model):
    rng = np.random.default_rng(6)
    a, b = random_crystal(rng, 3), random_crystal(rng, 7)
    out_ab, batch = features(model, [a, b])
    out_a, _ = features(model, [a])
    out_b, _ = features(model, [b])
    assert_close_scaled(out_ab.array[:3], out_a.array[:3], 1e-5, "batched a")
    assert_close_scaled(out_ab.array[3:10], out_b.array[:7], 1e-5, "batched b")
    assert float(jnp.max(jnp.abs(out_ab.array[10:]))) == 0.0


def test_conditioning_changes_features(model):
    rng = np.random.default_rng(7)
    crystal = random_crystal(rng, 4)
    out1, batch = features(model, [crystal], cond=np.zeros((3, 2)))
    out2, _ = features(model, [crystal], cond=np.ones((3, 2)))
    assert float(jnp.max(jnp.abs(out1.array - out2.array))) > 1e-4


def test_gradients_finite_with_padding(model):
    params, apply = model
    rng = np.random.default_rng(8)
    batch = batch_graphs([random_crystal(rng, 3), random_crystal(rng, 5)], cutoff=CFG.cutoff, sizes=SIZES)
    cond = jnp.zeros((batch.n_graphs, 2))

    def loss(frac, lattices):
        out = apply(params, batch.replace(frac_coords=frac, lattices=lattices), cond)
        return jnp.sum(out.array ** 2)

    g_frac, g_lat = jax.grad(loss, argnums=(0, 1))(batch.frac_coords, batch.lattices)
    assert np.all(np.isfinite(np.asarray(g_frac))) and np.all(np.isfinite(np.asarray(g_lat)))
    assert float(jnp.max(jnp.abs(g_frac[:8]))) > 0


def test_jit_matches_eager_on_realistic_size():
    rng = np.random.default_rng(9)
    crystal = random_crystal(rng, 4, size=3.5).supercell((3, 3, 2))  # 72 atoms, ~3000 edges
    cfg = EncoderConfig.tiny(n_layers=1)
    batch = batch_graphs([crystal], cutoff=cfg.cutoff)
    enc = Encoder(cfg)
    params = jax.jit(enc.init)(jax.random.PRNGKey(0), batch)
    eager = enc.apply(params, batch).array
    jitted = jax.jit(enc.apply)(params, batch).array
    assert_close_scaled(jitted, eager, 1e-5, "jit vs eager")
