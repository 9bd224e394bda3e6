"""Tensor anisotropy objective: NumPy reference, O(3) invariance, float64 finite-difference gradients, errors."""

import functools
from types import SimpleNamespace

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs
from atomsmith.guidance import AnisotropyTarget, deviatoric_norm, tensor_anisotropy, value_and_grad
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.nn.readouts import Readout, ReadoutConfig
from atomsmith.predictors.model import Predictor, PredictorConfig, example_batch
from atomsmith.predictors.normalization import Normalizer
from tests.helpers.finite_differences import check_objective_gradients
from tests.helpers.symmetry import random_crystal, random_o3

ENCODER = EncoderConfig.tiny(irreps_hidden="8x0e+4x1o+2x2e", irreps_out="8x0e+4x1o+2x1e+2x2e", n_layers=2,
                             cutoff=3.5)
SIZES = (16, 1024, 3)
TI = 22


@functools.lru_cache(maxsize=None)
def _predictor(seed: int = 1) -> Predictor:
    """A random per-atom rank-2 (Born-charge-like) predictor on the tiny encoder (no sum rule)."""
    readout = ReadoutConfig(level="atom", tensor="rank2", width=8)
    config = PredictorConfig(target="t", readout=readout, encoder=ENCODER)
    batch = example_batch(config)
    encoder = jax.jit(Encoder(ENCODER).init)(jax.random.PRNGKey(0), batch)["params"]
    features = e3nn.IrrepsArray(ENCODER.irreps_out, jnp.zeros((1, e3nn.Irreps(ENCODER.irreps_out).dim)))
    head = Readout(readout).init(jax.random.PRNGKey(seed), features, method=Readout.coefficients)["params"]
    return Predictor(config=config, params={"encoder": encoder, "readout": head},
                     normalizer=Normalizer.identity(ENCODER.n_species, readout.irreps_out.dim))


def _crystals():
    rng = np.random.default_rng(0)
    return [random_crystal(rng, n_atoms=4, numbers=[56, 22, 8, 22], size=3.2, min_distance=1.2),
            random_crystal(rng, n_atoms=3, numbers=[56, 8, 8], size=3.0, min_distance=1.2)]  # no Ti


def _numpy_anisotropy(tensors: np.ndarray) -> np.ndarray:
    dev = tensors - np.trace(tensors, axis1=-2, axis2=-1)[..., None, None] / 3.0 * np.eye(3)
    return np.sqrt(np.sum(dev ** 2, axis=(-2, -1)))


def test_deviatoric_norm_against_numpy():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 3, 3))
    np.testing.assert_allclose(np.asarray(deviatoric_norm(jnp.asarray(z))), _numpy_anisotropy(z), rtol=1e-5)
    iso = 2.7 * np.eye(3)[None].repeat(2, axis=0)
    assert float(jnp.max(deviatoric_norm(jnp.asarray(iso)))) < 1e-5
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 3\]"):
        deviatoric_norm(jnp.zeros((4, 3, 27)))


@jax.jit
def _everything(predictor, batch, soft):
    """All values of the NumPy comparison in one compilation."""
    return {
        "tensors": predictor(batch), "tensors_soft": predictor(batch, soft),
        "all": tensor_anisotropy(predictor, batch), "ti": tensor_anisotropy(predictor, batch, species=TI),
        "ti_soft": tensor_anisotropy(predictor, batch, soft, species=TI),
        "objective": AnisotropyTarget(predictor, target=0.3, scale=0.5, species=TI)(batch),
    }


