"""Tests of atomsmith.nn.convolution: the fast layer against an independent plain-e3nn layer (and the shared
yardstick when ../shared is present), O(3) equivariance with reflections, edge masking, finite gradients,
second derivatives, vmap, and jit-vs-eager at a realistic size. Checks run for both implementations ("native"
kernel when a C++ compiler is available, and "jax"). Each jitted function is compiled once: compilation, not
arithmetic, is what these tests spend their time on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.nn import _native_build, _tp_native
from atomsmith.nn._radial_mlp import make_mlp_spec
from atomsmith.nn._tp_plan import make_plan
from atomsmith.nn.convolution import Convolution, radial_basis, safe_norm
from tests.helpers.symmetry import assert_close_scaled, random_o3

IRREPS = "8x0e+2x1o+2x1e+1x2e+1x2o"  # both parities; 8 channels (vectorised kernel path) and 1-2 (scalar path)
N_NODES, N_EDGES = 12, 80
SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "reference_conv.py"


def _native_available() -> bool:
    plan = make_plan(IRREPS, IRREPS, 2)
    return _tp_native.kernel_name(plan, make_mlp_spec(8, (32,), plan.n_weights)) is not None


IMPLEMENTATIONS = [pytest.param("jax", id="jax"),
                   pytest.param("native", id="native", marks=pytest.mark.skipif(
                       not _native_available(), reason="native kernel unavailable (no C++ compiler?)"))]


class PlainConv(nn.Module):
    """Independent reference: the layer written the obvious way with e3nn (the yardstick's math)."""

    irreps: str

    @nn.compact
    def __call__(self, features, vectors, senders, receivers, n_nodes):
        sh = e3nn.spherical_harmonics([0, 1, 2], e3nn.IrrepsArray("1o", vectors), normalize=True,
                                      normalization="component")
        messages = e3nn.tensor_product(features[senders], sh, filter_ir_out=e3nn.Irreps(self.irreps))
        lengths = jnp.linalg.norm(vectors, axis=-1)
        radial = e3nn.bessel(lengths, 8, 5.0) * e3nn.soft_envelope(lengths, 5.0)[:, None]
        weights = e3nn.flax.MultiLayerPerceptron([32, messages.irreps.num_irreps], jax.nn.silu)(radial)
        summed = e3nn.scatter_sum(messages * weights, dst=receivers, output_size=n_nodes)
        return e3nn.flax.Linear(self.irreps)(summed)


def _graph(seed: int, n_nodes: int = N_NODES, n_edges: int = N_EDGES, irreps: str = IRREPS, scale: float = 1.6):
    rng = np.random.default_rng(seed)
    senders = jnp.asarray(rng.integers(0, n_nodes, n_edges), jnp.int32)
    receivers = jnp.asarray(rng.integers(0, n_nodes, n_edges), jnp.int32)
    vectors = jnp.asarray(rng.normal(size=(n_edges, 3)) * scale, jnp.float32)  # some beyond the 5 Å cutoff
    features = e3nn.normal(e3nn.Irreps(irreps), jax.random.PRNGKey(seed), (n_nodes,))
    return features, vectors, senders, receivers


def _output_and_grads(module, params, features, vectors, senders, receivers, mask=None):
    """Output and the gradients of sum(out^2) w.r.t. (params, vectors, features), from one compiled function."""

    @jax.jit
    def run(p, v, x):
        def f(p, v, x):
            kwargs = {} if mask is None else {"edge_mask": mask}
            out = module.apply(p, e3nn.IrrepsArray(features.irreps, x), v, senders, receivers, features.shape[0],
                               **kwargs)
            return out.array

        out, vjp = jax.vjp(f, p, v, x)
        return out, vjp(2.0 * out)

    return run(params, vectors, features.array)


@pytest.fixture(scope="module")
def reference():
    graph = _graph(0)
    module = PlainConv(IRREPS)
    params = jax.jit(module.init, static_argnums=5)(jax.random.PRNGKey(1), *graph, N_NODES)
    return graph, params, _output_and_grads(module, params, *graph)


def _assert_matches(actual, expected, rtol=1e-5):
    out, (dparams, dvectors, dfeatures) = actual
    out_ref, (dparams_ref, dvectors_ref, dfeatures_ref) = expected
    assert_close_scaled(out, out_ref, rtol, "output")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(dparams_ref), jax.tree_util.tree_leaves(dparams)):
        assert_close_scaled(b, a, rtol, f"param grad {jax.tree_util.keystr(path)}")
    assert_close_scaled(dvectors, dvectors_ref, rtol, "vector grad")
    assert_close_scaled(dfeatures, dfeatures_ref, rtol, "feature grad")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_matches_plain_e3nn_layer(reference, implementation):
    graph, params, expected = reference
    layer = Convolution(IRREPS, implementation=implementation)
    shapes = jax.eval_shape(lambda k: layer.init(k, *graph, N_NODES), jax.random.PRNGKey(1))
    assert jax.tree_util.tree_map(jnp.shape, shapes) == jax.tree_util.tree_map(jnp.shape, params)  # transplantable
    _assert_matches(_output_and_grads(layer, params, *graph), expected)


