"""Anisotropy of rank-2 tensor properties (e.g. Born effective charges) as a guidance objective.

The **anisotropy** of a rank-2 tensor ``Z`` (``[3, 3]``) is the Frobenius norm of its deviatoric part,

    a(Z) = || Z - tr(Z) / 3 * I ||_F        (same units as Z, e.g. e for Born charges),

which is 0 exactly for isotropic tensors (``Z = z I``, e.g. every site of cubic Pm-3m BaTiO3) and counts both the
symmetric traceless part and the antisymmetric part (Born charges need not be symmetric). It is invariant under
every orthogonal change of frame ``Z -> R Z R^T`` (rotations and reflections), so the objective is O(3)-invariant and
its coordinate gradient equivariant.

A per-atom tensor predictor gives one anisotropy per atom; :func:`tensor_anisotropy` averages it over the atoms of one
element (``species=22``: Ti) or over all atoms. With continuous species weights ``w [N, 119]`` (diffusion guidance),
the average is weighted by ``w[:, species]``. Structure-level rank-2 tensors are used as they are.

    AnisotropyTarget:  ((a_g - target) / scale)^2   per structure g
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.guidance.base import Combinable
from atomsmith.guidance.objectives import target_penalty

_EPS = 1e-12  # inside the square root: finite (zero) gradient at exactly isotropic tensors


def deviatoric_norm(tensors: jax.Array) -> jax.Array:
    """``[..., 3, 3] -> [...]``: ``||Z - tr(Z)/3 I||_F`` (computed as ``sqrt(. + 1e-12)``)."""
    if tensors.shape[-2:] != (3, 3):
        raise ValueError(f"deviatoric_norm needs [..., 3, 3] tensors, got shape {tensors.shape}")
    trace = jnp.trace(tensors, axis1=-2, axis2=-1)
    dev = tensors - (trace / 3.0)[..., None, None] * jnp.eye(3, dtype=tensors.dtype)
    return jnp.sqrt(jnp.sum(dev ** 2, axis=(-2, -1)) + _EPS)


def _check_predictor(predictor: Any, species: int | None) -> str:
    readout = predictor.config.readout
    rank = len(readout.output_shape)
    if rank != 2:
        kind = "a scalar" if rank == 0 else f"a rank-{rank} tensor"
        raise ValueError(f"the anisotropy objective needs a rank-2 tensor predictor (e.g. Born charges); "
                         f"{predictor.config.target!r} predicts {kind}")
    if species is not None and readout.level != "atom":
        raise ValueError("species= selects atoms; it needs a per-atom tensor predictor")
    return readout.level


def tensor_anisotropy(predictor: Any, batch: GraphBatch, species_weights: jax.Array | None = None,
                      species: int | None = None) -> jax.Array:
    """``[G]`` anisotropy per structure: the mean over atoms (of element ``species``, or all) of ``a(Z_i)``.

    Args:
      predictor: a rank-2 tensor predictor (per-atom, or per-structure with ``species=None``).
      batch: padded graph batch.
      species_weights: ``[N, 119]`` continuous species weights, or ``None`` (the one-hot of ``batch.numbers``).
      species: atomic number of the atoms to average over (``None``: all atoms).
    Returns:
      ``[G]`` values in the tensor's units (0 for padding structures and structures without that element).
    """
    level = _check_predictor(predictor, species)
    a = deviatoric_norm(predictor(batch, species_weights))
    if level != "atom":
        return jnp.where(batch.graph_mask, a, 0.0)
    weight = batch.node_mask.astype(a.dtype)
    if species is not None:
        if species_weights is None:
            weight = weight * (batch.numbers == int(species)).astype(a.dtype)
        else:
            weight = weight * species_weights[:, int(species)].astype(a.dtype)
    total = jax.ops.segment_sum(weight * a, batch.node_graph, num_segments=batch.n_graphs)
    count = jax.ops.segment_sum(weight, batch.node_graph, num_segments=batch.n_graphs)
    return jnp.where(batch.graph_mask, total / jnp.maximum(count, 1e-6), 0.0)


@flax.struct.dataclass
class AnisotropyTarget(Combinable):
    """Hit a target anisotropy: ``((a - target) / scale)^2`` per structure (``target`` scalar or ``[G]``).

    ``a`` is :func:`tensor_anisotropy` (deviatoric norm, averaged over the atoms of ``species`` or all atoms).
    """

    predictor: Any
    target: Any
    scale: Any = 1.0
    species: int | None = flax.struct.field(pytree_node=False, default=None)

    def __call__(self, batch: GraphBatch, species_weights: jax.Array | None = None) -> jax.Array:
        a = tensor_anisotropy(self.predictor, batch, species_weights, self.species)
        return target_penalty(a, self.target, self.scale, batch)
