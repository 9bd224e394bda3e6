"""CLI: train gram-vae, sample --model gram-vae, interpolate, infill (tiny models; invalid requests)."""

import itertools

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith.cli.main import app
from atomsmith.generators.environments import ops
from atomsmith.generators.gram_vae import GramNormalizer, GramVAE, tiny_config
from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal

runner = CliRunner()


def _diamond(seed: int) -> Crystal:
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    frac = np.concatenate([(basis + np.array(c)) / 2 for c in itertools.product(range(2), repeat=3)])
    lattice = np.eye(3) * 2 * 5.431
    pos = frac @ lattice + np.random.default_rng(seed).normal(scale=0.1, size=frac.shape)
    return Crystal.from_cartesian(lattice, pos, [14] * 64)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from atomsmith.graphs.environments import local_environments

    envs = local_environments(_diamond(0), 8, 4.0).vectors
    model = GramVAE.initialize(tiny_config(), GramNormalizer.fit(envs), jax.random.PRNGKey(0))
    return model.save(tmp_path_factory.mktemp("m") / "tiny.ckpt")


def _env_file(tmp_path, name="env.extxyz", k=None, seed=1):
    env = ops.crystal_to_environment(_diamond(seed), 8, 4.0, centre=3)
    path = tmp_path / name
    io.write(path, ops.environment_to_crystal(env if k is None else env[:k]), overwrite=True)
    return path


def test_infill_writes_completions(tmp_path, model_path):
    out = tmp_path / "done.extxyz"
    result = runner.invoke(app, ["infill", str(_env_file(tmp_path, k=6)), "--model", str(model_path), "-n", "2",
                                 "--restarts", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    done = io.read(out, min_distance=None)
    assert len(done) == 2 and all(c.n_atoms == 9 for c in done)
    np.testing.assert_array_equal(done[0].site_properties["fixed"], [1, 1, 1, 1, 1, 1, 1, 0, 0])


def test_infill_rejects_k_larger_than_environment(tmp_path, model_path):
    result = runner.invoke(app, ["infill", str(_env_file(tmp_path)), "--model", str(model_path), "--k", "9",
                                 "--out", str(tmp_path / "x.extxyz")])
    assert result.exit_code != 0
    assert "larger than the environment" in result.output
    # a complete environment (8 held atoms) leaves nothing to generate
    result = runner.invoke(app, ["infill", str(_env_file(tmp_path)), "--model", str(model_path), "--k", "8",
                                 "--out", str(tmp_path / "x.extxyz")])
    assert result.exit_code != 0 and "at most 7" in result.output
    # more held atoms than the file has
    result = runner.invoke(app, ["infill", str(_env_file(tmp_path, k=3)), "--model", str(model_path), "--k", "5",
                                 "--out", str(tmp_path / "x.extxyz")])
    assert result.exit_code != 0 and "only 3 neighbours" in result.output


def test_interpolate_and_too_few_neighbours(tmp_path, model_path):
    a, b = _env_file(tmp_path, "a.extxyz", seed=1), _env_file(tmp_path, "b.extxyz", seed=2)
    out = tmp_path / "path.extxyz"
    result = runner.invoke(app, ["interpolate", str(a), str(b), "--model", str(model_path), "--steps", "4",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(io.read(out, min_distance=None)) == 4
    short = _env_file(tmp_path, "short.extxyz", k=5)
    result = runner.invoke(app, ["interpolate", str(a), str(short), "--model", str(model_path),
                                 "--out", str(tmp_path / "p2.extxyz")])
    assert result.exit_code != 0 and "too few neighbours" in result.output


def test_sample_gram_vae_and_wrong_model_kind(tmp_path, model_path):
    out = tmp_path / "envs.extxyz"
    result = runner.invoke(app, ["sample", "--model", str(model_path), "-n", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    envs = io.read(out, min_distance=None)
    assert len(envs) == 5 and all(c.n_atoms == 9 for c in envs)
    result = runner.invoke(app, ["infill", str(_env_file(tmp_path)), "--model", "perov-5", "--k", "5",
                                 "--out", str(tmp_path / "y.extxyz")])
    assert result.exit_code != 0 and "gram-vae" in result.output


def test_train_gram_vae(tmp_path):
    data = tmp_path / "cells"
    data.mkdir()
    for seed in range(3):
        io.write(data / f"c{seed}.extxyz", _diamond(seed))
    out = tmp_path / "trained.ckpt"
    result = runner.invoke(app, ["train", "gram-vae", "--out", str(out), "--data", str(data), "--preset", "tiny",
                                 "--steps", "20", "--batch-size", "16", "--no-progress"])
    assert result.exit_code == 0, result.output
    model = GramVAE.load(out)
    how = model.metadata["how_trained"]
    assert how["steps"] == 20 and how["n_cells"] == 3 and "test_reconstruction_rmsd_mean" in how


def test_shipped_model_samples_100(tmp_path):
    """Acceptance: `atomsmith sample --model gram-vae -n 100` with the model shipped in the package."""
    from atomsmith import pretrained

    assert "gram-vae" in pretrained.available()
    model = pretrained.load_model("gram-vae")
    assert isinstance(model, GramVAE) and model.metadata["how_trained"]["command"]
    out = tmp_path / "envs.extxyz"
    result = runner.invoke(app, ["sample", "--model", "gram-vae", "-n", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    envs = np.stack([c.positions[1:] - c.positions[0] for c in io.read(out, min_distance=None)])
    assert envs.shape == (100, 8, 3)
    # a trained model: most samples free of clashes, first shells of a-Si bond lengths
    assert np.mean(ops.min_pair_distance(envs) >= 2.0) > 0.5
    assert 2.2 < np.median(np.linalg.norm(envs, axis=-1)[:, :4]) < 2.6
