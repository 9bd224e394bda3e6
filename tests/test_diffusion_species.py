"""Absorbing-state (masked) species diffusion: the forward and reverse kernels, the loss, the network's symmetry
with a MASK channel, and the sampler (shapes, determinism from a seed, structure prediction keeps the given species
exactly, infilling keeps held species, guidance stays finite). Tiny untrained models: mechanics, not quality."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.species import AbsorbingSpecies, GaussianSpecies, species_process
from atomsmith.generators.diffusion.training import init_params, make_config, train_diffusion
from atomsmith.generators.protocol import FixedAtoms
from atomsmith.guidance import MinDistance, PropertyTarget
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.predictors.model import PredictorConfig, init_predictor
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import TrainConfig
from tests.helpers.symmetry import assert_close_scaled, random_crystal

K = 3
PROC = AbsorbingSpecies(K)


def _onehot(key, shape):
    return jax.nn.one_hot(jax.random.randint(key, shape, 0, K), K)


@pytest.fixture(scope="module")
def model():
    config = DiffusionConfig.tiny(species_process="absorbing")
    return DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))


def test_config_channels_and_json_round_trip():
    config = DiffusionConfig.tiny(species_process="absorbing")
    assert config.n_species == 3 and config.species_channels == 4 and config.encoder.n_species == 4
    assert DiffusionConfig.from_json(config.to_json()) == config
    old = DiffusionConfig.tiny().to_json()
    del old["species_process"]  # checkpoints written before issue 16 have no such key: relaxed one-hot
    assert DiffusionConfig.from_json(old).species_process == "gaussian"
    assert isinstance(species_process(config), AbsorbingSpecies)
    assert isinstance(species_process(DiffusionConfig.tiny()), GaussianSpecies)
    with pytest.raises(ValueError, match="n_species must be 4"):
        dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, n_species=3))
    with pytest.raises(ValueError, match="unknown species process"):
        DiffusionConfig.tiny(species_process="uniform")


def test_forward_masks_a_fraction_one_minus_alpha_and_keeps_the_rest_clean():
    n = 20000
    onehot = _onehot(jax.random.PRNGKey(0), (n, 5))
    for t in (0.0, 0.25, 0.7, 1.0):
        x, target = PROC.noise(jax.random.PRNGKey(1), onehot, jnp.full((n,), t))
        masked = np.asarray(PROC.is_masked(x))
        assert x.shape == (n, 5, K + 1) and np.all(np.asarray(x).sum(-1) == 1.0)  # exactly one channel on
        assert abs(masked.mean() - t) < 0.01, (t, masked.mean())  # binomial sd ~0.0016
        np.testing.assert_array_equal(np.asarray(x)[~masked][:, :K], np.asarray(onehot)[~masked])
        np.testing.assert_array_equal(np.asarray(target), np.asarray(onehot))
    assert np.all(np.asarray(PROC.is_masked(PROC.prior(jax.random.PRNGKey(0), 2, 5))))


def test_reverse_step_reveals_at_the_right_rate_and_never_changes_revealed_atoms():
    n = 20000
    x = PROC.prior(None, n, 5)
    logits = jnp.log(jnp.array([0.7, 0.2, 0.1]))[None, None].repeat(n, 0).repeat(5, 1)
    t, s = 0.8, 0.6
    y = PROC.step(x, logits, t, s, jax.random.PRNGKey(3), True)
    revealed = ~np.asarray(PROC.is_masked(y))
    assert abs(revealed.mean() - (t - s) / t) < 0.01  # (alpha_s - alpha_t) / (1 - alpha_t)
    drawn = np.asarray(PROC.indices(y))[revealed]
    np.testing.assert_allclose(np.bincount(drawn, minlength=K) / drawn.size, [0.7, 0.2, 0.1], atol=0.01)
    # revealed atoms are kept whatever the network says now; the last step (s = 0) reveals every atom
    z = PROC.step(y, -logits, s, 0.0, jax.random.PRNGKey(4), True)
    assert not np.any(np.asarray(PROC.is_masked(z)))
    np.testing.assert_array_equal(np.asarray(z)[revealed], np.asarray(y)[revealed])
    # the same key gives the same step
    np.testing.assert_array_equal(np.asarray(PROC.step(x, logits, t, s, jax.random.PRNGKey(3), True)),
                                  np.asarray(y))


def test_renoise_only_masks_revealed_atoms_with_probability_one_minus_alpha_ratio():
    n = 20000
    clean = PROC.clean_input(_onehot(jax.random.PRNGKey(0), (n, 5)))
    out = PROC.renoise(clean, 0.2, 0.6, jax.random.PRNGKey(1))
    masked = np.asarray(PROC.is_masked(out))
    assert abs(masked.mean() - (1 - 0.4 / 0.8)) < 0.01
    np.testing.assert_array_equal(np.asarray(out)[~masked], np.asarray(clean)[~masked])
    still = PROC.renoise(PROC.prior(None, 3, 5), 0.2, 0.6, jax.random.PRNGKey(1))
    assert np.all(np.asarray(PROC.is_masked(still)))  # masked atoms stay masked


def test_loss_scores_only_masked_atoms():
    onehot = _onehot(jax.random.PRNGKey(0), (4, 5))
    x, target = PROC.noise(jax.random.PRNGKey(1), onehot, jnp.full((4,), 0.5))
    masked = PROC.is_masked(x)
    logits = jax.random.normal(jax.random.PRNGKey(2), (4, 5, K))
    ce, weight = PROC.atom_loss(logits, target, x)
    np.testing.assert_array_equal(np.asarray(weight), np.asarray(masked, np.float32))
    uniform, _ = PROC.atom_loss(jnp.zeros((4, 5, K)), target, x)
    np.testing.assert_allclose(np.asarray(uniform), np.log(K), rtol=1e-6)
    right = PROC.atom_loss(10.0 * target, target, x)[0]
    assert np.all(np.asarray(right) < 1e-3)


def test_absorbing_loss_ignores_the_logits_of_revealed_atoms():
    config = DiffusionConfig.tiny(species_process="absorbing")
    loss_fn, _ = make_loss_fn(config)
    params = init_params(config, jax.random.PRNGKey(0))
    b = 6
    batch = dict(frac=jax.random.uniform(jax.random.PRNGKey(2), (b, 5, 3)),
                 lattice=jnp.tile(jnp.eye(3) * 4.0, (b, 1, 1)), species=_onehot(jax.random.PRNGKey(3), (b, 5)),
                 atom_mask=jnp.ones((b, 5), bool), cell_mask=jnp.ones((b,), bool))
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, jax.random.PRNGKey(4))
    assert np.isfinite(float(loss)) and 0.0 < float(metrics["species"]) < 5.0
    head = grads["params"]["species_head"]["kernel"]
    assert float(jnp.abs(head).max()) > 0.0  # the species head is trained


def test_network_is_permutation_equivariant_with_a_mask_channel():
    config = DiffusionConfig.tiny(species_process="absorbing")
    net = ScoreNetwork(config)
    rng = np.random.default_rng(0)
    b, a = 2, 5
    frac = jnp.asarray(rng.random((b, a, 3)), jnp.float32)
    lattice = jnp.asarray(np.eye(3) * 4.0 + 0.2 * rng.random((b, 3, 3)), jnp.float32)
    species, _ = PROC.noise(jax.random.PRNGKey(0), _onehot(jax.random.PRNGKey(1), (b, a)), jnp.array([0.5, 0.5]))
    mask, t, csp = jnp.ones((b, a), bool), jnp.array([0.3, 0.8]), jnp.zeros((b,))
    params = net.init(jax.random.PRNGKey(0), frac, lattice, species, mask, t, csp)
    ref = net.apply(params, frac, lattice, species, mask, t, csp)
    assert ref[2].shape == (b, a, K)
    perm = jnp.array([3, 0, 4, 1, 2])
    out = net.apply(params, frac[:, perm], lattice, species[:, perm], mask, t, csp)
    assert_close_scaled(out[2], ref[2][:, perm], rtol=2e-4, what="species logits")
    assert_close_scaled(out[0], ref[0][:, perm], rtol=2e-4, what="coordinate score")
    other = net.apply(params, frac, lattice, PROC.prior(None, b, a), mask, t, csp)
    assert float(jnp.abs(other[2] - ref[2]).max()) > 1e-6  # the logits depend on the revealed species


@pytest.mark.parametrize("method", ["pc", "ode"])
def test_samples_are_valid_and_reproducible_from_a_seed(model, method):
    a = model.sample(jax.random.PRNGKey(7), 4, conditions={"n_atoms": 5}, steps=4, method=method)
    b = model.sample(jax.random.PRNGKey(7), 4, conditions={"n_atoms": 5}, steps=4, method=method)
    c = model.sample(jax.random.PRNGKey(8), 4, conditions={"n_atoms": 5}, steps=4, method=method)
    for x, y in zip(a, b):
        assert x.n_atoms == 5 and set(x.numbers.tolist()) <= set(model.config.elements)
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)
    assert any(not np.array_equal(x.frac_coords, y.frac_coords) for x, y in zip(a, c))


def test_structure_prediction_keeps_the_given_species_exactly(model):
    comps = [(8, 22, 38, 8, 8), (38, 38, 8, 22, 22), (22, 8, 8, 8, 8)]
    out = model.sample(jax.random.PRNGKey(1), 3, conditions={"composition": comps}, steps=5)
    for crystal, comp in zip(out, comps):
        np.testing.assert_array_equal(crystal.numbers, comp)


def test_infilling_keeps_held_atoms_and_species(model):
    part = Crystal(np.eye(3) * 3.9, np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), [38, 22])
    for resample in (0, 1):
        out = model.sample(jax.random.PRNGKey(2), 3, steps=5, fixed=FixedAtoms(part, 3), resample=resample)
        for c in out:
            assert c.n_atoms == 5
            np.testing.assert_allclose(c.frac_coords[:2], part.frac_coords, atol=1e-6)
            np.testing.assert_array_equal(c.numbers[:2], part.numbers)
            assert set(c.numbers[2:]) <= set(model.config.elements)


def test_guidance_through_species_is_finite_and_reproducible(model):
    encoder = EncoderConfig.tiny(cutoff=4.0)
    predictor = init_predictor(PredictorConfig.for_target("heat_ref", encoder=encoder), jax.random.PRNGKey(1))
    objective = [PropertyTarget(predictor, target=0.5, scale=0.1), MinDistance(1.0)]
    a = model.sample(jax.random.PRNGKey(5), 4, steps=4, guidance=objective, guidance_scale=0.1)
    b = model.sample(jax.random.PRNGKey(5), 4, steps=4, guidance=objective, guidance_scale=0.1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)
        assert np.isfinite(x.properties["guidance_objective"])


def test_guide_tilts_the_logits_against_the_gradient():
    logits = jnp.zeros((1, 2, K))
    grad = jnp.array([[[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]])
    out = PROC.guide(logits, grad, 2.0, 0.5)
    probs = np.asarray(jax.nn.softmax(out, -1))
    assert probs[0, 0, 2] > probs[0, 0, 1] > probs[0, 0, 0]  # lower objective -> more likely
    np.testing.assert_allclose(probs[0, 1], 1.0 / K, rtol=1e-6)


def test_train_save_load_and_sample_with_absorbing_species(tmp_path):
    rng = np.random.default_rng(0)
    cells = [random_crystal(rng, n_atoms=4, numbers=rng.choice([8, 22, 38], size=4), skew=0.1, size=4.0)
             for _ in range(10)]
    config = make_config(cells, irreps_hidden="8x0e+4x1o", n_layers=1, cutoff=3.5, species_process="absorbing")
    assert config.species_process == "absorbing" and config.species_weight == 1.0
    tc = TrainConfig(max_steps=3, warmup_steps=1, eval_every=0, checkpoint_every=2)
    model, result = train_diffusion(config, cells[:8], cells[8:], tc, batch_size=4, progress=False, n_val=2)
    species_losses = [h["val_species"] for h in result.history if "val_species" in h]
    assert species_losses and np.all(np.isfinite(species_losses))
    loaded = DiffusionModel.load(model.save(tmp_path / "m.ckpt"))
    assert loaded.config == model.config
    out = loaded.sample(jax.random.PRNGKey(0), 2, steps=3)
    assert len(out) == 2 and all(set(c.numbers.tolist()) <= {8, 22, 38} for c in out)


def test_the_corrector_step_defaults_to_the_models_recorded_one(model):
    tuned = DiffusionModel(model.config, model.params, {"sampler": {"step_lr": 1e-6, "step_lr_csp": 5e-7}})
    assert tuned.default_step_lr() == 1e-6 and tuned.default_step_lr(csp=True) == 5e-7
    assert model.default_step_lr() == model.default_step_lr(csp=True) == 1e-5  # nothing recorded
    key = jax.random.PRNGKey(3)
    a = tuned.sample(key, 2, conditions={"n_atoms": 5}, steps=3)
    b = tuned.sample(key, 2, conditions={"n_atoms": 5}, steps=3, step_lr=1e-6)
    c = tuned.sample(key, 2, conditions={"n_atoms": 5}, steps=3, step_lr=1e-2)
    np.testing.assert_array_equal(a[0].frac_coords, b[0].frac_coords)
    assert not np.allclose(a[0].frac_coords, c[0].frac_coords)
