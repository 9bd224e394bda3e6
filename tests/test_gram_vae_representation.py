"""Gram-matrix representation: invariances, packing/normalisation, exact inversion up to O(3), mirror handling."""

import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.environments import ops
from atomsmith.generators.gram_vae.representation import GramNormalizer, canonical_mirror, gram_matrix, \
    gram_to_coordinates, n_features, pack, unpack
from atomsmith.graphs.environments import local_environments
from tests.helpers.symmetry import random_crystal, random_o3


def _envs(rng, m=20, n=8):
    d = np.concatenate([rng.uniform(2.2, 2.5, (m, 4)), rng.uniform(3.0, 3.9, (m, n - 4))], axis=1)
    u = rng.normal(size=(m, n, 3))
    return u / np.linalg.norm(u, axis=-1, keepdims=True) * d[..., None]


def test_gram_invariant_under_o3_and_translation():
    rng = np.random.default_rng(0)
    crystal = random_crystal(rng, n_atoms=6, numbers=[14] * 6, size=5.0, min_distance=1.5)
    envs = local_environments(crystal, 8, 6.0).vectors
    g = gram_matrix(envs)
    for reflection in (False, True):
        r = random_o3(rng, reflection)
        moved = crystal.rotated(r)
        g_rot = gram_matrix(local_environments(moved, 8, 6.0).vectors)
        np.testing.assert_allclose(g_rot, g, atol=1e-9)
        np.testing.assert_allclose(gram_matrix(envs @ r.T), g, atol=1e-9)  # reflections included
    shifted = crystal.replace(frac_coords=crystal.frac_coords + rng.random(3))
    np.testing.assert_allclose(gram_matrix(local_environments(shifted, 8, 6.0).vectors), g, atol=1e-9)


def test_gram_permutation_equivariant():
    rng = np.random.default_rng(1)
    x = _envs(rng, 1)[0]
    perm = rng.permutation(8)
    np.testing.assert_allclose(gram_matrix(x[perm]), gram_matrix(x)[np.ix_(perm, perm)])


def test_pack_unpack_and_normalizer_round_trip():
    rng = np.random.default_rng(2)
    envs = _envs(rng, 50)
    g = gram_matrix(envs)
    assert pack(g).shape == (50, n_features(8)) == (50, 36)
    np.testing.assert_allclose(unpack(pack(g), 8), g)
    np.testing.assert_allclose(np.asarray(unpack(jnp.asarray(pack(g)), 8)), g, rtol=1e-6)
    norm = GramNormalizer.fit(envs)
    f = norm.normalize(g)
    diag = np.diagonal(g, axis1=1, axis2=2)
    assert norm.mu_diag == pytest.approx(diag.mean())
    # separate standardisation: diagonal and off-diagonal entries each have mean 0, std 1
    d_mask = np.eye(8, dtype=bool)[np.triu_indices(8)]
    assert abs(f[:, d_mask].mean()) < 1e-9 and f[:, d_mask].std() == pytest.approx(1.0)
    assert abs(f[:, ~d_mask].mean()) < 1e-9 and f[:, ~d_mask].std() == pytest.approx(1.0)
    np.testing.assert_allclose(norm.denormalize(f), g, atol=1e-9)
    assert GramNormalizer.from_dict(norm.to_dict()) == norm


def test_inversion_recovers_environment_up_to_o3():
    rng = np.random.default_rng(3)
    envs = _envs(rng, 10)
    inv = gram_to_coordinates(gram_matrix(envs))
    assert inv.coordinates.shape == envs.shape
    assert np.max(inv.residual) < 1e-10
    np.testing.assert_allclose(gram_matrix(inv.coordinates), gram_matrix(envs), atol=1e-9)
    for x, y in zip(inv.coordinates, envs):
        # same labels: only an orthogonal map (possibly a reflection) separates them
        assert ops.align(x, y, permute=False).rmsd < 1e-8


def test_mirror_ambiguity_is_handled():
    """A Gram matrix cannot tell an environment from its mirror image: both invert to the same canonical
    representative, which differs from one of them by a reflection only."""
    rng = np.random.default_rng(4)
    x = _envs(rng, 1)[0]
    mirror = x * np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(gram_matrix(mirror), gram_matrix(x), atol=1e-12)
    a = gram_to_coordinates(gram_matrix(x)).coordinates
    b = gram_to_coordinates(gram_matrix(mirror)).coordinates
    np.testing.assert_allclose(a, b, atol=1e-8)
    assert np.linalg.det(a[:3]) > 0  # canonical: first non-coplanar triple right-handed
    proper = [ops.align(a, y, allow_reflection=False, permute=False).rmsd for y in (x, mirror)]
    assert min(proper) < 1e-8 < 0.05 < max(proper)  # exactly one of the two is reached by a proper rotation
    c = canonical_mirror(x * np.array([-1.0, 1.0, 1.0]))
    assert np.linalg.det(c[:3]) > 0


def test_inversion_of_noisy_gram_is_nearest_rank3_psd():
    rng = np.random.default_rng(5)
    x = _envs(rng, 1)[0]
    noise = rng.normal(scale=0.3, size=(8, 8))
    g = gram_matrix(x) + 0.5 * (noise + noise.T)
    inv = gram_to_coordinates(g)
    approx = gram_matrix(inv.coordinates)
    assert np.linalg.matrix_rank(approx, tol=1e-8) == 3
    vals = np.linalg.eigvalsh(g)[::-1]
    # Eckart-Young: the Frobenius error is the norm of the discarded eigenvalues (and of clipped negatives)
    expected = np.sqrt(np.sum(vals[3:] ** 2) + np.sum(np.clip(vals[:3], None, 0) ** 2))
    assert np.linalg.norm(g - approx) == pytest.approx(expected, rel=1e-8)
    assert inv.residual > 0.01


def test_inversion_rejects_bad_input():
    with pytest.raises(ValueError, match="gram must be"):
        gram_to_coordinates(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        gram_to_coordinates(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="at least 3"):
        gram_to_coordinates(np.eye(2))
    with pytest.raises(ValueError):
        unpack(np.zeros(35), 8)
