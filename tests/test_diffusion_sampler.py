"""Samplers on a tiny (untrained) model: shapes, determinism from a seed, validity of outputs, both samplers,
structure prediction, and clear errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.generators import Generator
from atomsmith.generators.diffusion import DiffusionConfig, DiffusionModel
from atomsmith.generators.diffusion.samplers import time_grid
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.generators.diffusion.training import init_params
from atomsmith.structures.crystal import Crystal


@pytest.fixture(scope="module")
def model():
    config = DiffusionConfig.tiny()
    return DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))


def test_time_grid_covers_one_to_zero():
    t, s, corr, jump, active = time_grid(7, 4, "pc")
    assert t.shape == (4, 4)  # 14 sub-steps padded to 16
    t, s, corr, jump, active = (np.asarray(x).reshape(-1) for x in (t, s, corr, jump, active))
    assert not jump.any()
    assert active.sum() == 14 and corr[:14].sum() == 7
    assert t[0] == 1.0 and s[13] == 0.0
    np.testing.assert_allclose(t[1:14:2], t[0:14:2])  # corrector at t, then predictor from the same t
    np.testing.assert_allclose(s[1:12:2], t[2:14:2])  # ... to s, where the next step starts
    t, s, corr, jump, active = (np.asarray(x).reshape(-1) for x in time_grid(5, 5, "ode"))
    assert not corr.any() and active.all()
    np.testing.assert_allclose(s[:-1], t[1:])
    with pytest.raises(ValueError):
        time_grid(0, 4)


def test_model_implements_the_generator_protocol(model):
    assert isinstance(model, Generator)


def test_pc_samples_have_the_right_shapes_and_are_finite(model):
    stats = {}
    crystals = model.sample(jax.random.PRNGKey(1), 4, conditions={"n_atoms": 5}, steps=3, stats=stats)
    assert len(crystals) == 4
    for c in crystals:
        assert isinstance(c, Crystal) and c.n_atoms == 5
        assert set(c.numbers.tolist()) <= set(model.config.elements)
        assert np.all((c.frac_coords >= 0) & (c.frac_coords < 1))
        assert np.isfinite(c.lattice).all() and c.volume > 1.0
    assert stats["structures_per_s"] > 0 and stats["overflow"] >= 0


def test_same_seed_same_structures_different_seed_different(model):
    a = model.sample(jax.random.PRNGKey(7), 4, conditions={"n_atoms": 5}, steps=3)
    b = model.sample(jax.random.PRNGKey(7), 4, conditions={"n_atoms": 5}, steps=3)
    c = model.sample(jax.random.PRNGKey(8), 4, conditions={"n_atoms": 5}, steps=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)
        np.testing.assert_array_equal(x.lattice, y.lattice)
        np.testing.assert_array_equal(x.numbers, y.numbers)
    assert not np.allclose(a[0].frac_coords, c[0].frac_coords)


def test_atom_count_drawn_from_training_distribution(model):
    crystals = model.sample(jax.random.PRNGKey(3), 6, steps=3)  # same compiled shapes as above for 5 atoms
    assert {c.n_atoms for c in crystals} <= {3, 5}


def test_ode_sampler_and_structure_prediction_keep_the_composition(model):
    comp = [38, 22, 8, 8, 8]
    a = model.sample(jax.random.PRNGKey(2), 4, conditions={"composition": comp}, steps=3, method="ode")
    b = model.sample(jax.random.PRNGKey(2), 4, conditions={"composition": comp}, steps=3, method="ode")
    for x, y in zip(a, b):
        assert x.numbers.tolist() == comp
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)


def test_clear_errors(model):
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="vocabulary"):
        model.sample(key, 2, conditions={"composition": [92, 8]}, steps=1)
    with pytest.raises(ValueError, match="unknown conditions"):
        model.sample(key, 2, conditions={"band_gap": 1.0}, steps=1)
    with pytest.raises(ValueError, match="sampler"):
        model.sample(key, 2, steps=1, method="euler")
    with pytest.raises(InvalidRequestError, match="objectives"):
        model.sample(key, 2, steps=1, guidance=[object()])


def test_samplers_stay_finite_with_extreme_predictions(model):
    """The DDIM/ancestral steps clip x0 and (DDIM) recompute epsilon from it, so a wild lattice head cannot
    produce infinite cells (this produced NaN lattices before the fix)."""
    params = jax.tree_util.tree_map(lambda x: x, model.params)
    head = params["params"]["lattice_head"]
    params["params"]["lattice_head"] = {k: v * 1e4 + (1e3 if k == "bias" else 0.0) for k, v in head.items()}
    wild = DiffusionModel(model.config, params)
    for method in ("ode", "pc"):
        for c in wild.sample(jax.random.PRNGKey(4), 4, conditions={"n_atoms": 5}, steps=3, method=method):
            assert np.isfinite(c.lattice).all() and c.volume > 0
