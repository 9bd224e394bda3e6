"""Guidance objectives: float64 finite-difference gradients, O(3) equivariance of the guidance field, combination."""

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs
from atomsmith.guidance import (
    MinDistance,
    Objective,
    PropertyRange,
    PropertyTarget,
    TensorMatch,
    WeightedSum,
    maximize,
    minimize,
    value_and_grad,
)
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.nn.readouts import Readout, ReadoutConfig
from atomsmith.predictors.model import Predictor, PredictorConfig, example_batch
from atomsmith.predictors.normalization import Normalizer
from tests.helpers.finite_differences import check_objective_gradients
from tests.helpers.symmetry import random_crystal, random_o3

# one encoder (output irreps for both heads) shared by the two predictors: one compilation of its init
ENCODER = EncoderConfig.tiny(irreps_hidden="8x0e+4x1o+2x2e", irreps_out="8x0e+4x1o+2x1e+2x2e", n_layers=2,
                             cutoff=3.5)
SIZES = (16, 1024, 3)
_VALUE_AND_GRAD = jax.jit(value_and_grad)  # one wrapper: compilations are shared between tests


@functools.lru_cache(maxsize=None)
def _encoder_params():
    batch = example_batch(PredictorConfig(target="t", encoder=ENCODER))
    return jax.jit(Encoder(ENCODER).init)(jax.random.PRNGKey(0), batch)["params"]


def _predictor(readout, seed=0):
    config = PredictorConfig(target="t", readout=readout, encoder=ENCODER)
    features = e3nn.IrrepsArray(ENCODER.irreps_out, jnp.zeros((1, e3nn.Irreps(ENCODER.irreps_out).dim)))
    head = Readout(readout).init(jax.random.PRNGKey(seed), features, method=Readout.coefficients)["params"]
    pred = Predictor(config=config, params={"encoder": _encoder_params(), "readout": head},
                     normalizer=Normalizer.identity(ENCODER.n_species, readout.irreps_out.dim))
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 2.0, size=config.encoder.n_species)
    shift = np.zeros((config.encoder.n_species, readout.irreps_out.dim))
    shift[:, 0] = rng.normal(size=config.encoder.n_species)  # the first coefficient is 0e for these heads
    return pred.replace(normalizer=Normalizer(jnp.asarray(shift, jnp.float32), jnp.asarray(scale, jnp.float32)))


def _to64(tree):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype,
                                                                                           jnp.floating) else x, tree)


@pytest.fixture(scope="module")
def scalar_predictor():
    return _predictor(ReadoutConfig(level="structure", pooling="mean", width=8))


@pytest.fixture(scope="module")
def tensor_predictor():
    # no acoustic sum rule here: with it, the structure mean of any per-atom invariant of Z* would vanish
    return _predictor(ReadoutConfig(level="atom", tensor="rank2", width=8), seed=1)


def _crystals():
    rng = np.random.default_rng(0)
    return [random_crystal(rng, n_atoms=3, size=3.0, min_distance=1.2),
            random_crystal(rng, n_atoms=4, size=3.2, min_distance=1.2)]


def _objectives(scalar, tensor, n_nodes):
    """Three objectives covering every term; weights differ so that one wrong term cannot cancel another."""
    rng = np.random.default_rng(5)
    born_target = rng.normal(size=(n_nodes, 3, 3))
    return {
        "scalar_terms": (1.3 * PropertyTarget(scalar, target=0.3, scale=0.5)
                         + 0.7 * PropertyRange(scalar, low=5.0, high=6.0)  # predictions are below: hinge active
                         + 0.2 * minimize(scalar)),
        "tensor_terms": (0.4 * maximize(tensor, invariant="norm")
                         + 1.1 * TensorMatch(tensor, target=jnp.asarray(born_target), scale=2.0)
                         + 0.9 * PropertyTarget(tensor, target=1.0, invariant="isotropic")),
        "min_distance": MinDistance(min_distance=2.6, covalent_fraction=1.2),
    }


@pytest.mark.parametrize("name", ["scalar_terms", "tensor_terms", "min_distance"])
def test_gradients_match_float64_finite_differences(name, scalar_predictor, tensor_predictor):
    crystals = _crystals()
    with jax.enable_x64(True):
        batch = batch_graphs(crystals, cutoff=ENCODER.cutoff, sizes=SIZES, dtype=np.float64)
        objective = _to64(_objectives(scalar_predictor, tensor_predictor, batch.n_nodes)[name])
        species = jax.nn.one_hot(batch.numbers, ENCODER.n_species, dtype=jnp.float64)
        species = species * 0.9 + 0.1 * jax.nn.one_hot(jnp.full_like(batch.numbers, 14), ENCODER.n_species)
        result = _VALUE_AND_GRAD(objective, batch, species)
        assert result.species_weights is not None and result.species_weights.shape == species.shape
        values = np.asarray(result.values)
        assert values.shape == (SIZES[2],) and values[-1] == 0.0  # padding structure
        terms = objective.terms if isinstance(objective, WeightedSum) else (objective,)
        term_values = np.asarray(jax.jit(lambda ts, b, s: jnp.stack([t(b, s) for t in ts]))(terms, batch, species))
        assert np.all(np.abs(term_values[:, :2]) > 1e-6), f"{name}: a term is ~0, the test would be vacuous"

        rng, d_lat, f = check_objective_gradients(objective, batch, species, result, name)
        node_mask = np.asarray(batch.node_mask)[:, None]
        eps = 1e-6

        # Cartesian view: move positions at fixed lattice, or the lattice at fixed Cartesian positions
        positions = batch.positions()
        d_pos = jnp.asarray(rng.normal(size=positions.shape) * node_mask)

        def frac_of(pos, lattices):
            return jnp.einsum("ni,nij->nj", pos, jnp.linalg.inv(lattices)[batch.node_graph])

        for what, grad, direction, args in [
            ("positions", result.positions, d_pos,
             lambda e: (frac_of(positions + e * d_pos, batch.lattices), batch.lattices, species)),
            ("lattice at fixed positions", result.lattices_at_fixed_positions, d_lat,
             lambda e: (frac_of(positions, batch.lattices + e * d_lat), batch.lattices + e * d_lat, species)),
        ]:
            fd = float((f(*args(eps)) - f(*args(-eps))) / (2 * eps))
            analytic = float(jnp.sum(grad * direction))
            assert abs(analytic) > 1e-6, (name, what, "gradient is ~0 along the probe: vacuous")
            assert abs(analytic - fd) <= 1e-6 * max(1.0, abs(fd)), (name, what, analytic, fd)


