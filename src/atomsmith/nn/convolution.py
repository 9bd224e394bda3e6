"""The equivariant point convolution at the heart of every interaction layer.

Math (identical to ``shared/bench/reference_conv.py``, the yardstick it is benchmarked against):

    m_ij   = (x_j  (x)  Y(r_ij)) filtered to ``irreps_out`` paths       channel-wise ("uvu") tensor product
    w_ij   = MLP(Bessel(|r_ij|) * envelope(|r_ij|))                     one weight per output irrep
    out_i  = Linear( sum_j w_ij * m_ij )

with ``r_ij`` the edge vector (Å), Y the spherical harmonics up to ``sh_lmax``. Padding edges (``edge_mask``
False) contribute nothing and get zero gradients.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp


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
    """

    irreps_out: str
    sh_lmax: int = 2
    n_basis: int = 8
    cutoff: float = 5.0
    radial_hidden: tuple[int, ...] = (32,)

    @nn.compact
    def __call__(self, features: e3nn.IrrepsArray, vectors: jax.Array, senders: jax.Array, receivers: jax.Array,
                 n_nodes: int, edge_mask: jax.Array | None = None) -> e3nn.IrrepsArray:
        """features ``[N, irreps_in]``, vectors ``[E, 3]`` Å, senders/receivers ``[E]`` -> ``[N, irreps_out]``."""
        assert features.ndim == 2 and vectors.shape == (senders.shape[0], 3), (features.shape, vectors.shape)
        lengths, safe_vectors = safe_norm(vectors, edge_mask)
        sh = e3nn.spherical_harmonics(list(range(self.sh_lmax + 1)), e3nn.IrrepsArray("1o", safe_vectors),
                                      normalize=True, normalization="component")
        messages = e3nn.tensor_product(features[senders], sh, filter_ir_out=e3nn.Irreps(self.irreps_out))
        radial = radial_basis(lengths, self.n_basis, self.cutoff)
        if edge_mask is not None:
            radial = jnp.where(edge_mask[:, None], radial, 0.0)
        weights = e3nn.flax.MultiLayerPerceptron([*self.radial_hidden, messages.irreps.num_irreps],
                                                 jax.nn.silu)(radial)
        # Broadcast the per-irrep weights over each irrep's 2l+1 components with a plain multiply: e3nn's
        # ``IrrepsArray * array`` builds an elementwise tensor product with identity CG matrices (slow on CPU).
        repeats = jnp.asarray([ir.dim for mul, ir in messages.irreps for _ in range(mul)])
        expanded = jnp.repeat(weights, repeats, axis=-1, total_repeat_length=messages.irreps.dim)
        messages = e3nn.IrrepsArray(messages.irreps, messages.array * expanded)
        summed = e3nn.scatter_sum(messages, dst=receivers, output_size=n_nodes)
        return e3nn.flax.Linear(self.irreps_out, force_irreps_out=True)(summed)
