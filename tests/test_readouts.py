"""Readout heads and the Cartesian <-> irreps change of basis: exactness and O(3)/permutation/translation symmetry."""

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs
from atomsmith.nn.cartesian import NAMED_SPECS, CartesianTensorSpec, tensor_spec
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.nn.readouts import Readout, ReadoutConfig, check_encoder_irreps
from atomsmith.predictors.model import Predictor, PredictorConfig, example_batch, with_required_irreps
from atomsmith.predictors.normalization import Normalizer
from tests.helpers.symmetry import assert_close_scaled, random_crystal, random_o3

# every irrep any head needs is in the output, so all heads share one encoder (one compilation of its init)
ENCODER = EncoderConfig.tiny(irreps_hidden="8x0e+4x1o+2x2e", irreps_out="8x0e+4x1o+2x1e+2x2e+2x2o+2x3o",
                             n_layers=2, cutoff=3.5)


# ------------------------------------------------------------------------------------------- Cartesian <-> irreps
@pytest.mark.parametrize("name", sorted(NAMED_SPECS))
def test_cartesian_irreps_round_trip_exact(name):
    spec = tensor_spec(name)
    rng = np.random.default_rng(0)
    coeffs = rng.normal(size=(7, spec.dim))
    with jax.enable_x64(True):
        cart = spec.from_irreps(jnp.asarray(coeffs))
        back = spec.to_irreps(cart).array
        np.testing.assert_allclose(np.asarray(back), coeffs, atol=1e-13)
        # Cartesian tensors with the symmetry survive the other round trip; norms are preserved
        np.testing.assert_allclose(np.asarray(spec.from_irreps(spec.to_irreps(cart))), np.asarray(cart), atol=1e-13)
        np.testing.assert_allclose(np.sum(np.asarray(cart) ** 2, axis=tuple(range(1, spec.rank + 1))),
                                   np.sum(coeffs ** 2, axis=1), rtol=1e-12)
    assert cart.shape == (7, *spec.shape)


def test_named_irreps_and_parity():
    assert str(NAMED_SPECS["rank2"].irreps) == "1x0e+1x1e+1x2e"
    assert str(NAMED_SPECS["rank2_sym"].irreps) == "1x0e+1x2e"
    assert str(NAMED_SPECS["raman"].irreps) == "2x1o+1x2o+1x3o"  # electric field and displacement are polar
    assert str(CartesianTensorSpec("ij", "1e").irreps) == "1x0e+1x1e+1x2e"
    with pytest.raises(ValueError, match="unknown tensor type"):
        tensor_spec("rank5")
    with pytest.raises(ValueError, match="permutation"):
        CartesianTensorSpec("ij=ik")


def test_rank2_against_independent_decomposition():
    """0e = trace/sqrt(3); 1e carries the antisymmetric part; 2e the symmetric traceless part (norms)."""
    rng = np.random.default_rng(1)
    t = rng.normal(size=(3, 3))
    spec = NAMED_SPECS["rank2"]
    with jax.enable_x64(True):
        c = np.asarray(spec.to_irreps(jnp.asarray(t)).array)
    iso = np.trace(t) / 3
    anti = (t - t.T) / 2
    sym_traceless = (t + t.T) / 2 - iso * np.eye(3)
    np.testing.assert_allclose(abs(c[0]), abs(np.trace(t)) / np.sqrt(3), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c[1:4]), np.linalg.norm(anti), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c[4:9]), np.linalg.norm(sym_traceless), rtol=1e-12)


@pytest.mark.parametrize("name", ["rank2", "rank2_sym", "raman"])
def test_change_of_basis_is_equivariant(name):
    spec = tensor_spec(name)
    rng = np.random.default_rng(2)
    coeffs = rng.normal(size=(spec.dim,))
    for reflection in (False, True):
        r = random_o3(rng, reflection=reflection)
        with jax.enable_x64(True):
            cart = np.asarray(spec.from_irreps(jnp.asarray(coeffs)))
            rotated = _rotate_cartesian(cart, r)
            d = np.asarray(spec.irreps.D_from_matrix(jnp.asarray(r)))
            np.testing.assert_allclose(np.asarray(spec.to_irreps(jnp.asarray(rotated)).array), d @ coeffs,
                                       atol=1e-12)