@pytest.mark.parametrize("reflection", [False, True])
def test_guidance_field_is_equivariant(reflection, scalar_predictor, tensor_predictor):
    """Values invariant; Cartesian position gradients rotate with the structure (tensor targets rotated too)."""
    crystal = _crystals()[1]
    rng = np.random.default_rng(11)
    r = random_o3(rng, reflection=reflection)
    target = rng.normal(size=(crystal.n_atoms, 3, 3))
    rotated_target = np.einsum("ia,jb,nab->nij", r, r, target)

    def evaluate(c, tgt):
        batch = batch_graphs([c], cutoff=ENCODER.cutoff, sizes=SIZES)
        padded = np.zeros((SIZES[0], 3, 3), np.float32)
        padded[:c.n_atoms] = tgt
        objective = (PropertyTarget(scalar_predictor, target=0.3) + 0.3 * MinDistance(min_distance=2.6)
                     + TensorMatch(tensor_predictor, target=jnp.asarray(padded)))
        res = _VALUE_AND_GRAD(objective, batch)
        return float(res.values[0]), np.asarray(res.positions[:c.n_atoms], np.float64)

    v0, g0 = evaluate(crystal, target)
    v1, g1 = evaluate(crystal.rotated(r), rotated_target)
    assert abs(v1 - v0) <= 1e-4 * abs(v0)
    assert np.abs(g0).max() > 1e-4
    np.testing.assert_allclose(g1, g0 @ r.T, atol=2e-4 * np.abs(g0).max())


def test_weighted_sum_and_protocol(scalar_predictor):
    batch = batch_graphs(_crystals(), cutoff=ENCODER.cutoff, sizes=SIZES)
    a = PropertyTarget(scalar_predictor, target=0.3)
    b = MinDistance(min_distance=2.6)
    combo = 2.0 * a + b + 0.5 * b
    assert isinstance(combo, WeightedSum) and len(combo.terms) == 3
    assert isinstance(a, Objective) and isinstance(combo, Objective)
    values = jax.jit(lambda c, x, y, bt: jnp.stack([c(bt), 2 * x(bt) + 1.5 * y(bt)]))(combo, a, b, batch)
    np.testing.assert_allclose(np.asarray(values[0]), np.asarray(values[1]), rtol=1e-5)
    assert isinstance(sum([a, b]), WeightedSum)
    # a target change is a new leaf, not a recompilation: same tree structure
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(a.replace(target=1.0))


def test_min_distance_against_numpy():
    crystal = _crystals()[1]
    d_min = 2.6
    batch = batch_graphs([crystal], cutoff=ENCODER.cutoff, sizes=SIZES)
    value = float(MinDistance(min_distance=d_min)(batch)[0])
    from atomsmith.graphs.neighbors import neighbor_list

    graph = neighbor_list(crystal, d_min)
    d = graph.distances(crystal)
    expected = 0.5 * np.sum((d_min - d) ** 2)
    assert expected > 0
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert float(MinDistance(min_distance=0.5)(batch)[0]) == 0.0


def test_range_is_zero_inside(scalar_predictor, tensor_predictor):
    batch = batch_graphs(_crystals(), cutoff=ENCODER.cutoff, sizes=SIZES)
    apply = jax.jit(lambda objective, b: objective(b))
    p = np.asarray(apply(scalar_predictor, batch))[:2]
    inside = PropertyRange(scalar_predictor, low=float(p.min()) - 1.0, high=float(p.max()) + 1.0)
    outside = PropertyRange(scalar_predictor, low=float(p.max()) + 1.0)
    values = np.asarray(apply(inside, batch)), np.asarray(apply(outside, batch))
    np.testing.assert_array_equal(values[0], 0.0)
    np.testing.assert_allclose(values[1][:2], (float(p.max()) + 1.0 - p) ** 2, rtol=1e-5)
    with pytest.raises(ValueError, match="invariant"):
        PropertyTarget(tensor_predictor, target=1.0)(batch)
    with pytest.raises(ValueError, match="unknown invariant"):
        PropertyTarget(tensor_predictor, target=1.0, invariant="det")(batch)
