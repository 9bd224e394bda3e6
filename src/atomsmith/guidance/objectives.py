"""Differentiable guidance objectives built from predictors and physics (all follow :class:`Objective`).

Property objectives read a :class:`~atomsmith.predictors.model.Predictor`'s output as one number per structure,
``p_g``: a structure scalar as is, a per-atom scalar averaged over the structure's atoms, and a tensor through an
invariant (``"isotropic"``: trace / 3 of a rank-2 tensor; ``"norm"``: Frobenius norm), so the objective is
O(3)-invariant and its coordinate gradient is equivariant. With ``s`` a user scale in the property's units:

=======================  =================================================================
:class:`PropertyTarget`  ``((p - target) / s)^2``
:class:`PropertyRange`   ``(relu(low - p)^2 + relu(p - high)^2) / s^2``   (0 inside the range)
:class:`PropertyExtremum` ``p / s`` (minimise) or ``-p / s`` (maximise)
:class:`TensorMatch`     ``||T - T*||_F^2 / s^2`` (structure tensors; per-atom tensors averaged over atoms)
:class:`MinDistance`     ``sum_{pairs} relu(d_min - d_ij)^2``  (keep atoms apart; d_min in Å)
=======================  =================================================================

TensorMatch compares against a fixed target in the batch's Cartesian frame, so it is invariant only when the target
is rotated with the structure (it is *meant* to fix orientation-dependent responses).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.base import Combinable
from atomsmith.nn.convolution import safe_norm
from atomsmith.nn.readouts import pool

INVARIANTS = ("isotropic", "norm")


def _check_invariant(rank: int, invariant: str | None) -> None:
    if rank == 0:
        return
    if invariant is None:
        raise ValueError(f"the predictor outputs rank-{rank} tensors; choose an invariant ({INVARIANTS}) to turn "
                         "them into one number per structure, or use TensorMatch")
    if invariant not in INVARIANTS:
        raise ValueError(f"unknown invariant {invariant!r}; use one of {INVARIANTS}")
    if invariant == "isotropic" and rank != 2:
        raise ValueError("the 'isotropic' invariant (trace / 3) needs a rank-2 tensor")


def _invariant(values: jax.Array, rank: int, invariant: str | None) -> jax.Array:
    if rank == 0:
        return values
    axes = tuple(range(values.ndim - rank, values.ndim))
    if invariant == "norm":
        return jnp.sqrt(jnp.sum(values ** 2, axis=axes) + 1e-12)
    return jnp.trace(values, axis1=-2, axis2=-1) / 3.0


def property_per_structure(predictor: Any, batch: GraphBatch, species_weights: jax.Array | None = None,
                           invariant: str | None = None) -> jax.Array:
    """The predictor's output reduced to ``[G]`` (see module docstring)."""
    config = predictor.config.readout
    rank = len(config.output_shape)
    _check_invariant(rank, invariant)  # fail before any computation
    values = _invariant(predictor(batch, species_weights), rank, invariant)
    if config.level == "atom":
        values = pool(values, batch, "mean")
    return values


def masked(values: jax.Array, batch: GraphBatch) -> jax.Array:
    """``[G]`` per-structure values with padding structures set to 0 (the objective convention)."""
    return jnp.where(batch.graph_mask, values, 0.0)


def target_penalty(values: jax.Array, target: Any, scale: Any, batch: GraphBatch) -> jax.Array:
    """``((values - target) / scale)^2`` per structure, 0 on padding: the penalty of every ``*Target`` objective."""
    return masked(((values - target) / scale) ** 2, batch)


@flax.struct.dataclass
class PropertyTarget(Combinable):
    """Hit a target value: ``((p - target) / scale)^2`` per structure. ``target`` may be a scalar or ``[G]``."""

    predictor: Any
    target: Any
    scale: Any = 1.0
    invariant: str | None = flax.struct.field(pytree_node=False, default=None)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        p = property_per_structure(self.predictor, batch, species_weights, self.invariant)
        return target_penalty(p, self.target, self.scale, batch)


@flax.struct.dataclass
class PropertyRange(Combinable):
    """Stay inside ``[low, high]``: squared hinge outside the range, 0 inside (``low``/``high`` may be +-inf)."""

    predictor: Any
    low: Any = -np.inf
    high: Any = np.inf
    scale: Any = 1.0
    invariant: str | None = flax.struct.field(pytree_node=False, default=None)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        p = property_per_structure(self.predictor, batch, species_weights, self.invariant)
        below = jax.nn.relu(self.low - p)
        above = jax.nn.relu(p - self.high)
        return masked((below ** 2 + above ** 2) / self.scale ** 2, batch)


