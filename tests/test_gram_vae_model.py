"""Gram VAE: losses, a whole tiny training run, invariances, checkpoints, sampling, interpolation, infilling."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.environments import ops
from atomsmith.generators.gram_vae import GramVAE, GramVAEConfig, InfillConfig, InvalidRequestError, infill, \
    preset, tiny_config, train_gram_vae
from atomsmith.generators.gram_vae.losses import permutation_matrices, reconstruction_error, shell_permutations
from atomsmith.generators.gram_vae.representation import GramNormalizer, gram_matrix
from atomsmith.training import checkpoint as ckpt
from atomsmith.training.loop import TrainConfig
from tests.helpers.symmetry import random_o3


def _family(m: int, seed: int) -> np.ndarray:
    """Environments of a three-parameter family (a tetrahedral first shell of radius s, four outer atoms at radius t
    in directions turned by an angle a about z), slightly noisy, randomly rotated: simple enough for a tiny model
    to learn in a test, varied enough that its KL term does not switch the latent off."""
    rng = np.random.default_rng(seed)
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    s = rng.uniform(1.9, 2.8, (m, 1, 1))
    t = rng.uniform(3.0, 4.0, (m, 1, 1))
    a = rng.uniform(0.0, np.pi / 2, m)
    c, n = np.cos(a), np.sin(a)
    zero, one = np.zeros_like(c), np.ones_like(c)
    turn = np.stack([np.stack([c, -n, zero], -1), np.stack([n, c, zero], -1), np.stack([zero, zero, one], -1)],
                    axis=1)  # [m, 3, 3]
    outer = np.einsum("mij,kj->mki", turn, -tet)
    envs = np.concatenate([s * tet, t * outer], axis=1) + rng.normal(scale=0.02, size=(m, 8, 3))
    rots = np.stack([random_o3(rng) for _ in range(m)])
    return np.einsum("mij,mkj->mki", rots, envs).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return _family(512, 0), _family(64, 1)


@pytest.fixture(scope="module")
def trained(data):
    train, val = data
    cfg = TrainConfig(learning_rate=5e-3, max_steps=800, warmup_steps=20, eval_every=200, checkpoint_every=0,
                      ema_decay=0.9)
    model, summary = train_gram_vae(train, val, tiny_config(), cfg, batch_size=32, progress=False)
    return model, summary


def test_shell_perm_loss_is_exact_minimum_over_block_relabellings():
    rng = np.random.default_rng(0)
    cfg = GramVAEConfig(n_neighbors=5, shells=(3, 2), loss="shell-perm", augment="none")
    x = rng.normal(size=(4, 5, 3)) * 2
    norm = GramNormalizer.fit(x)
    pred = jnp.asarray(rng.normal(size=(4, 15)), jnp.float32)
    got = np.asarray(reconstruction_error(cfg, norm, pred, jnp.asarray(gram_matrix(x), jnp.float32)))
    perms = shell_permutations((3, 2))
    assert len(perms) == 12 and permutation_matrices(5, (3, 2)).shape == (12, 15, 15)
    brute = [min(np.sum((np.asarray(pred[b]) - norm.normalize(gram_matrix(x[b][p]))) ** 2) for p in perms)
             for b in range(4)]
    np.testing.assert_allclose(got, brute, rtol=1e-5)
    ref = dataclasses.replace(cfg, loss="gram")
    plain = np.asarray(reconstruction_error(ref, norm, pred, jnp.asarray(gram_matrix(x), jnp.float32)))
    assert np.all(got <= plain + 1e-5) and np.any(got < plain - 1e-3)


def test_config_validation_and_presets():
    assert preset("reference") == GramVAEConfig()
    assert preset("reference").hidden == (28, 18) and preset("reference").latent_dim == 8
    with pytest.raises(ValueError, match="unknown Gram-VAE preset"):
        preset("nope")
    with pytest.raises(ValueError, match="shells"):
        GramVAEConfig(shells=(4, 3))
    with pytest.raises(ValueError, match="decoder"):
        GramVAEConfig(decoder="x")
    assert GramVAEConfig.from_dict(preset("improved").to_dict()) == preset("improved")


def test_training_reduces_validation_loss(trained, data):
    from atomsmith.generators.gram_vae.losses import make_eval_fn

    model, summary = trained
    _, val = data
    untrained = GramVAE.initialize(model.config, model.normalizer, jax.random.PRNGKey(0))
    before = make_eval_fn(model.config, model.normalizer, model.coord_scale, val)(untrained.params)["loss"]
    after = summary["val"]["loss"]
    assert after < 0.5 * before, (before, after)
    rec = model.reconstruct(val[:10])
    assert rec.shape == (10, 8, 3)
    # well below the spread of the data (the distance to another environment of the family)
    rmsd = np.mean([ops.aligned_rmsd(a, b) for a, b in zip(rec, val[:10])])
    baseline = np.mean([ops.aligned_rmsd(a, b) for a, b in zip(val[:10], val[10:20])])
    assert rmsd < 0.6 * baseline, (rmsd, baseline)


def test_encoder_invariant_to_o3_and_relabelling(trained, data):
    model, _ = trained
    _, val = data
    x = val[:6].astype(np.float64)
    rng = np.random.default_rng(1)
    mean, std = model.encode(x)
    for reflection in (False, True):
        r = random_o3(rng, reflection)
        m2, s2 = model.encode(x @ r.T)
        np.testing.assert_allclose(m2, mean, atol=1e-5)
        np.testing.assert_allclose(s2, std, atol=1e-5)
    m3, _ = model.encode(x[:, rng.permutation(8)])
    np.testing.assert_allclose(m3, mean, atol=1e-5)
    assert np.ptp(mean, axis=0).max() > 1e-3  # the output depends on the input


def test_decoded_environments_are_exact_rank3(trained):
    model, _ = trained
    z = model.sample_latents(jax.random.PRNGKey(0), 5)
    envs = model.decode(z)
    assert envs.shape == (5, 8, 3)
    np.testing.assert_allclose(gram_matrix(model.decode(z, ordered=False)), model.decode_gram(z), atol=1e-4)
    for a, b in zip(envs, model.decode(z, ordered=False)):  # ordering and mirror convention only
        assert ops.aligned_rmsd(a, b) < 1e-6
    d = np.linalg.norm(envs, axis=-1)
    assert np.all(np.diff(d, axis=1) >= -1e-9)  # distance-ordered


def test_checkpoint_round_trip(trained, tmp_path):
    model, _ = trained
    path = model.save(tmp_path / "g.ckpt", metadata={"note": "test"})
    back = GramVAE.load(path)
    assert back.config == model.config and back.normalizer == model.normalizer
    assert back.metadata["note"] == "test" and "training" in back.metadata
    z = model.sample_latents(jax.random.PRNGKey(1), 3)
    np.testing.assert_allclose(back.decode_raw(z), model.decode_raw(z))
    ckpt.save(tmp_path / "other.ckpt", {"params": {}}, kind="diffusion")
    with pytest.raises(ckpt.CheckpointMismatchError, match="gram-vae"):
        GramVAE.load(tmp_path / "other.ckpt")


def test_protocol_sample(trained):
    model, _ = trained
    crystals = model.sample(jax.random.PRNGKey(2), 4)
    assert len(crystals) == 4 and all(c.n_atoms == 9 for c in crystals)
    env = ops.crystal_to_environment(crystals[0], 8, 6.0)
    np.testing.assert_allclose(np.sort(np.linalg.norm(env, axis=1)),
                               np.sort(np.linalg.norm(model.sample_environments(jax.random.PRNGKey(2), 4)[0], axis=1)),
                               atol=1e-6)
    held = env[1:6]
    filled = model.sample(jax.random.PRNGKey(3), 2, fixed=held)  # infilling through the protocol
    assert len(filled) == 2 and all(c.n_atoms == 9 for c in filled)
    np.testing.assert_allclose(filled[0].positions[1:6] - filled[0].positions[0], held, atol=1e-9)
    with pytest.raises(NotImplementedError):
        model.sample(jax.random.PRNGKey(0), 2, guidance=[object()])
    with pytest.raises(NotImplementedError):
        model.sample(jax.random.PRNGKey(0), 2, conditions={"composition": [14]})


def test_interpolation_end_points(trained, data):
    model, _ = trained
    _, val = data
    frames = model.interpolate(val[0], val[1], steps=5)
    assert frames.shape == (5, 8, 3)
    rec = model.reconstruct(val[:2])
    assert ops.aligned_rmsd(frames[0], rec[0]) < 1e-4
    assert ops.aligned_rmsd(frames[-1], rec[1]) < 1e-4
    # consecutive frames are aligned to each other: steps are smaller than the end-to-end change
    steps = [np.sqrt(np.mean(np.sum((a - b) ** 2, -1))) for a, b in zip(frames[:-1], frames[1:])]
    assert max(steps) <= ops.aligned_rmsd(frames[0], frames[-1]) + 1e-6
    with pytest.raises(InvalidRequestError, match="steps"):
        model.interpolate(val[0], val[1], steps=1)
    with pytest.raises(InvalidRequestError, match="exactly 8"):
        model.interpolate(val[0][:6], val[1], steps=3)


def test_infill_holds_atoms_and_beats_unconditioned_samples(trained, data):
    model, _ = trained
    _, val = data
    target = val[3].astype(np.float64)
    fixed = target[[0, 2, 4, 5, 6]]
    res = infill(model, fixed, 3, jax.random.PRNGKey(3), InfillConfig(restarts=4, rounds=2, steps=60))
    assert res.environments.shape == (3, 8, 3) and res.generated.shape == (3, 3, 3)
    np.testing.assert_allclose(res.environments[:, :5], np.broadcast_to(fixed, (3, 5, 3)))
    # the optimised latents fit the fixed atoms better than prior samples do
    prior = model.sample_environments(jax.random.PRNGKey(4), 12)
    prior_fit = np.median([ops.align(fixed, e).rmsd for e in prior])
    assert np.median(res.fit_rmsd) < prior_fit, (res.fit_rmsd, prior_fit)


def test_infill_rejects_invalid_requests(trained, data):
    model, _ = trained
    _, val = data
    with pytest.raises(InvalidRequestError, match="larger than the environment"):
        infill(model, np.concatenate([val[0], val[1][:1]]), 1, jax.random.PRNGKey(0))
    with pytest.raises(InvalidRequestError, match="at most 7"):
        infill(model, val[0], 1, jax.random.PRNGKey(0))
    with pytest.raises(InvalidRequestError, match="r_cut"):
        infill(model, val[0][:3] * 3.0, 1, jax.random.PRNGKey(0))
    with pytest.raises(InvalidRequestError, match=r"\[k, 3\]"):
        infill(model, np.zeros((2, 2)), 1, jax.random.PRNGKey(0))


def test_shared_encoder_variant_invariant_by_construction():
    """The shared-encoder variant is invariant to O(3) and to any relabelling of neighbours without training."""
    from atomsmith.generators.gram_vae.network import GramVAENetwork

    cfg = GramVAEConfig(encoder="shared", encoder_irreps="4x0e+2x1o", encoder_layers=1, hidden=(8,), latent_dim=3,
                        decoder="coords", loss="gram", augment="none")
    x = _family(4, 5).astype(np.float32)
    norm = GramNormalizer.fit(x)
    model = GramVAE.initialize(cfg, norm, jax.random.PRNGKey(0))
    net = GramVAENetwork(cfg, model.coord_scale)
    enc = jax.jit(lambda v: net.apply({"params": model.params}, v, method=GramVAENetwork.encode))
    mean, log_std = enc(jnp.asarray(x))
    rng = np.random.default_rng(2)
    r = random_o3(rng, True)
    moved = np.stack([e[rng.permutation(8)] for e in x @ r.T]).astype(np.float32)
    m2, s2 = enc(jnp.asarray(moved))
    np.testing.assert_allclose(m2, mean, atol=1e-5)
    np.testing.assert_allclose(s2, log_std, atol=1e-5)
    assert float(jnp.ptp(mean, axis=0).max()) > 1e-4
