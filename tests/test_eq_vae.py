"""Equivariant VAE: O(3) equivariance of the frame and of decoding, invariance of the latent to rotations,
reflections and neighbour order, mirror-image recovery, checkpoints, species, errors. Untrained tiny models: the
symmetries hold for any parameters, and nothing here needs a trained model."""

import jax
import numpy as np
import pytest

from atomsmith.generators.environments import ops
from atomsmith.generators.eq_vae import EqVAE, EqVAEConfig, gram_schmidt_frame, moment_vectors, tiny_config
from atomsmith.generators.gram_vae import InvalidRequestError
from atomsmith.training import checkpoint as ckpt
from tests.helpers.symmetry import assert_close_scaled, random_o3


def _environments(m: int, seed: int, n: int = 8) -> np.ndarray:
    """Random chiral environments ``[m, n, 3]``: neighbours at 2.2-3.9 Å in random directions."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(m, n, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    r = np.sort(rng.uniform(2.2, 3.9, (m, n, 1)), axis=1)
    return d * r


@pytest.fixture(scope="module")
def model() -> EqVAE:
    return EqVAE.initialize(tiny_config(), jax.random.PRNGKey(3), coord_scale=3.0)


@pytest.fixture(scope="module", params=["learned", "moments"])
def any_frame_model(request) -> EqVAE:
    """Both frame constructions must pass every symmetry test."""
    return EqVAE.initialize(tiny_config(frame=request.param), jax.random.PRNGKey(3), coord_scale=3.0)


def test_gram_schmidt_frame_is_o3_equivariant_with_reflections():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 3, 3))
    frame = np.asarray(gram_schmidt_frame(v))
    assert np.allclose(np.einsum("mji,mjk->mik", frame, frame), np.eye(3), atol=1e-5)
    for reflection in (False, True):
        q = random_o3(rng, reflection)
        moved = np.asarray(gram_schmidt_frame(np.einsum("ij,mkj->mki", q, v)))
        assert_close_scaled(moved, np.einsum("ij,mjk->mik", q, frame), 1e-5, f"frame (reflection={reflection})")
    assert np.allclose(np.abs(np.linalg.det(frame)), 1.0, atol=1e-5)


def test_encoding_is_invariant_and_frame_rotates(any_frame_model):
    model = any_frame_model
    envs = _environments(5, 1)
    mean, std, frames = model.encode_with_frames(envs)
    rng = np.random.default_rng(2)
    for reflection in (False, True):
        q = random_o3(rng, reflection)
        mean2, std2, frames2 = model.encode_with_frames(envs @ q.T)
        assert_close_scaled(mean2, mean, 1e-4, "latent mean")
        assert_close_scaled(std2, std, 1e-4, "latent std")
        assert_close_scaled(frames2, np.einsum("ij,mjk->mik", q, frames), 1e-3, "frame (float32)")
        assert np.allclose(np.linalg.det(frames2), np.linalg.det(frames) * np.linalg.det(q), atol=1e-4)


def test_decoding_is_equivariant(any_frame_model):
    model = any_frame_model
    envs = _environments(4, 3)
    rng = np.random.default_rng(4)
    recon = model.reconstruct(envs)
    for reflection in (False, True):
        q = random_o3(rng, reflection)
        assert_close_scaled(model.reconstruct(envs @ q.T), recon @ q.T, 1e-4, "reconstruction")
        z = np.random.default_rng(5).normal(size=(3, model.latent_dim))
        frames = np.stack([random_o3(rng) for _ in range(3)])
        out = model.decode(z, ordered=False, frames=frames)
        moved = model.decode(z, ordered=False, frames=np.einsum("ij,mjk->mik", q, frames))
        assert_close_scaled(moved, out @ q.T, 1e-5, "decode(z, Q R)")


def test_latent_is_invariant_to_neighbour_order(any_frame_model):
    model = any_frame_model
    envs = _environments(4, 6)
    mean, _ = model.encode(envs)
    perm = np.random.default_rng(7).permutation(envs.shape[1])
    mean2, _ = model.encode(envs[:, perm])
    assert_close_scaled(mean2, mean, 1e-4, "latent under relabelling")
    assert not np.allclose(mean[0], mean[1], atol=1e-4), "different environments must encode differently"


def test_mirror_images_are_recovered_as_mirror_images(any_frame_model):
    """Encoding the mirror image of an environment gives the same latent and the mirrored reconstruction, which
    (chiral environments) is not a proper rotation of the original reconstruction."""
    model = any_frame_model
    envs = _environments(3, 8)
    mirror = envs * np.array([1.0, 1.0, -1.0])
    recon, recon_m = model.reconstruct(envs), model.reconstruct(mirror)
    assert_close_scaled(model.encode(mirror)[0], model.encode(envs)[0], 1e-4, "latent of the mirror image")
    for r, rm in zip(recon, recon_m):
        assert ops.aligned_rmsd(rm, r * np.array([1.0, 1.0, -1.0]), allow_reflection=False) < 1e-4
        assert ops.aligned_rmsd(rm, r, allow_reflection=False) > 1e-2  # chiral: not a rotation of each other


def test_checkpoint_round_trip(any_frame_model, tmp_path):
    from atomsmith.generators.environments.latent_prior import fit_mixture

    model = any_frame_model
    z = np.random.default_rng(9).normal(size=(40, model.latent_dim))
    with_mix = model.replace(latent_mixture=fit_mixture(z, 2, seed=0), metadata={"note": "test"})
    path = with_mix.save(tmp_path / "eq.ckpt")
    back = EqVAE.load(path)
    assert back.config == model.config and back.coord_scale == model.coord_scale
    assert back.metadata["note"] == "test"
    envs = _environments(3, 10)
    np.testing.assert_allclose(back.reconstruct(envs), model.reconstruct(envs), atol=1e-6)
    key = jax.random.PRNGKey(0)
    np.testing.assert_allclose(back.sample_environments(key, 4), with_mix.sample_environments(key, 4), atol=1e-6)
    with pytest.raises(ckpt.CheckpointMismatchError):
        from atomsmith.generators.gram_vae import GramVAE

        GramVAE.load(path)


def test_species_aware_encoding_and_decoding():
    config = tiny_config(species=(8, 22, 56))
    model = EqVAE.initialize(config, jax.random.PRNGKey(0))
    envs = _environments(2, 11, n=config.n_neighbors)
    numbers = np.array([[22] + [8] * 6 + [56, 56], [56] + [8] * 8])
    mean, _ = model.encode(envs, numbers)
    swapped = numbers.copy()
    swapped[:, [1, 8]] = swapped[:, [8, 1]]
    assert not np.allclose(model.encode(envs, swapped)[0], mean, atol=1e-5), "species must enter the encoder"
    decoded = model.decode_full(mean)
    assert set(np.unique(decoded.numbers)) <= {8, 22, 56} and decoded.numbers.shape == (2, 9)
    with pytest.raises(InvalidRequestError, match="atomic numbers"):
        model.encode(envs)  # several elements: numbers are required
    with pytest.raises(InvalidRequestError, match="unknown"):
        model.encode(envs, np.full((2, 9), 14))


def test_invalid_requests(model):
    with pytest.raises(InvalidRequestError, match="neighbours"):
        model.encode(np.ones((2, 5, 3)))
    with pytest.raises(InvalidRequestError, match="non-finite"):
        model.encode(np.full((1, 8, 3), np.nan))
    with pytest.raises(InvalidRequestError, match="dimension"):
        model.decode(np.zeros((1, model.latent_dim + 1)))
    with pytest.raises(ValueError, match="1o"):
        EqVAEConfig(encoder_irreps="8x0e")
    with pytest.raises(ValueError, match="shells"):
        EqVAEConfig(shells=(4, 3))
    with pytest.raises(ValueError, match="frame"):
        EqVAEConfig(frame="pca")


def test_handedness_term_sees_only_the_coset_of_the_frame():
    import jax.numpy as jnp

    from atomsmith.generators.eq_vae.losses import handed_alignment_error

    envs = _environments(3, 12)
    rng = np.random.default_rng(13)
    proper = np.stack([random_o3(rng, reflection=False) for _ in range(3)])
    coords = np.einsum("mni,mji->mnj", envs, proper)  # a proper rotation of each environment
    same = handed_alignment_error(jnp.asarray(coords), jnp.asarray(envs), jnp.ones(3))
    flipped = handed_alignment_error(jnp.asarray(coords), jnp.asarray(envs), -jnp.ones(3))
    assert np.all(np.asarray(same) < 1e-6)
    assert np.all(np.asarray(flipped) > 1.0)  # chiral environments: the mirror coset cannot fit
    mirrored = coords * np.array([1.0, 1.0, -1.0])
    assert np.all(np.asarray(handed_alignment_error(jnp.asarray(mirrored), jnp.asarray(envs), -jnp.ones(3)))
                  < 1e-6)


def _moments_reference(envs: np.ndarray) -> np.ndarray:
    """Independent NumPy reference of the moments frame: columns ``e1 || u``, ``e2`` from ``T u``, ``e3`` with the
    sign of ``det[u, T u, T^2 u]``."""
    out = []
    for x in envs:
        u = x.sum(0)
        t = x.T @ x
        e1 = u / np.linalg.norm(u)
        e2 = t @ u - (t @ u @ e1) * e1
        e2 /= np.linalg.norm(e2)
        e3 = np.cross(e1, e2) * np.sign(np.linalg.det(np.stack([u, t @ u, t @ t @ u])))
        out.append(np.stack([e1, e2, e3], axis=1))
    return np.array(out)


def test_moment_vectors_are_equivariant_and_order_free_and_flip_handedness_in_a_mirror():
    envs = _environments(6, 14)
    rng = np.random.default_rng(15)
    v = np.asarray(moment_vectors(envs / 3.0))
    assert_close_scaled(np.asarray(moment_vectors(envs[:, rng.permutation(8)] / 3.0)), v, 1e-5, "relabelling")
    for reflection in (False, True):
        q = random_o3(rng, reflection)
        assert_close_scaled(np.asarray(moment_vectors(envs @ q.T / 3.0)), v @ q.T, 1e-5, f"reflection={reflection}")
    psi = np.linalg.det(v)
    assert np.all(np.abs(psi) > 0)
    np.testing.assert_allclose(np.linalg.det(np.asarray(moment_vectors(envs * np.array([1.0, 1.0, -1.0]) / 3.0))),
                               -psi, rtol=1e-4)


def test_moments_frame_is_fixed_and_matches_the_reference():
    """The ``moments`` frame is the NumPy reference construction, whatever the parameters."""
    envs = _environments(4, 16)
    frames = [EqVAE.initialize(tiny_config(frame="moments"), jax.random.PRNGKey(s)).encode_with_frames(envs)[2]
              for s in (0, 1)]
    np.testing.assert_allclose(frames[0], frames[1], atol=1e-6)
    np.testing.assert_allclose(frames[0], _moments_reference(envs), atol=1e-4)
