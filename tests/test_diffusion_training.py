"""A tiny end-to-end run of the diffusion training through the shared loop, and the checkpoint round trip."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.generators.diffusion import DiffusionModel
from atomsmith.generators.diffusion.data import dense_arrays
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.training import make_config, train_diffusion
from atomsmith.training.checkpoint import CheckpointMismatchError, save
from atomsmith.training.loop import TrainConfig
from tests.helpers.symmetry import random_crystal


@pytest.fixture(scope="module")
def cells():
    rng = np.random.default_rng(0)
    return [random_crystal(rng, n_atoms=4, numbers=rng.choice([8, 22, 38], size=4), skew=0.1, size=4.0)
            for _ in range(10)]


def test_config_is_fitted_to_the_data(cells):
    config = make_config(cells, irreps_hidden="8x0e+4x1o", n_layers=1, cutoff=3.5)
    assert config.elements == tuple(sorted({int(z) for c in cells for z in c.numbers}))
    assert config.n_atoms_counts == ((4, 10),)
    assert config.max_edges_per_cell >= 8 and all(n >= 1 for n in config.n_images)
    loss_fn, _ = make_loss_fn(config)
    assert DiffusionModel  # imported for the round-trip test below


def test_train_save_load_and_sample(cells, tmp_path):
    config = make_config(cells, irreps_hidden="8x0e+4x1o", n_layers=1, cutoff=3.5)
    tc = TrainConfig(max_steps=3, warmup_steps=1, eval_every=0, checkpoint_every=2, learning_rate=1e-3)
    model, result = train_diffusion(config, cells[:8], cells[8:], tc, batch_size=4,
                                    checkpoint_path=tmp_path / "train.ckpt", progress=False, n_val=2)
    assert int(result.state.step) == 3
    losses = [h["train_loss"] for h in result.history if "train_loss" in h] + [h["val_loss"] for h in result.history
                                                                                 if "val_loss" in h]
    assert losses and all(np.isfinite(losses))
    path = model.save(tmp_path / "model.ckpt", {"how_trained": {"steps": 3}})
    loaded = DiffusionModel.load(path)
    assert loaded.config == model.config and loaded.metadata["how_trained"]["steps"] == 3
    for a, b in zip(jax.tree_util.tree_leaves(loaded.params), jax.tree_util.tree_leaves(model.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the training checkpoint of the shared loop also loads (its best EMA parameters)
    from_train = DiffusionModel.load(tmp_path / "train.ckpt")
    assert from_train.config == model.config
    out = loaded.sample(jax.random.PRNGKey(0), 2, steps=2, method="ode")
    assert len(out) == 2 and all(c.n_atoms == 4 for c in out)
    save(tmp_path / "other.ckpt", {"w": np.zeros(2)}, kind="predictor")
    with pytest.raises(CheckpointMismatchError):
        DiffusionModel.load(tmp_path / "other.ckpt")


def test_dense_arrays_reject_unknown_elements(cells):
    with pytest.raises(ValueError, match="vocabulary"):
        dense_arrays(cells, elements=(8, 22))