@flax.struct.dataclass
class PropertyExtremum(Combinable):
    """Minimise (``p / scale``) or maximise (``-p / scale``) the property."""

    predictor: Any
    scale: Any = 1.0
    maximize: bool = flax.struct.field(pytree_node=False, default=False)
    invariant: str | None = flax.struct.field(pytree_node=False, default=None)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        p = property_per_structure(self.predictor, batch, species_weights, self.invariant)
        return masked((-p if self.maximize else p) / self.scale, batch)


def minimize(predictor: Any, scale: float = 1.0, invariant: str | None = None) -> PropertyExtremum:
    return PropertyExtremum(predictor=predictor, scale=scale, maximize=False, invariant=invariant)


def maximize(predictor: Any, scale: float = 1.0, invariant: str | None = None) -> PropertyExtremum:
    return PropertyExtremum(predictor=predictor, scale=scale, maximize=True, invariant=invariant)


@flax.struct.dataclass
class TensorMatch(Combinable):
    """Match a tensor: squared Frobenius distance to ``target``, divided by ``scale^2``.

    Structure tensors: ``target`` is ``[3, ...]`` (all structures) or ``[G, 3, ...]``. Per-atom tensors: ``target``
    is ``[3, ...]`` or ``[N, 3, ...]`` aligned with the batch's atoms, the distance is averaged over the atoms of
    each structure selected by ``atom_mask [N]`` (all atoms when ``None``).
    """

    predictor: Any
    target: Any
    scale: Any = 1.0
    atom_mask: Any = None

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        config = self.predictor.config.readout
        rank = len(config.output_shape)
        if rank == 0:
            raise ValueError("TensorMatch needs a tensor predictor; use PropertyTarget for scalars")
        pred = self.predictor(batch, species_weights)
        axes = tuple(range(pred.ndim - rank, pred.ndim))
        dist = jnp.sum((pred - self.target) ** 2, axis=axes) / self.scale ** 2
        if config.level == "atom":
            mask = batch.node_mask if self.atom_mask is None else batch.node_mask & self.atom_mask
            total = jax.ops.segment_sum(jnp.where(mask, dist, 0.0), batch.node_graph, num_segments=batch.n_graphs)
            count = jax.ops.segment_sum(mask.astype(dist.dtype), batch.node_graph, num_segments=batch.n_graphs)
            dist = total / jnp.maximum(count, 1.0)
        return masked(dist, batch)


@flax.struct.dataclass
class MinDistance(Combinable):
    """Keep atoms apart: ``sum over pairs closer than d_min of (d_min - d)^2`` (Å^2), per structure.

    ``d_min = max(min_distance, covalent_fraction * (r_i + r_j))`` with covalent radii ``r`` (Å, ``ase.data``)
    mixed by the species weights when given. Pairs come from the batch's edges, so the batch must have been built
    with a cutoff of at least the largest ``d_min``. Each pair appears twice in the edge list and is counted once.
    """

    min_distance: Any = 1.0
    covalent_fraction: Any = 0.0

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        lengths, _ = safe_norm(batch.edge_vectors(), batch.edge_mask)
        d_min = jnp.full(lengths.shape, self.min_distance, lengths.dtype)
        if not (isinstance(self.covalent_fraction, (int, float)) and self.covalent_fraction == 0):
            radii = _covalent_radii(lengths.dtype)
            if species_weights is None:
                r = radii[batch.numbers]
            else:
                r = species_weights @ radii[: species_weights.shape[-1]]
            d_min = jnp.maximum(d_min, self.covalent_fraction * (r[batch.senders] + r[batch.receivers]))
        penalty = jnp.where(batch.edge_mask, jax.nn.relu(d_min - lengths) ** 2, 0.0)
        per_graph = jax.ops.segment_sum(penalty, batch.node_graph[batch.receivers], num_segments=batch.n_graphs)
        return masked(0.5 * per_graph, batch)


def _covalent_radii(dtype) -> jax.Array:
    from ase.data import covalent_radii

    return jnp.asarray(np.asarray(covalent_radii[:119]), dtype)