def _rotate_cartesian(t, r):
    """T'_{ij...} = R_ia R_jb ... T_{ab...} for trailing tensor axes (polar indices)."""
    rank = 0
    while rank < t.ndim and t.shape[t.ndim - 1 - rank] == 3:
        rank += 1
    rank = min(rank, 3)
    letters = "abc"[:rank]
    out_letters = "ijk"[:rank]
    ops = ",".join(f"{o}{a}" for o, a in zip(out_letters, letters))
    return np.einsum(f"{ops},...{letters}->...{out_letters}", *([r] * rank), t)


# ----------------------------------------------------------------------------------------------- heads
HEADS = {
    "intensive": ReadoutConfig(level="structure", pooling="mean", width=8),
    "extensive": ReadoutConfig(level="structure", pooling="sum", width=8),
    "atom_scalar": ReadoutConfig(level="atom", width=8),
    "born": ReadoutConfig(level="atom", tensor="rank2", acoustic_sum_rule=True, width=8),
    "dielectric": ReadoutConfig(level="structure", tensor="rank2_sym", width=8),
    "raman": ReadoutConfig(level="atom", tensor="raman", width=8),
}


@functools.lru_cache(maxsize=None)
def _encoder_params():
    batch = example_batch(PredictorConfig(target="t", encoder=ENCODER))
    return jax.jit(Encoder(ENCODER).init)(jax.random.PRNGKey(0), batch)["params"]


def _predictor(head, seed=0):
    config = PredictorConfig(target="t", readout=head, encoder=ENCODER)
    features = e3nn.IrrepsArray(ENCODER.irreps_out, jnp.zeros((1, e3nn.Irreps(ENCODER.irreps_out).dim)))
    readout = Readout(head).init(jax.random.PRNGKey(seed), features, method=Readout.coefficients)["params"]
    pred = Predictor(config=config, params={"encoder": _encoder_params(), "readout": readout},
                     normalizer=Normalizer.identity(ENCODER.n_species, head.irreps_out.dim))
    # a non-trivial normaliser (per-species scale and isotropic shift) must not break any symmetry
    rng = np.random.default_rng(seed)
    dim = head.irreps_out.dim
    shift = np.zeros((config.encoder.n_species, dim), np.float32)
    mask = config.readout.spec.scalar_mask() if config.readout.spec else np.ones(1, bool)
    shift[:, mask] = rng.normal(size=(config.encoder.n_species, int(mask.sum())))
    scale = rng.uniform(0.5, 2.0, size=config.encoder.n_species).astype(np.float32)
    return pred.replace(normalizer=Normalizer(jnp.asarray(shift), jnp.asarray(scale)))


SIZES = (24, 1536, 3)  # one padded shape for every batch in this file: one compilation per head


@jax.jit
def _apply(pred, batch):
    return pred(batch)


def _eval(pred, crystals):
    batch = batch_graphs(crystals, cutoff=pred.config.encoder.cutoff, sizes=SIZES)
    out = np.asarray(_apply(pred, batch), np.float64)
    if pred.config.readout.level == "structure":
        return out[: len(crystals)]
    return out[: sum(c.n_atoms for c in crystals)]


@pytest.mark.parametrize("head", sorted(HEADS))
def test_head_o3_permutation_translation(head):
    pred = _predictor(HEADS[head])
    rng = np.random.default_rng(3)
    crystal = random_crystal(rng, n_atoms=4, size=3.2)
    base = _eval(pred, [crystal])
    assert np.all(np.isfinite(base))
    for reflection in (False, True):
        r = random_o3(rng, reflection=reflection)
        rotated = _eval(pred, [crystal.rotated(r)])
        expected = base if base.ndim == 1 else _rotate_cartesian(base, r)
        assert_close_scaled(rotated, expected, rtol=2e-4, what=f"{head} O(3) reflection={reflection}")
    perm = rng.permutation(crystal.n_atoms)
    permuted = _eval(pred, [crystal.permuted(perm)])
    assert_close_scaled(permuted, base if pred.config.readout.level == "structure" else base[perm], rtol=2e-4,
                        what=f"{head} permutation")
    shifted = crystal.replace(frac_coords=crystal.frac_coords + rng.normal(size=3))
    assert_close_scaled(_eval(pred, [shifted]), base, rtol=2e-4, what=f"{head} translation")


