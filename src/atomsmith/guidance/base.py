"""The one guidance interface shared by diffusion, VAEs and MCTS.

An **objective** is any callable

    objective(batch: GraphBatch, species_weights: [N, S] | None = None) -> [G] values

returning one number per structure of the padded batch (lower is better; exactly 0 for padding structures). It must
be a pure JAX function of ``batch.frac_coords``, ``batch.lattices`` and ``species_weights`` (continuous species
weights replacing the one-hot of ``batch.numbers``; ``None`` means the one-hot). Objectives built here are frozen
pytrees, so they can be passed as arguments to jitted samplers without recompiling when a target value changes.

Objectives combine by weighted sum: ``2.0 * a + b`` is a :class:`WeightedSum`. :func:`value_and_grad` returns the
values and their gradients with respect to fractional coordinates and lattice (and, equivalently, Cartesian positions
and lattice at fixed positions) and species weights. Values of different structures are independent, so the gradient
of their sum holds each structure's own gradient.

    >>> import numpy as np
    >>> from atomsmith import Crystal, batch_graphs
    >>> from atomsmith.guidance import MinDistance
    >>> pair = Crystal(np.eye(3) * 5.0, np.array([[0.0, 0, 0], [0.2, 0, 0]]), np.array([14, 14]))   # 1 Å apart
    >>> objective = 2 * MinDistance(1.5) + MinDistance(2.0)                  # a WeightedSum
    >>> objective.weights, round(float(objective(batch_graphs([pair], cutoff=2.5))[0]), 4)   # 2 (0.5)^2 + 1^2
    ((2.0, 1.0), 1.5)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import flax.struct
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch


@runtime_checkable
class Objective(Protocol):
    """``(batch, species_weights=None) -> [G]`` per-structure values, lower is better (see module docstring)."""

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array: ...


class Combinable:
    """Mixin: ``w * objective`` and ``objective + objective`` build a :class:`WeightedSum`."""

    def __add__(self, other: Any) -> WeightedSum:
        if not callable(other):
            return NotImplemented
        return WeightedSum.of((1.0, self), (1.0, other))

    def __radd__(self, other: Any) -> WeightedSum:
        if isinstance(other, (int, float)) and other == 0:  # sum([...]) starts from 0
            return WeightedSum.of((1.0, self))
        return NotImplemented

    def __mul__(self, weight: Any) -> WeightedSum:
        if callable(weight):
            return NotImplemented
        return WeightedSum.of((weight, self))

    __rmul__ = __mul__


@flax.struct.dataclass
class WeightedSum(Combinable):
    """``sum_k weights[k] * terms[k](batch, species_weights)``."""

    terms: tuple
    weights: tuple

    @classmethod
    def of(cls, *pairs: tuple[Any, Objective]) -> WeightedSum:
        terms, weights = [], []
        for weight, term in pairs:
            if isinstance(term, WeightedSum):  # flatten nested sums
                terms.extend(term.terms)
                weights.extend(weight * w for w in term.weights)
            else:
                terms.append(term)
                weights.append(weight)
        return cls(terms=tuple(terms), weights=tuple(weights))

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        total = jnp.zeros(batch.n_graphs)
        for weight, term in zip(self.weights, self.terms):
            total = total + weight * term(batch, species_weights)
        return total


@flax.struct.dataclass
class GuidanceGradients:
    """Values and gradients of an objective on a batch.

    Attributes:
      values: ``[G]`` per-structure values (0 on padding).
      frac_coords: ``[N, 3]`` dE/d(fractional coordinates), lattice held fixed.
      lattices: ``[G, 3, 3]`` dE/d(lattice rows), fractional coordinates held fixed (eV/Å for energies in eV).
      positions: ``[N, 3]`` dE/d(Cartesian positions) (Å^-1 units of the value), lattice held fixed.
      lattices_at_fixed_positions: ``[G, 3, 3]`` dE/d(lattice rows) with Cartesian positions held fixed.
      species_weights: ``[N, S]`` dE/d(species weights), or ``None`` when no weights were given.
    """

    values: jax.Array
    frac_coords: jax.Array
    lattices: jax.Array
    positions: jax.Array
    lattices_at_fixed_positions: jax.Array
    species_weights: jax.Array | None

    @property
    def total(self) -> jax.Array:
        return jnp.sum(self.values)


def value_and_grad(objective: Objective, batch: GraphBatch,
                   species_weights: jax.Array | None = None) -> GuidanceGradients:
    """Evaluate ``objective`` and differentiate ``sum(values)`` (see :class:`GuidanceGradients`).

    Chain rule for the Cartesian view (x = f L per structure, row vectors):
    ``dE/dx_n = dE/df_n L^-T`` and ``dE/dL|_x = dE/dL|_f - sum_n f_n^T (dE/dx_n)``.
    Jit it as ``jax.jit(value_and_grad)``: the objective is a pytree argument.
    """
    def total(frac, lattices, species):
        values = objective(batch.replace(frac_coords=frac, lattices=lattices), species)
        values = jnp.where(batch.graph_mask, values, 0.0)
        return jnp.sum(values), values

    argnums = (0, 1, 2) if species_weights is not None else (0, 1)
    (_, values), grads = jax.value_and_grad(total, argnums=argnums, has_aux=True)(
        batch.frac_coords, batch.lattices, species_weights)
    g_frac, g_lat = grads[0], grads[1]
    g_species = grads[2] if species_weights is not None else None
    inv = jnp.linalg.inv(batch.lattices)  # [G, 3, 3]
    node_inv = inv[batch.node_graph]
    g_pos = jnp.einsum("nj,nij->ni", g_frac, node_inv)  # g_frac @ L^-T
    correction = jax.ops.segment_sum(jnp.einsum("na,nb->nab", batch.frac_coords, g_pos), batch.node_graph,
                                     num_segments=batch.n_graphs)
    return GuidanceGradients(values=values, frac_coords=g_frac, lattices=g_lat, positions=g_pos,
                             lattices_at_fixed_positions=g_lat - correction, species_weights=g_species)


def objective_cutoff(objective: Any, default: float) -> float:
    """Largest encoder cutoff (Å) of the predictors inside ``objective`` (a term or a :class:`WeightedSum`)."""
    terms = objective.terms if isinstance(objective, WeightedSum) else (objective,)
    cutoffs = [float(t.predictor.config.encoder.cutoff) for t in terms
               if getattr(getattr(t, "predictor", None), "config", None) is not None]
    return max(cutoffs, default=float(default))
