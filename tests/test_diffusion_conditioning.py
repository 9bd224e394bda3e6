"""Guidance and infilling inside the diffusion sampler (tiny untrained model: mechanics, not quality)."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.diffusion.conditioning import species_weights
from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.model import DiffusionModel, objective_cutoff
from atomsmith.generators.diffusion.samplers import time_grid
from atomsmith.generators.diffusion.training import init_params
from atomsmith.generators.protocol import FixedAtoms, InvalidRequestError
from atomsmith.guidance import MinDistance, PropertyTarget
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.predictors.model import PredictorConfig, init_predictor
from atomsmith.structures.crystal import Crystal

STEPS = 8


@pytest.fixture(scope="module")
def model():
    config = DiffusionConfig.tiny()
    return DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))


@flax.struct.dataclass
class VolumeTarget:
    """``(V - target)^2`` per cell (Å^6): a transparent objective whose optimum the lattice part can reach."""

    target: float

    def __call__(self, batch, species_weights=None):
        return (jnp.abs(jnp.linalg.det(batch.lattices)) - self.target) ** 2


def test_volume_guidance_moves_samples_toward_the_target(model):
    key = jax.random.PRNGKey(3)
    plain = model.sample(key, 8, steps=STEPS)
    target = 40.0
    guided = model.sample(key, 8, steps=STEPS, guidance=VolumeTarget(target), guidance_scale=0.05)
    err_plain = np.mean([abs(c.volume - target) for c in plain])
    err_guided = np.mean([abs(c.volume - target) for c in guided])
    assert err_guided < 0.5 * err_plain, (err_plain, err_guided)
    assert all(np.isfinite(c.frac_coords).all() and np.isfinite(c.lattice).all() for c in guided)
    assert all("guidance_objective" in c.properties for c in guided)
    # a larger scale moves further; scale 0 is the unguided sampler
    zero = model.sample(key, 8, steps=STEPS, guidance=VolumeTarget(target), guidance_scale=0.0)
    np.testing.assert_allclose([c.volume for c in zero], [c.volume for c in plain], rtol=1e-5)


def test_predictor_guidance_outputs_are_finite_and_reproducible(model):
    encoder = EncoderConfig.tiny(cutoff=4.0)
    predictor = init_predictor(PredictorConfig.for_target("heat_ref", encoder=encoder), jax.random.PRNGKey(1))
    objective = [PropertyTarget(predictor, target=0.5, scale=0.1), MinDistance(1.0)]
    assert objective_cutoff(objective[0], 9.0) == 4.0
    a = model.sample(jax.random.PRNGKey(5), 5, steps=4, guidance=objective, guidance_scale=0.1)
    b = model.sample(jax.random.PRNGKey(5), 5, steps=4, guidance=objective, guidance_scale=0.1)
    assert len(a) == 5
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)
        np.testing.assert_array_equal(x.numbers, y.numbers)
        assert np.isfinite(x.frac_coords).all() and np.isfinite(x.lattice).all() and x.volume > 0.1
        assert np.isfinite(x.properties["guidance_objective"])
    per_structure = model.sample(jax.random.PRNGKey(5), 5, steps=4, guidance=objective,
                                 guidance_scale=np.full(5, 0.1))
    np.testing.assert_allclose(per_structure[0].frac_coords, a[0].frac_coords, atol=1e-6)


def test_species_weights_scatter_to_atomic_numbers():
    sp = jnp.array([[[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]]])
    w = species_weights(sp, jnp.array([[True, False]]), jnp.array([8, 22, 38]), 0.1)
    assert w.shape == (2, 119)
    assert float(w[0, 8]) == pytest.approx(1.0, abs=1e-6) and float(w[1].sum()) == 0.0


def test_infilling_holds_atoms_and_lattice(model):
    part = Crystal(np.eye(3) * 3.9, np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), [38, 22])
    out = model.sample(jax.random.PRNGKey(2), 4, steps=STEPS, fixed=FixedAtoms(part, 3))
    for c in out:
        assert c.n_atoms == 5
        np.testing.assert_allclose(c.frac_coords[:2], part.frac_coords, atol=1e-6)
        np.testing.assert_array_equal(c.numbers[:2], part.numbers)
        np.testing.assert_allclose(c.lattice_parameters, part.lattice_parameters, atol=1e-4)
        np.testing.assert_array_equal(c.site_properties["fixed"], [1, 1, 0, 0, 0])
        assert set(c.numbers[2:]) <= set(model.config.elements)
    given = model.sample(jax.random.PRNGKey(2), 3, steps=STEPS, resample=1,
                         fixed=FixedAtoms(part, 3, free_species=(8, 8, 8)))
    assert all(list(c.numbers) == [38, 22, 8, 8, 8] for c in given)
    free_cell = model.sample(jax.random.PRNGKey(2), 3, steps=STEPS, fixed=FixedAtoms(part, 1, hold_lattice=False))
    assert all(c.n_atoms == 3 for c in free_cell)
    np.testing.assert_allclose(free_cell[0].frac_coords[:2], part.frac_coords, atol=1e-6)


def test_infilling_and_guidance_errors(model):
    part = Crystal(np.eye(3) * 3.9, np.zeros((1, 3)), [38])
    with pytest.raises(InvalidRequestError):
        FixedAtoms(part, 0)
    with pytest.raises(InvalidRequestError):
        FixedAtoms(part, 2, free_species=(8,))
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(0), 2, steps=2, fixed=FixedAtoms(part, 1), conditions={"n_atoms": 3})
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(0), 2, steps=2, fixed=[FixedAtoms(part, 1)])
    with pytest.raises(ValueError, match="vocabulary"):
        model.sample(jax.random.PRNGKey(0), 1, steps=2, fixed=FixedAtoms(Crystal(np.eye(3) * 4, np.zeros((1, 3)),
                                                                                   [14]), 1))
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(0), 1, steps=2, guidance=["not an objective"])
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(0), 2, steps=2, guidance=VolumeTarget(1.0), guidance_scale=[1.0, 2.0, 3.0])


def test_resample_grid_jumps_back_after_each_repeated_predictor():
    grid = time_grid(3, 6, "pc", resample=2)
    t, s, corr, jump, active = (np.asarray(x).reshape(-1) for x in grid)
    assert active.sum() == 3 * 2 * 3
    # per step: (corr, pred+jump) x 2, then (corr, pred)
    np.testing.assert_array_equal(corr[:6], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(jump[:6], [0, 1, 0, 1, 0, 0])
    assert jump.sum() == 6 and t[0] == 1.0 and s[17] == 0.0
    t, s, corr, jump, active = (np.asarray(x).reshape(-1) for x in time_grid(2, 2, "ode", resample=1))
    np.testing.assert_array_equal(jump, [1, 0, 1, 0])


def test_lattice_condition_holds_the_cell_in_the_callers_frame(model):
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    lattice = (np.diag([3.8, 4.0, 4.2]) @ rotation.T)
    out = model.sample(jax.random.PRNGKey(1), 3, steps=STEPS, conditions={"lattice": lattice, "composition": [8, 22, 38]})
    for c in out:
        np.testing.assert_allclose(c.lattice, lattice, atol=1e-6)
        assert list(c.numbers) == [8, 22, 38]
    per_cell = np.stack([lattice, lattice * 1.05])
    two = model.sample(jax.random.PRNGKey(1), 2, steps=STEPS, conditions={"lattice": per_cell, "n_atoms": 4})
    np.testing.assert_allclose(two[1].lattice, per_cell[1], atol=1e-6)
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(1), 2, steps=STEPS, conditions={"lattice": np.zeros((3, 3))})
    with pytest.raises(InvalidRequestError):
        model.sample(jax.random.PRNGKey(1), 3, steps=STEPS, conditions={"lattice": per_cell})


def test_guidance_sees_the_held_cell_and_capacity_grows_with_atoms(model):
    lattice = np.eye(3) * 3.7
    out = model.sample(jax.random.PRNGKey(3), 8, steps=STEPS, guidance=VolumeTarget(40.0), guidance_scale=0.05,
                       conditions={"lattice": lattice, "n_atoms": 5})
    held_value = (3.7 ** 3 - 40.0) ** 2
    for c in out:  # the objective is evaluated on the held cell, not on the network's estimate of it
        assert c.properties["guidance_objective"] == pytest.approx(held_value, rel=1e-4)
    largest = max(a for a, _ in model.config.n_atoms_counts)
    assert model._capacity(largest) == model.config.max_edges_per_cell
    assert model._capacity(4 * largest) >= 4 * model.config.max_edges_per_cell
