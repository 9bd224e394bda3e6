"""Guidance objectives for amorphous silicon: SW energy per atom and the fraction of four-fold atoms.

All follow :class:`~atomsmith.guidance.base.Objective` (``(batch, species_weights=None) -> [G]``, lower is better,
0 on padding structures), so they steer any generator through the shared guidance path and combine by weighted sums.
Species are ignored (every atom is silicon). The batch's edges must reach the largest distance used: 3.77 Å for SW
silicon, ``cutoff + 6 * bond_width`` for the smooth coordination (both below 3.8 Å with the defaults).

=========================  ===================================================================================
:class:`SWEnergyTarget`    ``((E - target) / scale)^2``, ``E`` the SW energy per atom (eV/atom) of
                           :func:`sw_energy_per_atom` with a soft core
:class:`FourFoldFraction`  ``phi``: smooth fraction of atoms with four neighbours (the value itself, in [0, 1])
:class:`FourFoldTarget`    ``((phi - target) / scale)^2``
=========================  ===================================================================================

Smooth coordination. Each bond of length ``r`` counts ``s(r) = sigmoid((cutoff - r) / bond_width)`` (a Fermi step at
the 2.85 Å bond cutoff of :mod:`atomsmith.metrics.amorphous`), ``c_i = sum_j s(r_ij)`` (periodic images counted
separately), and an atom is four-fold with weight
``w(c) ∝ sigmoid((c - 3.5) / count_width) - sigmoid((c - 4.5) / count_width)``, scaled to 1 at c = 4 (~0 at 3 and 5);
``phi = mean_i w(c_i)``. As the widths go to 0 it becomes the hard four-fold fraction of
:func:`atomsmith.metrics.amorphous.coordination_numbers`; the widths set how far the gradient reaches.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.base import Combinable
from atomsmith.guidance.objectives import masked, target_penalty
from atomsmith.nn.convolution import safe_norm
from atomsmith.physics.stillinger_weber import SILICON, sw_node_energies

#: the bond cutoff of the amorphous statistics (Å); see :data:`atomsmith.metrics.amorphous.SI_BOND_CUTOFF`.
BOND_CUTOFF = 2.85


def soft_core_vectors(vectors: jax.Array, mask: jax.Array, core: float, sharpness: float = 20.0) -> jax.Array:
    """Edge vectors ``[E, 3]`` (Å) with lengths floored smoothly at ``core`` Å:
    ``r' = core + softplus(sharpness (r - core)) / sharpness``; unchanged (to < 1e-7 Å) for ``r > core + 0.8 Å``
    with the defaults, finite with finite gradients as ``r -> 0``. ``core <= 0`` returns ``vectors`` unchanged."""
    if core <= 0:
        return vectors
    lengths, safe = safe_norm(vectors, mask)
    soft = core + jax.nn.softplus(sharpness * (lengths - core)) / sharpness
    return jnp.where(mask[:, None], safe * (soft / lengths)[:, None], vectors)


@jax.custom_vjp
def clip_gradient(vectors: jax.Array, max_norm: jax.Array) -> jax.Array:
    """Identity on ``vectors [E, 3]``; in the backward pass each row's cotangent is scaled down to norm
    ``<= max_norm`` (guidance steps stay bounded where a few close contacts would dominate)."""
    return vectors


def _clip_fwd(vectors, max_norm):
    return vectors, max_norm


def _clip_bwd(max_norm, g):
    norm = jnp.sqrt(jnp.sum(g ** 2, axis=-1, keepdims=True) + 1e-30)
    return g * jnp.minimum(1.0, max_norm / norm), jnp.zeros_like(max_norm)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def sw_energy_per_atom(batch: GraphBatch, params=SILICON, max_degree: int = 32, core: float = 0.0,
                       max_edge_grad: float | None = None) -> jax.Array:
    """``[G]`` SW energy per atom (eV/atom) from the batch's edges; NaN where an atom has more than ``max_degree``
    neighbours within the SW cutoff. With ``core > 0`` pair distances are floored smoothly at ``core`` Å
    (:func:`soft_core_vectors`) so that piled-up atoms give large but finite energies and gradients. With
    ``core = 0`` and no clip this is the value of :class:`atomsmith.assembly.objectives.SWEnergyPerAtom`.
    ``max_edge_grad`` clips the gradient reaching each edge vector (:func:`clip_gradient`; values unchanged)."""
    n_nodes = batch.n_nodes
    order = jnp.argsort(jnp.where(batch.edge_mask, batch.receivers, n_nodes), stable=True)  # group by centre
    mask = batch.edge_mask[order]
    vectors = batch.edge_vectors()[order]
    if max_edge_grad is not None:
        vectors = clip_gradient(vectors, jnp.asarray(max_edge_grad, vectors.dtype))
    vectors = soft_core_vectors(vectors, mask, core)
    node_energy, overflow = sw_node_energies(vectors, batch.receivers[order], mask, n_nodes, params, max_degree)
    node_energy = jnp.where(batch.node_mask, node_energy, 0.0)
    energy = jax.ops.segment_sum(node_energy, batch.node_graph, num_segments=batch.n_graphs)
    per_atom = energy / jnp.maximum(batch.n_atoms, 1).astype(energy.dtype)
    return masked(jnp.where(overflow, jnp.nan, per_atom), batch)


def smooth_coordination(batch: GraphBatch, cutoff: float = BOND_CUTOFF, bond_width: float = 0.05) -> jax.Array:
    """``[N]`` smooth coordination numbers ``c_i = sum_j sigmoid((cutoff - r_ij) / bond_width)`` (0 on padding)."""
    lengths, _ = safe_norm(batch.edge_vectors(), batch.edge_mask)
    bond = jnp.where(batch.edge_mask, jax.nn.sigmoid((cutoff - lengths) / bond_width), 0.0)
    counts = jax.ops.segment_sum(bond, batch.receivers, num_segments=batch.n_nodes)
    return jnp.where(batch.node_mask, counts, 0.0)


def fourfold_weight(counts: jax.Array, count_width: float = 0.1) -> jax.Array:
    """Smooth indicator of ``count == 4``: ``sigmoid((c - 3.5)/w) - sigmoid((c - 4.5)/w)``, divided by its value at
    ``c = 4`` so that exactly four-fold atoms weigh 1."""
    peak = jax.nn.sigmoid(0.5 / count_width) - jax.nn.sigmoid(-0.5 / count_width)
    return (jax.nn.sigmoid((counts - 3.5) / count_width) - jax.nn.sigmoid((counts - 4.5) / count_width)) / peak


def fourfold_fraction(batch: GraphBatch, cutoff: float = BOND_CUTOFF, bond_width: float = 0.05,
                      count_width: float = 0.1) -> jax.Array:
    """``[G]`` smooth fraction of four-fold atoms per structure (0 on padding structures)."""
    weight = fourfold_weight(smooth_coordination(batch, cutoff, bond_width), count_width)
    weight = jnp.where(batch.node_mask, weight, 0.0)
    total = jax.ops.segment_sum(weight, batch.node_graph, num_segments=batch.n_graphs)
    fraction = total / jnp.maximum(batch.n_atoms, 1).astype(total.dtype)
    return masked(fraction, batch)


@flax.struct.dataclass
class SWEnergyTarget(Combinable):
    """Hit a SW energy per atom: ``((E - target) / scale)^2`` per structure; ``target`` (eV/atom) scalar or ``[G]``,
    ``scale`` in eV/atom (an error of ``scale`` costs 1).

    ``core`` (Å, default 1.2) floors pair distances smoothly (:func:`soft_core_vectors`): the denoised estimates of
    a diffusion sampler can put two atoms on one spot, where SW's ``r^-4`` repulsion overflows float32 gradients;
    with the floor the energy is exact for every pair longer than ~2 Å (all pairs of a physical a-Si cell) and
    finite otherwise. ``core = 0`` gives the plain SW energy. ``max_edge_grad`` (objective units per Å, default
    none) bounds the gradient through each edge (:func:`clip_gradient`): values are unchanged, guidance steps stay
    bounded when a denoised estimate is far from any physical cell.
    """

    target: float
    scale: float = 0.05
    core: float = flax.struct.field(pytree_node=False, default=1.2)
    params: object = flax.struct.field(pytree_node=False, default=SILICON)
    max_degree: int = flax.struct.field(pytree_node=False, default=32)
    max_edge_grad: float | None = flax.struct.field(pytree_node=False, default=None)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        del species_weights
        energy = sw_energy_per_atom(batch, self.params, self.max_degree, self.core, self.max_edge_grad)
        return target_penalty(energy, self.target, self.scale, batch)


@flax.struct.dataclass
class FourFoldFraction(Combinable):
    """The smooth four-fold fraction ``phi`` itself (``[G]``, in [0, 1]); ``-1.0 * FourFoldFraction()`` maximises it."""

    cutoff: float = BOND_CUTOFF
    bond_width: float = 0.05
    count_width: float = 0.1

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        del species_weights
        return fourfold_fraction(batch, self.cutoff, self.bond_width, self.count_width)


@flax.struct.dataclass
class FourFoldTarget(Combinable):
    """Hit a four-fold fraction: ``((phi - target) / scale)^2`` per structure (``target`` scalar or ``[G]``)."""

    target: float
    scale: float = 0.05
    cutoff: float = BOND_CUTOFF
    bond_width: float = 0.05
    count_width: float = 0.1

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        del species_weights
        phi = fourfold_fraction(batch, self.cutoff, self.bond_width, self.count_width)
        return target_penalty(phi, self.target, self.scale, batch)

