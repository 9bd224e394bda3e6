"""A jit-compatible periodic neighbour list with fixed capacity, for use inside samplers where atoms move.

Allocate outside, update inside (as jax-md's ``partition.neighbor_list``): the caller fixes ``max_edges`` and the
image range on the host; inside ``jit`` the function returns exactly ``max_edges`` edges with a mask and an
``overflow`` flag that says the capacity was too small (then rebuild with a larger one on the host).
Every periodic image is enumerated explicitly, so it is exact for small and skewed cells, where minimum-image
conventions are wrong.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors import image_counts


class JaxNeighbors(NamedTuple):
    """Fixed-size edge set. Shapes: ``[max_edges]`` and ``[max_edges, 3]``; ``overflow`` is a scalar bool."""

    senders: jax.Array
    receivers: jax.Array
    shifts: jax.Array  # float, image offsets relative to the *given* (unwrapped) fractional coordinates
    mask: jax.Array
    overflow: jax.Array
    count: jax.Array


@dataclasses.dataclass(frozen=True)
class NeighborSpec:
    """Static (host-side) choices for :func:`neighbor_list_jax`.

    Attributes:
      cutoff: Å.
      max_edges: capacity of the edge arrays.
      n_images: largest |image offset| enumerated along each lattice vector.
    """

    cutoff: float
    max_edges: int
    n_images: tuple[int, int, int]

    @classmethod
    def for_lattice(cls, lattice: np.ndarray, cutoff: float, max_edges: int, margin: float = 0.0) -> NeighborSpec:
        """Image range large enough for ``lattice`` (and cells up to ``margin`` fractionally thinner)."""
        counts = image_counts(np.asarray(lattice) / (1.0 + margin), cutoff)
        return cls(float(cutoff), int(max_edges), tuple(int(c) for c in counts))

    def shift_grid(self) -> np.ndarray:
        grids = [np.arange(-c, c + 1) for c in self.n_images]
        return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)


def neighbor_list_jax(frac_coords: jax.Array, lattice: jax.Array, spec: NeighborSpec,
                      atom_mask: jax.Array | None = None) -> JaxNeighbors:
    """Edges (i <- j, image S) with ``|(f_j - f_i + S) L| < cutoff``, sorted by receiver i.

    Args:
      frac_coords: ``[n, 3]`` fractional coordinates (need not be wrapped).
      lattice: ``[3, 3]`` rows in Å.
      spec: static capacity and image range (:class:`NeighborSpec`).
      atom_mask: ``[n]`` bool, False for padding atoms (they get no edges).
    Returns:
      :class:`JaxNeighbors`; edge vectors are ``pos[s] - pos[r] + shifts @ lattice`` with ``pos = frac @ lattice``.
      Unused slots have mask False and point from atom 0 to itself with zero shift.
    """
    n = frac_coords.shape[0]
    grid = jnp.asarray(spec.shift_grid(), frac_coords.dtype)  # [S, 3]
    n_shifts = grid.shape[0]
    floor = jax.lax.stop_gradient(jnp.floor(frac_coords))
    wrapped = frac_coords - floor  # [0, 1)
    dfrac = wrapped[None, :, None, :] - wrapped[:, None, None, :] + grid[None, None, :, :]  # [i, j, S, 3]
    d2 = jnp.sum((dfrac @ lattice) ** 2, axis=-1)  # [i, j, S]
    within = d2 < spec.cutoff ** 2
    is_zero_shift = jnp.all(grid == 0, axis=-1)
    within &= ~(jnp.eye(n, dtype=bool)[:, :, None] & is_zero_shift[None, None, :])
    if atom_mask is not None:
        within &= atom_mask[:, None, None] & atom_mask[None, :, None]
    flat = within.reshape(-1)
    count = jnp.sum(flat)
    (index,) = jnp.nonzero(flat, size=spec.max_edges, fill_value=0)
    receivers = index // (n * n_shifts)
    senders = (index // n_shifts) % n
    s = index % n_shifts
    mask = jnp.arange(spec.max_edges) < count
    # undo the wrapping: vector = (f_j - fl_j) - (f_i - fl_i) + S  =>  shift w.r.t. raw coords = S - fl_j + fl_i
    shifts = grid[s] - floor[senders] + floor[receivers]
    shifts = jnp.where(mask[:, None], shifts, 0.0)
    senders = jnp.where(mask, senders, 0)
    receivers = jnp.where(mask, receivers, 0)
    return JaxNeighbors(senders, receivers, shifts, mask, count > spec.max_edges, count)
