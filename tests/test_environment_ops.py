"""Alignment, RMSD and per-environment statistics shared by the environment generators."""

import numpy as np
import pytest

from atomsmith.generators.environments import ops
from tests.helpers.symmetry import random_o3


def _env(rng, n=8):
    """A random environment: 4 'bonds' around 2.35 Å and the rest at 3-4 Å."""
    d = np.concatenate([rng.uniform(2.2, 2.5, 4), rng.uniform(3.0, 3.9, n - 4)])
    u = rng.normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True) * d[:, None]


@pytest.mark.parametrize("reflection", [False, True])
def test_kabsch_recovers_orthogonal_map(reflection):
    rng = np.random.default_rng(1)
    p = _env(rng)
    r = random_o3(rng, reflection)
    rot = ops.kabsch(p, p @ r, allow_reflection=True)
    np.testing.assert_allclose(rot, r, atol=1e-10)
    proper = ops.kabsch(p, p @ r, allow_reflection=False)
    assert np.linalg.det(proper) > 0
    if reflection:  # a proper rotation cannot undo a reflection of a non-planar set
        assert np.abs(p @ proper - p @ r).max() > 0.1


def test_aligned_rmsd_zero_under_o3_and_relabelling():
    rng = np.random.default_rng(2)
    for _ in range(5):
        p = _env(rng)
        q = p[rng.permutation(len(p))] @ random_o3(rng)
        assert ops.aligned_rmsd(p, q) < 1e-8
        al = ops.align(p, q)
        np.testing.assert_allclose(p @ al.rotation, q[al.assignment], atol=1e-8)


def test_align_matches_brute_force_on_noisy_sets():
    rng = np.random.default_rng(3)
    for trial in range(8):
        p = _env(rng, 6)
        q = p[rng.permutation(6)] @ random_o3(rng) + rng.normal(scale=0.3, size=(6, 3))
        assert ops.aligned_rmsd(p, q) == pytest.approx(ops.brute_force_rmsd(p, q), abs=1e-9), trial


def test_proper_only_alignment_detects_chirality():
    rng = np.random.default_rng(4)
    p = _env(rng)
    mirror = p * np.array([1.0, 1.0, -1.0])
    assert ops.aligned_rmsd(p, mirror, allow_reflection=True) < 1e-8
    assert ops.aligned_rmsd(p, mirror, allow_reflection=False) > 0.05


def test_partial_alignment_finds_subset():
    rng = np.random.default_rng(5)
    q = _env(rng)
    subset = np.array([6, 1, 3, 0, 7])
    r = random_o3(rng)
    p = (q[subset] @ r.T)  # the subset in another frame
    al = ops.align(p, q)
    assert al.rmsd < 1e-8
    np.testing.assert_array_equal(al.assignment, subset)


def test_statistics():
    # a regular tetrahedron of 2.35 Å bonds plus four far atoms
    t = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.35
    env = np.concatenate([t, -t * 1.6])
    angles = ops.bond_angles(env)
    np.testing.assert_allclose(angles, np.degrees(np.arccos(-1 / 3)), atol=1e-9)
    assert len(angles) == 6
    assert ops.coordination(env[None])[0] == 4
    # closest pair: centre-bond 2.35 Å; bond atoms are 2.35*sqrt(8/3) apart
    assert ops.min_pair_distance(env) == pytest.approx(2.35)
    np.testing.assert_allclose(ops.neighbor_distances(env)[:4], 2.35)
    np.testing.assert_array_equal(np.argsort(np.linalg.norm(ops.sort_by_distance(env[::-1]), axis=1)),
                                  np.arange(8))


def test_bad_shapes_raise():
    with pytest.raises(ops.EnvironmentShapeError):
        ops.check_environment(np.zeros((4, 2)))
    with pytest.raises(ops.EnvironmentShapeError):
        ops.align(np.ones((5, 3)), np.ones((4, 3)))
    with pytest.raises(ops.EnvironmentShapeError):
        ops.aligned_rmsd(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(ops.EnvironmentShapeError):
        ops.check_environment(np.full((3, 3), np.nan))


def test_crystal_round_trip_and_too_few_neighbours():
    from atomsmith.graphs.environments import EnvironmentError_

    rng = np.random.default_rng(6)
    env = ops.sort_by_distance(_env(rng))
    crystal = ops.environment_to_crystal(env)
    back = ops.crystal_to_environment(crystal, 8, 4.0, centre=0)
    np.testing.assert_allclose(back, env, atol=1e-9)
    with pytest.raises(EnvironmentError_, match="neighbours within"):
        ops.crystal_to_environment(crystal, 9, 4.0, centre=0)
    with pytest.raises(IndexError):
        ops.crystal_to_environment(crystal, 8, 4.0, centre=20)


def test_partial_alignment_matches_brute_force_with_noise():
    rng = np.random.default_rng(7)
    for trial in range(6):
        q = _env(rng, 7)
        k = int(rng.integers(2, 7))
        p = q[rng.permutation(7)[:k]] @ random_o3(rng).T + rng.normal(scale=0.25, size=(k, 3))
        assert ops.align(p, q).rmsd == pytest.approx(ops.brute_force_rmsd(p, q), abs=1e-9), (trial, k)
