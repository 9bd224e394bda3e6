"""A differentiable dynamical-stability objective: a smooth penalty on negative eigenvalues of the Stillinger-Weber
Hessian at Γ, per structure of a padded batch.

For a structure with ``n`` atoms the Γ Hessian ``H = d^2 E / dx dx`` (``[3n, 3n]`` eV/Å^2, periodic images moving
with their atoms, lattice fixed) has three zero eigenvalues, the rigid translations (acoustic modes at Γ); they are
excluded exactly by adding ``shift * P`` with ``P`` the projector onto rigid translations (``H P = 0``, so those three
eigenvalues become ``shift`` and every other one is unchanged). The value is::

    sum_k relu(margin - lambda_k)^2 / scale^2                (lambda_k the eigenvalues of H + shift P)

zero for a dynamically stable structure at Γ (``margin = 0``) and growing smoothly with the depth of each unstable
mode. The sign of Hessian eigenvalues is that of the mass-weighted dynamical matrix (Sylvester's law of inertia),
so the penalty is zero exactly when no Γ phonon is imaginary.

Hessian of a padded batch. The energies of different structures are independent, so the batch Hessian is block
diagonal; one Hessian-vector product whose tangent moves atom ``k`` of *every* structure along ``alpha`` gives column
``(k, alpha)`` of every structure's block at once: ``3 * max_atoms`` products in all, not ``3 N``. Gradient: the
penalty is a spectral function, ``d sum_k g(lambda_k) = tr(V g'(Lambda) V^T dH)``; that rule (a custom JVP) stays
finite when eigenvalues are degenerate (cubic crystals), where differentiating ``eigh`` itself would not. The
guidance gradient then needs third derivatives of the energy, which autodiff supplies.

Species are ignored (SW silicon). The batch's edges must reach the SW cutoff (3.77 Å); structures with more than
``max_atoms`` atoms, or an atom with more than ``max_degree`` neighbours within the cutoff, give NaN.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.base import Combinable
from atomsmith.guidance.objectives import masked
from atomsmith.physics.stillinger_weber import SILICON, sw_node_energies


@jax.custom_jvp
def spectral_penalty(matrices: jax.Array, margin: jax.Array) -> jax.Array:
    """``[...]`` ``sum_k relu(margin - lambda_k)^2`` over the eigenvalues of symmetric ``matrices [..., d, d]``."""
    eig = jnp.linalg.eigvalsh(matrices)
    return jnp.sum(jnp.maximum(margin - eig, 0.0) ** 2, axis=-1)


@spectral_penalty.defjvp
def _spectral_penalty_jvp(primals, tangents):
    matrices, margin = primals
    d_matrices, d_margin = tangents
    eig, vec = jnp.linalg.eigh(matrices)
    below = jnp.maximum(margin - eig, 0.0)  # [..., d]
    d_eig = jnp.einsum("...ik,...ij,...jk->...k", vec, 0.5 * (d_matrices + jnp.swapaxes(d_matrices, -1, -2)), vec)
    value = jnp.sum(below ** 2, axis=-1)
    return value, jnp.sum(-2.0 * below * d_eig, axis=-1) + 2.0 * jnp.sum(below, axis=-1) * d_margin


def _local_index(batch: GraphBatch) -> tuple[jax.Array, jax.Array]:
    """``([N] index of each node within its structure, [G] index of each structure's first node)``; nodes of a
    structure are contiguous (as :func:`~atomsmith.graphs.batching.batch_graphs` lays them out)."""
    first = jnp.cumsum(batch.n_atoms) - batch.n_atoms
    return jnp.arange(batch.n_nodes) - first[batch.node_graph], first


def gamma_hessians(batch: GraphBatch, params=SILICON, max_degree: int = 32, max_atoms: int = 64
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-structure SW Hessians at Γ from a padded batch.

    Returns:
      ``hessians`` ``[G, 3M, 3M]`` eV/Å^2 with ``M = max_atoms`` (row ``3 i + beta``: atom ``i`` of the structure;
      rows and columns past its atoms are 0), ``valid`` ``[G, 3M]`` bool (real rows), and ``bad`` ``[G]`` bool
      (more than ``max_atoms`` atoms, or a neighbour-table overflow: the block is then incomplete).
    """
    n_nodes = batch.n_nodes
    order = jnp.argsort(jnp.where(batch.edge_mask, batch.receivers, n_nodes), stable=True)  # group by centre
    senders, receivers = batch.senders[order], batch.receivers[order]
    edge_mask, shifts = batch.edge_mask[order], batch.shifts[order]
    edge_lattice = batch.lattices[batch.node_graph[receivers]]
    image = jnp.einsum("ei,eij->ej", shifts, edge_lattice)

    def energy(pos):
        vectors = pos[senders] - pos[receivers] + image
        node_energy, overflow = sw_node_energies(vectors, receivers, edge_mask, n_nodes, params, max_degree)
        return jnp.sum(jnp.where(batch.node_mask, node_energy, 0.0)), overflow

    positions = batch.positions()
    gradient = jax.grad(energy, has_aux=True)
    local, first = _local_index(batch)
    m = max_atoms

    def column(index):  # d grad / d x_{k, alpha} of every structure at once
        k, alpha = index // 3, index % 3
        tangent = ((local == k) & batch.node_mask)[:, None] & (jnp.arange(3) == alpha)[None, :]
        _, hvp, overflow = jax.jvp(gradient, (positions,), (tangent.astype(positions.dtype),), has_aux=True)
        return hvp, overflow

    columns, overflow = jax.lax.map(column, jnp.arange(3 * m))  # [3M, N, 3]
    slots = jnp.arange(m)
    atom_valid = slots[None, :] < batch.n_atoms[:, None]  # [G, M]
    rows = jnp.clip(first[:, None] + slots[None, :], 0, n_nodes - 1)  # [G, M]
    blocks = columns[:, rows, :]  # [3M (k, alpha), G, M (i), 3 (beta)]
    blocks = jnp.where(atom_valid[None, :, :, None], blocks, 0.0)
    hessians = jnp.transpose(blocks, (1, 2, 3, 0)).reshape(-1, 3 * m, 3 * m)  # [G, (i, beta), (k, alpha)]
    valid = jnp.repeat(atom_valid, 3, axis=1)
    hessians = jnp.where(valid[:, :, None] & valid[:, None, :], hessians, 0.0)
    hessians = 0.5 * (hessians + jnp.swapaxes(hessians, 1, 2))
    bad = (batch.n_atoms > m) | jnp.any(overflow)
    return hessians, valid, bad


def gamma_penalty(batch: GraphBatch, margin=0.0, scale=1.0, shift: float = 100.0, params=SILICON,
                  max_degree: int = 32, max_atoms: int = 64) -> jax.Array:
    """``[G]`` ``sum_k relu(margin - lambda_k)^2 / scale^2`` over the Γ Hessian eigenvalues (eV/Å^2) of each
    structure, the three rigid translations excluded (see module docstring); 0 on padding, NaN where
    :func:`gamma_hessians` flags a structure. ``shift`` (eV/Å^2) must exceed ``margin``."""
    hessians, valid, bad = gamma_hessians(batch, params, max_degree, max_atoms)
    m3 = hessians.shape[-1]
    n = jnp.maximum(batch.n_atoms, 1).astype(hessians.dtype)
    # rigid translations: t_alpha[(i, beta)] = delta_{alpha beta} / sqrt(n) on real atoms
    translations = jnp.where(valid[:, :, None], jnp.tile(jnp.eye(3, dtype=hessians.dtype), (m3 // 3, 1))[None], 0.0)
    translations = translations / jnp.sqrt(n)[:, None, None]  # [G, 3M, 3]
    projector = jnp.einsum("gia,gja->gij", translations, translations)
    padding = jnp.where(valid, 0.0, 1.0)  # padding rows: eigenvalue `shift`, never penalised
    shifted = hessians + shift * (projector + jax.vmap(jnp.diag)(padding))
    value = spectral_penalty(shifted, jnp.asarray(margin, hessians.dtype)) / jnp.asarray(scale, hessians.dtype) ** 2
    return masked(jnp.where(bad, jnp.nan, value), batch)


@flax.struct.dataclass
class GammaStability(Combinable):
    """Penalise dynamical instability at Γ: ``sum_k relu(margin - lambda_k)^2 / scale^2`` over the eigenvalues
    ``lambda_k`` (eV/Å^2) of each structure's SW Hessian, the three acoustic modes excluded (module docstring).

    ``margin`` (eV/Å^2, default 0) also penalises soft modes below it; ``scale`` (eV/Å^2) sets the unit (a mode at
    ``-scale`` costs 1). ``max_atoms`` (static) bounds the structures' sizes: the Hessian costs ``3 * max_atoms``
    Hessian-vector products of the batch energy.
    """

    margin: float = 0.0
    scale: float = 1.0
    params: object = flax.struct.field(pytree_node=False, default=SILICON)
    max_degree: int = flax.struct.field(pytree_node=False, default=32)
    max_atoms: int = flax.struct.field(pytree_node=False, default=64)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        del species_weights
        return gamma_penalty(batch, self.margin, self.scale, params=self.params, max_degree=self.max_degree,
                             max_atoms=self.max_atoms)
