"""The equivariant point convolution at the heart of every interaction layer.

Math (identical to ``shared/bench/reference_conv.py``, the yardstick it is benchmarked against):

    m_ij   = (x_j  (x)  Y(r_ij)) filtered to ``irreps_out`` paths       channel-wise ("uvu") tensor product
    w_ij   = MLP(Bessel(|r_ij|) * envelope(|r_ij|))                     one weight per message channel
    out_i  = Linear( sum_j w_ij * m_ij )

with ``r_ij`` the edge vector (Å), Y the spherical harmonics up to ``sh_lmax`` (component normalisation). Padding
edges (``edge_mask`` False) contribute nothing and get zero gradients (finite also at zero length).

Parameters have exactly the structure of the reference layer (``MultiLayerPerceptron_0``, ``Linear_0``), so
parameters transplant between the two.

Implementations (attribute ``implementation``):

* ``"native"``: one fused C++ kernel per direction (radial MLP, Clebsch-Gordan products, weighting and
  scatter-sum; see :mod:`atomsmith.nn._tp_codegen`), compiled on first use and cached. CPU, float32.
* ``"jax"``: e3nn tensor product with a plain broadcast weighting and ``segment_sum``, differentiated by JAX
  (:mod:`atomsmith.nn._tp_jax`); runs anywhere (GPU, float64) and supports every transformation.
* ``"auto"`` (default): native when available on a CPU backend with float32 inputs, else jax.

Both compute the same function (outputs and gradients agree to float32 rounding) and support ``jit``, ``vmap``
and reverse-mode derivatives of any order (the native kernel's second and higher derivatives run through the JAX
definition). Forward-mode AD (``jax.jvp``, ``jax.jacfwd``) needs ``implementation="jax"``: the native kernel is a
``jax.custom_vjp``.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.nn import _tp_native
from atomsmith.nn._radial_mlp import make_mlp_spec, mlp_kernels
from atomsmith.nn._tp_jax import conv_core
from atomsmith.nn._tp_plan import from_channel_minor, make_plan, to_channel_minor

IMPLEMENTATIONS = ("auto", "native", "jax")


def safe_norm(vectors: jax.Array, mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Lengths ``[E]`` and unit-safe vectors ``[E, 3]``: masked or zero vectors are replaced by (1, 0, 0).

    The double-``where`` keeps gradients finite at zero length.
    """
    sq = jnp.sum(vectors ** 2, axis=-1)
    ok = sq > 1e-12 if mask is None else (sq > 1e-12) & mask
    safe_vectors = jnp.where(ok[:, None], vectors, jnp.array([1.0, 0.0, 0.0], vectors.dtype))
    lengths = jnp.sqrt(jnp.sum(safe_vectors ** 2, axis=-1))
    return lengths, safe_vectors


def radial_basis(lengths: jax.Array, n_basis: int, cutoff: float) -> jax.Array:
    """Bessel basis times a smooth envelope: ``[E] Å -> [E, n_basis]``, exactly zero at and beyond ``cutoff``."""
    inside = lengths < cutoff
    x = jnp.where(inside, lengths, 0.5 * cutoff)
    basis = e3nn.bessel(x, n_basis, cutoff) * e3nn.soft_envelope(x, cutoff)[:, None]
    return jnp.where(inside[:, None], basis, 0.0)


class Convolution(nn.Module):
    """Equivariant convolution (see module docstring).

    Attributes:
      irreps_out: irreps of the output node features (and the filter on the tensor-product paths).
      sh_lmax: largest l of the spherical harmonics of the edge direction.
      n_basis: Bessel basis size.
      cutoff: Å.
      radial_hidden: hidden widths of the radial MLP.
      implementation: ``"auto"``, ``"native"`` or ``"jax"`` (see module docstring).
    """

    irreps_out: str
    sh_lmax: int = 2
    n_basis: int = 8
    cutoff: float = 5.0
    radial_hidden: tuple[int, ...] = (32,)
    implementation: str = "auto"

    @nn.compact
    def __call__(self, features: e3nn.IrrepsArray, vectors: jax.Array, senders: jax.Array, receivers: jax.Array,
                 n_nodes: int, edge_mask: jax.Array | None = None) -> e3nn.IrrepsArray:
        """features ``[N, irreps_in]``, vectors ``[E, 3]`` Å, senders/receivers ``[E]`` -> ``[N, irreps_out]``."""
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {self.implementation!r}")
        assert features.ndim == 2 and features.shape[0] == n_nodes, (features.shape, n_nodes)
        assert vectors.shape == (senders.shape[0], 3) and receivers.shape == senders.shape, (
            vectors.shape, senders.shape, receivers.shape)
        if features.irreps != features.irreps.regroup():
            features = features.regroup()
        plan = make_plan(str(features.irreps), str(e3nn.Irreps(self.irreps_out)), self.sh_lmax)
        spec = make_mlp_spec(self.n_basis, tuple(self.radial_hidden), plan.n_weights)

        lengths, safe_vectors = safe_norm(vectors, edge_mask)
        sh = e3nn.spherical_harmonics(list(range(self.sh_lmax + 1)), e3nn.IrrepsArray("1o", safe_vectors),
                                      normalize=True, normalization="component").array  # [E, (lmax+1)^2]
        radial = radial_basis(lengths, self.n_basis, self.cutoff)  # [E, n_basis]
        mlp = e3nn.flax.MultiLayerPerceptron([*self.radial_hidden, plan.n_weights], jax.nn.silu)

        kernel = self._native_kernel(plan, spec, features.array, sh, radial)
        if kernel is not None:
            mlp(jnp.zeros((1, self.n_basis), radial.dtype))  # creates/binds the MLP parameters
            kernels = tuple(k.astype(jnp.float32) for k in mlp_kernels(mlp.variables["params"], spec))
            x = to_channel_minor(features.array, plan.irreps_in)  # [N, dim_in], kernel layout
            summed = _tp_native.fused_conv(plan, spec, kernel, x, sh, radial, kernels,
                                           _tp_native.as_index(senders, edge_mask),
                                           _tp_native.as_index(receivers, edge_mask))
            summed = from_channel_minor(summed, plan.irreps_msg)
        else:
            weights = mlp(radial)  # [E, n_weights]
            if edge_mask is not None:
                weights = jnp.where(edge_mask[:, None], weights, 0.0)
            summed = conv_core(plan, features.array, sh, weights, senders, receivers, n_nodes)
        summed = e3nn.IrrepsArray(plan.irreps_msg, summed)
        return e3nn.flax.Linear(self.irreps_out, force_irreps_out=True)(summed)

    def _native_kernel(self, plan, spec, *arrays) -> str | None:
        if self.implementation == "jax":
            return None
        usable = jax.default_backend() == "cpu" and all(a.dtype == jnp.float32 for a in arrays)
        kernel = _tp_native.kernel_name(plan, spec) if usable else None
        if kernel is None and self.implementation == "native":
            raise RuntimeError("implementation='native' needs float32 inputs on a CPU backend, a C++ compiler and "
                               "ATOMSMITH_NATIVE_KERNELS unset or 1")
        return kernel
