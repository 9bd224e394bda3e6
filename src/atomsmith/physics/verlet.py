"""A Verlet list (neighbour list with a skin) for dynamics inside ``jit``: build with ``cutoff + skin``, reuse it
while no pair can have crossed into the cutoff, rebuild with ``lax.cond`` otherwise.

Positions are kept unwrapped; the list's image shifts refer to those raw coordinates, so they stay valid as atoms
cross cell faces. A list built at ``(x0, L0)`` holds every pair within ``rc + skin``; a pair outside it is
still farther than ``rc`` at ``(x, L)`` as long as ``2 max_i |x_i - x0_i| + sum_k s_k |L_k - L0_k| < skin``
(``s_k`` bounds the image offsets along lattice vector k), which is the rebuild test used here.

Builds use the shared :func:`~atomsmith.graphs.neighbors_jax.neighbor_list_jax` (every image enumerated, exact for
any cell) unless the cell is wide enough for the minimum-image convention to be exact (``cutoff < h_k / 2`` for
every plane spacing ``h_k``, checked on the host): then :func:`minimum_image_neighbors` gives the same edge set
from an ``[n, n]`` instead of an ``[n, n, 27]`` distance array, which is what makes 512-atom MD affordable here.
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


def minimum_image_ok(lattice, cutoff: float, margin: float = 0.0) -> bool:
    """Host check: is every neighbour within ``cutoff`` (Å) the nearest image (``cutoff < h_k / 2`` for all plane
    spacings ``h_k``, with the cell allowed to shrink by the fraction ``margin``)?"""
    reciprocal = np.linalg.inv(np.asarray(lattice, np.float64) / (1.0 + margin)).T
    return bool(np.all(cutoff * np.linalg.norm(reciprocal, axis=1) < 0.5))


def compact(flags: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Indices of the first ``size`` True entries of the 1-D ``flags`` (ascending; 0 beyond the count) and the
    count. Same result as ``jnp.nonzero(flags, size=size, fill_value=0)`` via a running count and a binary search,
    which is faster on CPU."""
    running = jnp.cumsum(flags.astype(jnp.int32))
    index = jnp.searchsorted(running, jnp.arange(1, size + 1, dtype=jnp.int32), side="left",
                             method="scan_unrolled")
    count = running[-1]
    return jnp.where(jnp.arange(size) < count, index, 0).astype(jnp.int32), count


def minimum_image_neighbors(positions: jax.Array, lattice: jax.Array, cutoff: float, max_edges: int
                            ) -> JaxNeighbors:
    """Edges within ``cutoff`` by the minimum-image convention; valid only where :func:`minimum_image_ok`.

    Same output convention as :func:`~atomsmith.graphs.neighbors_jax.neighbor_list_jax` (sorted by receiver,
    ``max_edges`` slots, mask, overflow flag; shifts refer to the raw, unwrapped ``positions`` ``[n, 3]`` Å).
    """
    positions = jax.lax.stop_gradient(positions)
    lattice = jax.lax.stop_gradient(lattice)
    n = positions.shape[0]
    frac = jnp.linalg.solve(lattice.T, positions.T).T
    # one [i, j] array per component (fuses into a single loop on CPU; a batched [n, n, 3] @ [3, 3] is slow there)
    dfrac = [frac[None, :, k] - frac[:, None, k] for k in range(3)]  # f_j - f_i
    image = [-jnp.round(d) for d in dfrac]
    r2 = sum(sum((dfrac[k] + image[k]) * lattice[k, c] for k in range(3)) ** 2 for c in range(3))
    flat = ((r2 < cutoff ** 2) & ~jnp.eye(n, dtype=bool)).reshape(-1)
    index, count = compact(flat, max_edges)
    mask = jnp.arange(max_edges) < count
    receivers = jnp.where(mask, index // n, 0)
    senders = jnp.where(mask, index % n, 0)
    shifts = jnp.stack([im.reshape(-1)[index] for im in image], axis=-1)
    shifts = jnp.where(mask[:, None], shifts, 0.0)
    return JaxNeighbors(senders, receivers, shifts, mask, count > max_edges, count)


@dataclasses.dataclass(frozen=True)
class ListSpec:
    """Static choices for a Verlet list: the shared :class:`NeighborSpec` (cutoff = rc + skin, capacity, image
    range) and whether the minimum-image builder is exact for this cell (decided on the host)."""

    neighbor_spec: NeighborSpec
    minimum_image: bool

    @property
    def cutoff(self) -> float:
        return self.neighbor_spec.cutoff

    @classmethod
    def for_cell(cls, lattice, cutoff: float, max_edges: int, margin: float = 0.0,
                 allow_minimum_image: bool = True) -> ListSpec:
        """Spec for ``lattice`` ``[3, 3]`` Å (and cells up to ``margin`` fractionally thinner)."""
        spec = NeighborSpec.for_lattice(np.asarray(lattice, np.float64), cutoff, max_edges, margin)
        return cls(spec, allow_minimum_image and minimum_image_ok(lattice, cutoff, margin))


def neighbors(positions: jax.Array, lattice: jax.Array, spec: ListSpec) -> JaxNeighbors:
    """Edges within ``spec.cutoff`` for ``positions`` ``[n, 3]`` Å, by the builder ``spec`` selects."""
    if spec.minimum_image:
        return minimum_image_neighbors(positions, lattice, spec.cutoff, spec.neighbor_spec.max_edges)
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
