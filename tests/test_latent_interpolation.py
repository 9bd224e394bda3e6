"""Shared latent interpolation (both environment VAEs): paths, end points, frame alignment, extxyz output."""

import jax
import numpy as np
import pytest

from atomsmith.generators.environments import ops
from atomsmith.generators.environments import interpolation as li
from atomsmith.generators.eq_vae import EqVAE, tiny_config
from atomsmith.generators.gram_vae import GramVAE, GramNormalizer, InvalidRequestError
from atomsmith.generators.gram_vae import tiny_config as gram_tiny
from atomsmith.structures import io


def _environments(m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(m, 8, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d * np.sort(rng.uniform(2.2, 3.9, (m, 8, 1)), axis=1)


@pytest.fixture(scope="module")
def eq_model():
    return EqVAE.initialize(tiny_config(), jax.random.PRNGKey(1), coord_scale=30.0)  # Å-sized decodings


@pytest.fixture(scope="module")
def gram_model():
    envs = _environments(20, 0)
    return GramVAE.initialize(gram_tiny(), GramNormalizer.fit(envs), jax.random.PRNGKey(2))


def test_paths_hit_the_end_points():
    rng = np.random.default_rng(0)
    za, zb = rng.normal(size=5), rng.normal(size=5)
    for spherical in (False, True):
        path = li.latent_path(za, zb, 7, spherical)
        assert path.shape == (7, 5)
        np.testing.assert_allclose(path[0], za, atol=1e-12)
        np.testing.assert_allclose(path[-1], zb, atol=1e-12)
    lin = li.latent_path(za, zb, 5)
    np.testing.assert_allclose(lin[2], 0.5 * (za + zb))
    sph = li.latent_path(za, zb, 5, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(sph, axis=1),
                               np.linspace(np.linalg.norm(za), np.linalg.norm(zb), 5), rtol=1e-10)


def test_equivariant_vae_end_points_reproduce_the_decoded_end_points(eq_model):
    a, b = _environments(2, 3)
    trajectory = li.interpolate(eq_model, a, b, steps=6)
    assert trajectory.frames.shape == (6, 8, 3) and trajectory.numbers.shape == (6, 9)
    recon_a, recon_b = eq_model.reconstruct(np.stack([a, b]))
    # the first frame is the reconstruction of a in a's own frame: equal up to relabelling, no rotation at all
    assert np.allclose(np.sort(np.linalg.norm(trajectory.frames[0] - recon_a[:, None], axis=-1).min(1)), 0,
                       atol=1e-4)
    assert ops.aligned_rmsd(trajectory.frames[0], recon_a, allow_reflection=False) < 1e-4
    # the last one is b's reconstruction up to a proper rotation (or its mirror image, when flagged)
    assert ops.aligned_rmsd(trajectory.frames[-1], recon_b, allow_reflection=trajectory.mirrored_end) < 1e-4
    assert trajectory.mirrored_end == (np.linalg.det(eq_model.encode_with_frames(np.stack([a, b]))[2]).prod() < 0)
    # mirror-aware: the handedness is kept along the path (proper rotations only)
    mirrored = li.interpolate(eq_model, a * np.array([1, 1, -1]), b * np.array([1, 1, -1]), steps=6)
    np.testing.assert_allclose(mirrored.frames[0], trajectory.frames[0] * np.array([1, 1, -1]), atol=1e-4)


def test_gram_vae_end_points_reproduce_the_decoded_end_points(gram_model):
    a, b = _environments(2, 4)
    frames = gram_model.interpolate(a, b, steps=5)
    assert frames.shape == (5, 8, 3)
    recon_a, recon_b = gram_model.reconstruct(np.stack([a, b]))
    assert ops.aligned_rmsd(frames[0], recon_a) < 1e-4
    assert ops.aligned_rmsd(frames[-1], recon_b) < 1e-4


def test_frames_are_aligned_to_their_predecessors(eq_model):
    a, b = _environments(2, 5)
    trajectory = li.interpolate(eq_model, a, b, steps=8)
    for prev, frame in zip(trajectory.frames[:-1], trajectory.frames[1:]):
        direct = np.sqrt(np.mean(np.sum((frame - prev) ** 2, axis=1)))
        assert direct <= ops.aligned_rmsd(frame, prev, allow_reflection=False) + 1e-6


def test_trajectory_written_as_extxyz(tmp_path):
    frames = _environments(4, 6)
    numbers = np.full((4, 9), 14)
    numbers[:, 3] = 8
    trajectory = li.Trajectory(frames, np.zeros((4, 2)), np.linspace(0, 1, 4), numbers)
    path = tmp_path / "path.extxyz"
    li.write_trajectory(path, trajectory)
    back = io.read(path)
    assert len(back) == 4
    for i, (crystal, frame) in enumerate(zip(back, frames)):
        pos = crystal.positions
        np.testing.assert_allclose(pos[1:] - pos[0], frame, atol=1e-5)
        np.testing.assert_array_equal(crystal.numbers, numbers[i])
        assert crystal.properties["step"] == i
    with pytest.raises(FileExistsError):
        li.write_trajectory(path, trajectory)


def test_bad_requests(eq_model):
    a, b = _environments(2, 7)
    with pytest.raises(InvalidRequestError, match="steps"):
        li.interpolate(eq_model, a, b, steps=1)
    with pytest.raises(InvalidRequestError, match="neighbours"):
        li.interpolate(eq_model, a[:5], b, steps=3)


def test_cli_interpolate_and_sample_with_an_equivariant_vae(tmp_path):
    from typer.testing import CliRunner

    from atomsmith.cli.main import app
    from atomsmith.physics.asi_set import load_shipped

    runner = CliRunner()
    model_path = EqVAE.initialize(tiny_config(), jax.random.PRNGKey(1), coord_scale=30.0).save(tmp_path / "m.ckpt")
    cell = tmp_path / "cell.extxyz"
    io.write(cell, load_shipped()[0])
    out = tmp_path / "path.extxyz"
    result = runner.invoke(app, ["interpolate", str(cell), str(cell), "--centre-second", "5", "--model",
                                 str(model_path), "--steps", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frames = io.read(out, min_distance=None)
    assert len(frames) == 5 and all(f.n_atoms == 9 for f in frames)
    samples = tmp_path / "samples.extxyz"
    result = runner.invoke(app, ["sample", "--model", str(model_path), "-n", "3", "--out", str(samples)])
    assert result.exit_code == 0, result.output
    assert len(io.read(samples, min_distance=None)) == 3