@pytest.mark.skipif(not SHARED_REFERENCE.exists(), reason=f"shared yardstick not found at {SHARED_REFERENCE}")
def test_plain_layer_is_the_shared_yardstick(reference):
    """The in-test reference computes exactly what ../shared/bench/reference_conv.py computes."""
    spec = importlib.util.spec_from_file_location("reference_conv", SHARED_REFERENCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclass machinery looks the module up
    spec.loader.exec_module(module)
    graph, params, expected = reference
    _assert_matches(_output_and_grads(module.ReferenceConv(IRREPS), params, *graph), expected, rtol=1e-6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_o3_equivariance_with_reflection(reference, implementation):
    (features, vectors, senders, receivers), params, _ = reference
    layer = Convolution(IRREPS, implementation=implementation)

    @jax.jit
    def check(x, rotation):
        f = e3nn.IrrepsArray(features.irreps, x)  # fresh IrrepsArray: e3nn caches per-object chunks
        out = layer.apply(params, f, vectors, senders, receivers, N_NODES)
        rotated = layer.apply(params, f.transform_by_matrix(rotation), vectors @ rotation.T, senders, receivers,
                              N_NODES)
        return rotated.array, out.transform_by_matrix(rotation).array

    rng = np.random.default_rng(7)
    for reflection in (True, False):
        actual, expected = check(features.array, jnp.asarray(random_o3(rng, reflection=reflection), jnp.float32))
        assert_close_scaled(actual, expected, 1e-4, f"equivariance (reflection={reflection})")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_masked_edges_contribute_nothing_and_get_zero_finite_gradients(reference, implementation):
    (features, vectors, senders, receivers), params, _ = reference
    layer = Convolution(IRREPS, implementation=implementation)
    mask = jnp.asarray(np.random.default_rng(3).random(N_EDGES) < 0.6)
    keep = np.flatnonzero(np.asarray(mask))
    # Masked edges get garbage: zero-length vectors (padding self-loops), huge vectors, out-of-range indices.
    garbage = jnp.where(mask[:, None], vectors, jnp.asarray([[0.0, 0.0, 0.0]] * 40 + [[40.0, -3.0, 1e3]] * 40))
    bad_senders, bad_receivers = jnp.where(mask, senders, 10_000), jnp.where(mask, receivers, -7)
    out, (dparams, dvectors, dfeatures) = _output_and_grads(layer, params, features, garbage, bad_senders,
                                                            bad_receivers, mask)
    pruned = jax.jit(lambda p: layer.apply(p, features, vectors[keep], senders[keep], receivers[keep], N_NODES))
    assert_close_scaled(out, pruned(params).array, 1e-5, "masked vs pruned output")
    for leaf in jax.tree_util.tree_leaves((dparams, dvectors, dfeatures)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    dvectors = np.asarray(dvectors)
    assert np.all(dvectors[~np.asarray(mask)] == 0.0) and np.any(dvectors[keep] != 0.0)


def test_safe_norm_and_radial_basis_are_finite_at_zero_and_vanish_beyond_cutoff():
    v = jnp.asarray([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [6.0, 0.0, 0.0]])

    @jax.jit
    def run(v):
        lengths, _ = safe_norm(v)
        grad = jax.grad(lambda v: jnp.sum(radial_basis(safe_norm(v)[0], 8, 5.0)))(v)
        return lengths, radial_basis(lengths, 8, 5.0), grad

    lengths, basis, grad = run(v)
    np.testing.assert_allclose(np.asarray(lengths), [1.0, 3.0, 6.0], rtol=1e-6)
    assert np.all(np.asarray(basis[2]) == 0.0) and np.any(np.asarray(basis[1]) != 0.0)
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.skipif(not _native_available(), reason="native kernel unavailable (no C++ compiler?)")
def test_native_second_derivatives_match_jax(reference):
    """A gradient of a gradient (as in force training) agrees between the implementations."""
    (features, vectors, senders, receivers), params, _ = reference
    results = {}
    for implementation in ("native", "jax"):
        layer = Convolution(IRREPS, implementation=implementation)

        def force_loss(p, v, layer=layer):
            energy = lambda v: jnp.sum(layer.apply(p, features, v, senders, receivers, N_NODES).array ** 2)  # noqa
            return jnp.sum(jax.grad(energy)(v) ** 2)

        results[implementation] = jax.jit(jax.value_and_grad(force_loss, argnums=(0, 1)))(params, vectors)
    for a, b in zip(jax.tree_util.tree_leaves(results["native"]), jax.tree_util.tree_leaves(results["jax"])):
        assert_close_scaled(a, b, 1e-4, "second-order gradient")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_vmap_over_graphs(reference, implementation):
    (features, vectors, senders, receivers), params, (expected, _) = reference
    layer = Convolution(IRREPS, implementation=implementation)
    other = _graph(11)
    stack = lambda a, b: jnp.stack([a, b])  # noqa: E731
    batched = jax.jit(jax.vmap(lambda x, v, s, r: layer.apply(params, e3nn.IrrepsArray(features.irreps, x), v, s, r,
                                                              N_NODES).array))(
        stack(features.array, other[0].array), stack(vectors, other[1]), stack(senders, other[2]),
        stack(receivers, other[3]))
    single = jax.jit(lambda x, v, s, r: layer.apply(params, e3nn.IrrepsArray(features.irreps, x), v, s, r,
                                                    N_NODES).array)(other[0].array, *other[1:])
    assert_close_scaled(batched[0], expected, 1e-5, "vmap element 0")
    assert_close_scaled(batched[1], single, 1e-5, "vmap element 1")


def test_jit_matches_eager_at_realistic_size():
    n, n_edges, irreps = 320, 8000, "32x0e+16x1o+8x2e"  # about a padded batch of 64 perov_5 cells
    features, vectors, senders, receivers = _graph(5, n, n_edges, irreps, scale=2.0)
    layer = Convolution(irreps)  # the default implementation
    params = jax.jit(layer.init, static_argnums=5)(jax.random.PRNGKey(0), features, vectors, senders, receivers, n)
    eager = layer.apply(params, features, vectors, senders, receivers, n)
    jitted = jax.jit(lambda p: layer.apply(p, features, vectors, senders, receivers, n))(params)
    assert_close_scaled(jitted.array, eager.array, 1e-5, "jit vs eager")


def test_implementation_choice(monkeypatch):
    features, vectors, senders, receivers = _graph(6, 5, 12)

    def init(layer):
        return jax.eval_shape(lambda k: layer.init(k, features, vectors, senders, receivers, 5),
                              jax.random.PRNGKey(0))

    with pytest.raises(ValueError, match="implementation"):
        init(Convolution(IRREPS, implementation="fortran"))
    monkeypatch.setenv(_native_build.ENV_DISABLE, "0")
    with pytest.raises(RuntimeError, match="native"):
        init(Convolution(IRREPS, implementation="native"))
    assert jax.tree_util.tree_leaves(init(Convolution(IRREPS)))  # "auto" falls back to jax
