"""Equivariant VAE: whole tiny training runs (a-Si shipped cells, multi-element perov_5), infilling, refinement,
the generator protocol."""

import jax
import numpy as np
import pytest

from atomsmith.generators.eq_vae import EnvironmentSet, EqVAE, environment_set, infill, refine_reconstruction, \
    tiny_config, train_eq_vae
from atomsmith.generators.gram_vae import InfillConfig, InvalidRequestError
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import TrainConfig

TRAIN = TrainConfig(learning_rate=3e-3, max_steps=40, warmup_steps=5, eval_every=20, checkpoint_every=1000)


@pytest.fixture(scope="module")
def silicon():
    from atomsmith.physics.asi_set import load_shipped

    data = environment_set(load_shipped()[:2], 8, 4.0)
    order = np.random.default_rng(0).permutation(len(data))
    return data.subset(order[:96]), data.subset(order[96:128])


@pytest.fixture(scope="module")
def trained(silicon):
    train, val = silicon
    model, summary = train_eq_vae(train, val, tiny_config(), TRAIN, batch_size=32, progress=False)
    return model, summary


def test_training_reduces_the_loss(trained):
    model, summary = trained
    evals = [h for h in summary["history"] if "val_loss" in h]
    assert len(evals) == 2 and evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert summary["steps"] == TRAIN.max_steps and np.isfinite(summary["val"]["rmsd_mean"])
    assert model.metadata["training"]["n_train"] == 96


def test_infill_keeps_the_fixed_atoms(trained, silicon):
    model, _ = trained
    env = silicon[1].vectors[0].astype(np.float64)
    config = InfillConfig(restarts=2, rounds=2, steps=10)
    result = infill(model, env[:6], 3, jax.random.PRNGKey(0), config)
    assert result.environments.shape == (3, 8, 3) and result.generated.shape == (3, 2, 3)
    np.testing.assert_allclose(result.environments[:, :6], np.broadcast_to(env[:6], (3, 6, 3)))
    assert np.all(np.isfinite(result.generated)) and np.all(result.fit_rmsd >= 0)
    assert result.numbers.shape == (3, 9) and np.all(result.numbers == 14)
    with pytest.raises(InvalidRequestError, match="k = 8"):
        infill(model, env, 1, jax.random.PRNGKey(0), config)
    with pytest.raises(InvalidRequestError, match="r_cut"):
        infill(model, env[:3] * 3.0, 1, jax.random.PRNGKey(0), config)


def test_refinement_does_not_worsen_the_fit(trained, silicon):
    from atomsmith.generators.environments.metrics import assignment_rmsd, reconstruction_rmsd

    model, _ = trained
    envs = silicon[1].vectors[:4].astype(np.float64)
    plain = reconstruction_rmsd(model.reconstruct(envs), envs)
    refined = reconstruction_rmsd(refine_reconstruction(model, envs, config=InfillConfig(restarts=1, rounds=2,
                                                                                         steps=30)), envs)
    assert refined.mean() <= plain.mean() + 1e-3
    assert np.all(assignment_rmsd(model.reconstruct(envs), envs) >= plain - 1e-6)  # no rotation >= best rotation


def test_generator_protocol(trained):
    model, _ = trained
    crystals = model.sample(jax.random.PRNGKey(1), 3)
    assert len(crystals) == 3 and all(isinstance(c, Crystal) and c.n_atoms == 9 for c in crystals)
    with pytest.raises(NotImplementedError):
        model.sample(jax.random.PRNGKey(1), 1, conditions={"x": 1})


def test_multi_element_perov5_environments():
    from atomsmith import datasets

    crystals = datasets.load("perov_5", "train", limit=12)
    data = environment_set(crystals, 6, 4.5)
    elements = data.elements()
    assert len(elements) >= 3
    config = tiny_config(n_neighbors=6, r_cut=4.5, shells=(6,), species=elements)
    n = len(data)
    model, summary = train_eq_vae(data.subset(slice(0, n - 12)), data.subset(slice(n - 12, n)), config,
                                  TrainConfig(learning_rate=3e-3, max_steps=20, warmup_steps=2, eval_every=10,
                                              checkpoint_every=1000), batch_size=16, progress=False)
    assert np.isfinite(summary["val"]["species"]) and summary["val"]["species"] > 0
    mean, _ = model.encode(data.vectors[:2], data.numbers[:2])
    decoded = model.decode_full(mean)
    assert set(np.unique(decoded.numbers)) <= set(elements)
    crystals_out = model.sample(jax.random.PRNGKey(0), 2)
    assert all(set(c.numbers.tolist()) <= set(elements) for c in crystals_out)
    with pytest.raises(ValueError, match="unknown"):
        train_eq_vae(EnvironmentSet(data.vectors[:20], np.full((20, 7), 3)), data.subset(slice(0, 4)), config,
                     TrainConfig(max_steps=1), batch_size=4, progress=False)
