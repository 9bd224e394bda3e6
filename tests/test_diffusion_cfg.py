"""Classifier-free guidance: property-conditioned score network, training loss with property dropout, growing an
unconditional model's parameters, and CFG sampling (tiny models: mechanics, not quality)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.diffusion.config import CONDITIONING_DIM, DiffusionConfig
from atomsmith.generators.diffusion.conditioning import combine_cfg
from atomsmith.generators.diffusion.data import dense_arrays
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.training import grow_params, init_params
from atomsmith.structures.crystal import Crystal


@pytest.fixture(scope="module")
def configs():
    base = DiffusionConfig.tiny()
    return base, base.with_properties(["heat_ref"], [1.0], [0.5])


def _cells(n=4):
    rng = np.random.default_rng(0)
    return [Crystal(np.eye(3) * 3.9, rng.random((5, 3)), [38, 22, 8, 8, 8], properties={"heat_ref": 0.5 + i})
            for i in range(n)]


def test_config_roundtrip_and_checks(configs):
    base, cond = configs
    assert cond.encoder.conditioning_dim == CONDITIONING_DIM + 2 == cond.conditioning_dim
    assert DiffusionConfig.from_json(cond.to_json()) == cond
    with pytest.raises(ValueError):
        DiffusionConfig(**{**base.__dict__, "properties": ("a",), "property_mean": (0.0,), "property_std": (1.0,)})


def test_grown_parameters_keep_the_unconditional_model_close(configs):
    base, cond = configs
    old = init_params(base, jax.random.PRNGKey(0))
    new = grow_params(old, init_params(cond, jax.random.PRNGKey(1)))
    arrays = dense_arrays(_cells(2), base.elements, properties=("heat_ref",))
    args = (jnp.asarray(arrays["frac"]), jnp.asarray(arrays["lattice"]), jnp.asarray(arrays["species"]),
            jnp.asarray(arrays["atom_mask"]), jnp.full((2,), 0.4), jnp.zeros((2,)))
    out_old = jax.jit(ScoreNetwork(base).apply)(old, *args)
    out_new = jax.jit(ScoreNetwork(cond).apply)(new, *args, jnp.ones((2, 1)), jnp.ones((2, 1)))
    for a, b in zip(out_old[:3], out_new[:3]):
        # new input rows are zero: the property has no effect yet; only e3nn's fan-in normalisation changes a little
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0.1, atol=0.05 * float(jnp.abs(a).max()) + 1e-6)
    with pytest.raises(ValueError):
        grow_params(new, old)


def test_loss_uses_properties_and_dropout(configs):
    _, cond = configs
    params = init_params(cond, jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map(lambda x: x + 0.05, params)  # make property rows non-zero
    loss_fn = jax.jit(make_loss_fn(cond)[0])
    batch = {k: jnp.asarray(v) for k, v in dense_arrays(_cells(), cond.elements, properties=cond.properties).items()}
    l1, m1 = loss_fn(params, batch, jax.random.PRNGKey(3))
    shifted = dict(batch, props=batch["props"] + 3.0)
    l2, _ = loss_fn(params, shifted, jax.random.PRNGKey(3))
    assert np.isfinite(float(l1)) and float(l1) != float(l2)  # the property reaches the network
    hidden = dict(batch, props=jnp.full_like(batch["props"], jnp.nan))
    l3, _ = loss_fn(params, hidden, jax.random.PRNGKey(3))
    l4, _ = loss_fn(params, dict(hidden, props=hidden["props"] + 3.0), jax.random.PRNGKey(3))
    assert float(l3) == float(l4)  # unknown (NaN) properties are hidden


def test_cfg_sampling(configs):
    _, cond = configs
    params = jax.tree_util.tree_map(lambda x: x + 0.02, init_params(cond, jax.random.PRNGKey(0)))
    model = DiffusionModel(cond, params)
    key = jax.random.PRNGKey(4)
    comp = [38, 22, 8, 8, 8]
    low = model.sample(key, 4, steps=3, conditions={"composition": comp, "heat_ref": -1.0})
    high = model.sample(key, 4, steps=3, conditions={"composition": comp, "heat_ref": 3.0}, cfg_scale=3.0)
    assert all(np.isfinite(c.frac_coords).all() for c in low + high)
    assert not np.allclose(low[0].frac_coords, high[0].frac_coords)
    again = model.sample(key, 4, steps=3, conditions={"composition": comp, "heat_ref": [-1.0, -1.0, -1.0, np.nan]})
    np.testing.assert_array_equal(again[0].frac_coords, low[0].frac_coords)  # same values, same result
    assert not np.allclose(again[3].frac_coords, low[3].frac_coords)  # NaN = property hidden for that cell
    with pytest.raises(ValueError, match="heat_ref"):
        model.sample(key, 2, steps=2, conditions={"band_gap": 1.0})
    with pytest.raises(ValueError, match="none"):
        DiffusionModel(DiffusionConfig.tiny(), init_params(DiffusionConfig.tiny(), key)).sample(
            key, 2, steps=2, conditions={"heat_ref": 1.0})


def test_combine_cfg_factors():
    c, u = (jnp.ones((2, 3)),), (jnp.zeros((2, 3)),)
    np.testing.assert_allclose(combine_cfg(c, u, 1.0)[0], 1.0)
    np.testing.assert_allclose(combine_cfg(c, u, jnp.array([0.0, 2.0]))[0], [[0, 0, 0], [2, 2, 2]])