def test_value_against_numpy():
    predictor = _predictor()
    crystals = _crystals()
    batch = batch_graphs(crystals, cutoff=ENCODER.cutoff, sizes=SIZES)
    rng = np.random.default_rng(4)
    soft = np.asarray(jax.nn.one_hot(batch.numbers, ENCODER.n_species)) * 0.8
    soft[:, TI] += rng.uniform(0.0, 0.2, size=len(soft)) * np.asarray(batch.node_mask)
    out = {k: np.asarray(v, np.float64) for k, v in _everything(predictor, batch, jnp.asarray(soft)).items()}
    numbers = np.asarray(batch.numbers)
    graph = np.asarray(batch.node_graph)
    a = _numpy_anisotropy(out["tensors"])
    for g in range(len(crystals)):
        np.testing.assert_allclose(out["all"][g], a[graph == g].mean(), rtol=1e-4)
        assert out["all"][g] > 1e-3  # not vacuous
    ti = out["ti"]
    np.testing.assert_allclose(ti[0], a[(graph == 0) & (numbers == TI)].mean(), rtol=1e-4)
    assert ti[1] == 0.0 and ti[2] == 0.0 and out["all"][2] == 0.0  # no Ti; padding structure
    # soft species weights: the Ti weight of each atom weights its anisotropy (and the predictor sees the weights)
    a_soft = _numpy_anisotropy(out["tensors_soft"])
    w = soft[:, TI] * np.asarray(batch.node_mask)
    for g in range(len(crystals)):
        sel = graph == g
        np.testing.assert_allclose(out["ti_soft"][g], np.sum(w[sel] * a_soft[sel]) / np.sum(w[sel]), rtol=1e-4)
    np.testing.assert_allclose(out["objective"][0], ((ti[0] - 0.3) / 0.5) ** 2, rtol=1e-4)
    assert out["objective"][2] == 0.0


@pytest.mark.parametrize("reflection", [False, True])
def test_invariant_under_o3(reflection):
    predictor = _predictor()
    crystal = _crystals()[0]
    r = random_o3(np.random.default_rng(11), reflection=reflection)
    apply = jax.jit(lambda p, b: jnp.stack([tensor_anisotropy(p, b), tensor_anisotropy(p, b, species=TI)]))
    v0 = np.asarray(apply(predictor, batch_graphs([crystal], cutoff=ENCODER.cutoff, sizes=SIZES)))[:, 0]
    v1 = np.asarray(apply(predictor, batch_graphs([crystal.rotated(r)], cutoff=ENCODER.cutoff, sizes=SIZES)))[:, 0]
    assert np.all(v0 > 1e-3)
    np.testing.assert_allclose(v1, v0, rtol=1e-4)


def test_gradients_match_float64_finite_differences():
    predictor = _predictor()
    crystals = _crystals()
    with jax.enable_x64(True):
        batch = batch_graphs(crystals, cutoff=ENCODER.cutoff, sizes=SIZES, dtype=np.float64)
        pred64 = jax.tree_util.tree_map(
            lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x,
            predictor)
        objective = AnisotropyTarget(pred64, target=1.0, scale=0.5, species=TI)
        species = jax.nn.one_hot(batch.numbers, ENCODER.n_species, dtype=jnp.float64)
        species = species * 0.9 + 0.1 * jax.nn.one_hot(jnp.full_like(batch.numbers, TI), ENCODER.n_species)
        result = jax.jit(value_and_grad)(objective, batch, species)

        check_objective_gradients(objective, batch, species, result, "anisotropy")


def _config_only(level: str, tensor: str | None) -> SimpleNamespace:
    """The checks run before any computation: a predictor's config is all they read."""
    readout = ReadoutConfig(level=level, tensor=tensor, pooling="mean")
    return SimpleNamespace(config=PredictorConfig.for_target(tensor or "energy", encoder=ENCODER, readout=readout))


def test_clear_errors():
    batch = batch_graphs(_crystals(), cutoff=ENCODER.cutoff, sizes=SIZES)
    with pytest.raises(ValueError, match="rank-2 tensor predictor.*scalar"):
        AnisotropyTarget(_config_only("structure", None), target=1.0)(batch)
    with pytest.raises(ValueError, match="rank-2 tensor predictor.*rank-3"):
        tensor_anisotropy(_config_only("atom", "raman"), batch)
    with pytest.raises(ValueError, match="per-atom"):
        tensor_anisotropy(_config_only("structure", "rank2"), batch, species=TI)
