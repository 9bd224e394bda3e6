"""Diffusion training on carbon_24_unique-like data: one element, 6-24 atoms per cell, skewed cells of widely
spread size. make_config must give a bounded image range (it asked for ~140 images before the cap), the loss must be
finite with padded atom slots, and sampling must draw atom counts from the training distribution."""

from __future__ import annotations

import collections

import jax
import numpy as np
import pytest

from atomsmith.generators.diffusion import DiffusionModel
from atomsmith.generators.diffusion.data import batch_iterator, dense_arrays
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.training import init_params, make_config


@pytest.fixture(scope="module")
def carbon():
    from atomsmith.datasets import load

    cells = list(load("carbon_24_unique", "train", limit=60))
    assert {int(z) for c in cells for z in c.numbers} == {6}
    return cells


def test_config_and_loss_on_variable_size_single_element_cells(carbon):
    sizes = {c.n_atoms for c in carbon}
    assert len(sizes) >= 4 and max(sizes) > min(sizes)  # really variable
    config = make_config(carbon, irreps_hidden="8x0e+4x1o", n_layers=1, cutoff=3.0, radial_hidden=(8,),
                         head_hidden=8)
    assert config.elements == (6,) and config.n_species == 1
    assert dict(config.n_atoms_counts) == dict(collections.Counter(c.n_atoms for c in carbon))
    assert max(config.n_images) <= 4  # data need <= 2-3 images at 3 Å; the extreme cell is capped
    assert config.max_edges_per_cell >= 3.0 * max(sizes)  # capacity measured on noised cells
    arrays = dense_arrays(carbon, config.elements)
    assert arrays["frac"].shape[1] == max(sizes) and arrays["atom_mask"].sum() == sum(c.n_atoms for c in carbon)
    loss_fn, _ = make_loss_fn(config)
    params = init_params(config, jax.random.PRNGKey(0), n_atoms=max(sizes))
    batch = next(iter(batch_iterator(arrays, 8, 0)(0)))
    loss, metrics = jax.jit(loss_fn)(params, batch, jax.random.PRNGKey(1))
    assert np.isfinite(float(loss)) and float(metrics["overflow"]) == 0.0
    grads = jax.grad(lambda p: loss_fn(p, batch, jax.random.PRNGKey(1))[0])(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))

    model = DiffusionModel(config, params)
    crystals = model.sample(jax.random.PRNGKey(2), 3, steps=2, batch_size=4)
    assert len(crystals) == 3
    for c in crystals:
        assert c.n_atoms in sizes and set(c.numbers.tolist()) == {6}
        assert np.isfinite(c.lattice).all() and c.volume > 0
