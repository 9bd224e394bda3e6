"""A Verlet list (neighbour list with a skin) for dynamics inside ``jit``: build with ``cutoff + skin``, reuse it
while no pair can have crossed into the cutoff, rebuild with ``lax.cond`` otherwise.

Positions are kept unwrapped; the list's image shifts refer to those raw coordinates, so they stay valid as atoms
cross cell faces. A list built at ``(x0, L0)`` holds every pair within ``rc + skin``; a pair outside it is
still farther than ``rc`` at ``(x, L)`` as long as ``2 max_i |x_i - x0_i| + sum_k s_k |L_k - L0_k| < skin``
(``s_k`` bounds the image offsets along lattice vector k), which is the rebuild test used here.

Builds use the shared :func:`~atomsmith.graphs.neighbors_jax.neighbor_list_jax` (exact for any cell). When the
cell is wide enough for the minimum-image convention (``cutoff < h_k / 2`` for every plane spacing ``h_k``, checked
on the host), :meth:`NeighborSpec.for_lattice` gives it a one-image window, so each pair costs one distance instead
of 27, which is what makes 512-atom MD affordable here.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors_jax import JaxNeighbors, NeighborSpec
from atomsmith.physics.stillinger_weber import neighbors_for


class VerletList(NamedTuple):
    """Edges within ``spec.cutoff`` (= rc + skin) of the reference configuration, and that configuration.

    ``ref_positions [n, 3]`` Å, ``ref_lattice [3, 3]`` Å, ``n_builds`` (int32 count of builds, for diagnostics),
    ``overflow`` (bool, sticky: some build exceeded the edge capacity).
    """

    neighbors: JaxNeighbors
    ref_positions: jax.Array
    ref_lattice: jax.Array
    n_builds: jax.Array
    overflow: jax.Array


@dataclasses.dataclass(frozen=True)
class ListSpec:
    """Static choices for a Verlet list: the shared :class:`NeighborSpec` (cutoff = rc + skin, capacity, image
    range, and the per-pair image window chosen on the host)."""

    neighbor_spec: NeighborSpec

    @property
    def cutoff(self) -> float:
        return self.neighbor_spec.cutoff

    @property
    def minimum_image(self) -> bool:
        """True when one image per pair is tried (the minimum-image convention is exact for this cell)."""
        return self.neighbor_spec.window == (0, 0, 0)

    @classmethod
    def for_cell(cls, lattice, cutoff: float, max_edges: int, margin: float = 0.0,
                 allow_minimum_image: bool = True) -> ListSpec:
        """Spec for ``lattice`` ``[3, 3]`` Å (and cells up to ``margin`` fractionally thinner); with
        ``allow_minimum_image=False`` every image of the grid is tried for every pair."""
        spec = NeighborSpec.for_lattice(np.asarray(lattice, np.float64), cutoff, max_edges, margin)
        if not allow_minimum_image:
            spec = dataclasses.replace(spec, window=None)
        return cls(spec)


def neighbors(positions: jax.Array, lattice: jax.Array, spec: ListSpec) -> JaxNeighbors:
    """Edges within ``spec.cutoff`` for ``positions`` ``[n, 3]`` Å (the shared jit neighbour list)."""
    return neighbors_for(positions, lattice, spec.neighbor_spec)


def build(positions: jax.Array, lattice: jax.Array, spec: ListSpec) -> VerletList:
    """A fresh list at ``positions`` ``[n, 3]`` Å and ``lattice`` ``[3, 3]`` Å."""
    nbrs = neighbors(positions, lattice, spec)
    return VerletList(nbrs, jax.lax.stop_gradient(positions), jax.lax.stop_gradient(lattice),
                      jnp.asarray(1, jnp.int32), nbrs.overflow)


def needs_rebuild(vlist: VerletList, positions: jax.Array, lattice: jax.Array, skin: float) -> jax.Array:
    """True when a pair outside the list could now be within ``spec.cutoff - skin``."""
    disp = jnp.sqrt(jnp.max(jnp.sum((positions - vlist.ref_positions) ** 2, axis=-1)))
    shift_bound = jnp.max(jnp.abs(vlist.neighbors.shifts), axis=0) + 1.0  # [3]
    cell_change = jnp.sum(shift_bound * jnp.linalg.norm(lattice - vlist.ref_lattice, axis=-1))
    return 2.0 * disp + cell_change > skin


def update(vlist: VerletList, positions: jax.Array, lattice: jax.Array, spec: ListSpec,
           skin: float) -> VerletList:
    """Rebuild if :func:`needs_rebuild`, otherwise return ``vlist`` unchanged (jit-friendly; under ``vmap`` the
    ``cond`` turns into a select and both branches run, i.e. a rebuild every step)."""

    def rebuild(_):
        fresh = build(positions, lattice, spec)
        return fresh._replace(n_builds=vlist.n_builds + 1, overflow=vlist.overflow | fresh.overflow)

    return jax.lax.cond(needs_rebuild(vlist, positions, lattice, skin), rebuild, lambda _: vlist, None)