@pytest.mark.parametrize("head", ["intensive", "extensive", "born", "dielectric"])
def test_supercell_and_padding(head):
    pred = _predictor(HEADS[head], seed=1)
    rng = np.random.default_rng(4)
    crystal = random_crystal(rng, n_atoms=3, size=3.0)
    base = _eval(pred, [crystal])
    sup = _eval(pred, [crystal.supercell((2, 1, 1))])
    if head == "extensive":
        assert_close_scaled(sup, 2 * base, rtol=2e-4, what="extensive value doubles in a 2x1x1 supercell")
    elif pred.config.readout.level == "structure":
        assert_close_scaled(sup, base, rtol=2e-4, what="intensive value is the same on a supercell")
    else:
        assert_close_scaled(sup, np.concatenate([base, base]), rtol=2e-4, what="per-atom values tile")
    # batched together with another structure, and padded to a larger shape: same answer
    other = random_crystal(rng, n_atoms=5, size=3.3)
    both = _eval(pred, [crystal, other])
    first = both[:1] if pred.config.readout.level == "structure" else both[:crystal.n_atoms]
    assert_close_scaled(first, base, rtol=2e-4, what="batched with another structure")
    if head == "born":  # a second padded shape costs a compilation: one head suffices
        padded = batch_graphs([crystal], cutoff=pred.config.encoder.cutoff, sizes=(32, 2048, 5))
        out = np.asarray(_apply(pred, padded))
        got = out[:1] if pred.config.readout.level == "structure" else out[:crystal.n_atoms]
        assert_close_scaled(got, base, rtol=2e-4, what="padded batch")


def test_acoustic_sum_rule():
    pred = _predictor(HEADS["born"], seed=2)
    crystals = [random_crystal(np.random.default_rng(k), n_atoms=4, size=3.2) for k in range(2)]
    out = _eval(pred, crystals)
    assert np.abs(out).max() > 1e-3
    np.testing.assert_allclose(out[:4].sum(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[4:].sum(axis=0), 0.0, atol=1e-5)


def test_species_override_matches_one_hot():
    pred = _predictor(HEADS["intensive"], seed=3)
    crystal = random_crystal(np.random.default_rng(5), n_atoms=4, size=3.2)
    batch = batch_graphs([crystal], cutoff=pred.config.encoder.cutoff, sizes=SIZES)
    one_hot = jax.nn.one_hot(batch.numbers, pred.config.encoder.n_species)
    apply = jax.jit(lambda p, b, s: p(b, s))
    np.testing.assert_allclose(np.asarray(apply(pred, batch, one_hot)), np.asarray(_apply(pred, batch)), rtol=1e-5)
    # and species weights matter (the override is actually used)
    mixed = 0.5 * one_hot + 0.5 * jax.nn.one_hot(jnp.full_like(batch.numbers, 14), pred.config.encoder.n_species)
    assert abs(float(apply(pred, batch, mixed)[0] - apply(pred, batch, one_hot)[0])) > 1e-6


def test_missing_encoder_irreps_is_a_clear_error():
    head = ReadoutConfig(level="atom", tensor="raman")
    with pytest.raises(ValueError, match="missing .*3o"):
        check_encoder_irreps("8x0e+4x1o+2x2o", head)
    with pytest.raises(ValueError, match="irreps_out"):
        PredictorConfig(target="raman_tensors", readout=head, encoder=EncoderConfig.tiny())
    extended = with_required_irreps(EncoderConfig.tiny(), head)
    check_encoder_irreps(extended.irreps_out, head)
    assert {str(ir) for _, ir in e3nn.Irreps(extended.irreps_out)} >= {"1o", "2o", "3o"}
    with pytest.raises(ValueError, match="acoustic sum rule"):
        ReadoutConfig(level="structure", acoustic_sum_rule=True)
