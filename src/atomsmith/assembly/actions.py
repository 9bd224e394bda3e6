"""The action space: species x direction x radius around a canonical focus atom, plus STOP; and its legality.

Action ``a < S*D*R`` places species ``s = a // (D*R)`` at ``x_focus + radii[r] * (u_d @ frame)`` with
``d, r = divmod(a % (D*R), R)``; ``a = S*D*R`` is STOP. The first atom of an empty cell goes to the origin
(only ``d = r = 0`` is legal then).

**Canonical focus**: the lowest-index placed atom that is not *closed* (fewer than ``max_coordination`` bonded
neighbours and at least one legal placement); this removes most order redundancy (transpositions).

**Local frame** (rows x, y, z): z along the shortest bond from the focus (any periodic image, shorter than
``bond_cutoff``), x from the next shortest non-collinear bond by Gram-Schmidt, y = z x x. With fewer bonds the lattice
vectors a1 (then a2) stand in, so the frame, and with it every placement, rotates with the structure (SO(3)).

**Direction sets** (unit vectors in the local frame):
``tetrahedral``: the poles (0, 180 deg) and polar angles 45, 70.53, 109.47, 135 deg at azimuths 0, 60, ..., 300 deg
(26 directions; with z and x along two bonds of a tetrahedron the two missing bonds are at 109.47 deg, +-120 deg).
``cubic``: the 26 directions to the faces, edges and corners of a cube (6 + 12 + 8).

**Masks** (exact over periodic images): no atom closer than ``min_distance``; the new atom has at most
``max_coordination`` bonded neighbours and none of them exceeds ``max_coordination``; species with atoms left;
STOP only when ``task.allow_stop``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.assembly.state import AssemblyState
from atomsmith.assembly.tasks import AssemblyTask
from atomsmith.graphs.neighbors import image_counts


@functools.lru_cache(maxsize=None)
def direction_set(name: str) -> np.ndarray:
    """``[D, 3]`` unit vectors in the local frame (see module docstring)."""
    if name == "tetrahedral":
        dirs = [(0.0, 0.0, 1.0), (0.0, 0.0, -1.0)]
        for polar in (45.0, np.degrees(np.arccos(1 / 3)), np.degrees(np.arccos(-1 / 3)), 135.0):
            t = np.radians(polar)
            for k in range(6):
                p = np.radians(60.0 * k)
                dirs.append((np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)))
        out = np.asarray(dirs)
    elif name == "cubic":
        grid = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
        grid = grid[np.any(grid != 0, axis=1)]
        out = grid / np.linalg.norm(grid, axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown direction set {name!r}; use 'tetrahedral' or 'cubic'")
    return out.astype(np.float32)


def n_actions(task: AssemblyTask) -> int:
    """``S * D * R + 1`` (the last is STOP)."""
    return task.n_species * len(direction_set(task.directions)) * len(task.radii) + 1


def stop_action(task: AssemblyTask) -> int:
    return n_actions(task) - 1


@functools.lru_cache(maxsize=None)
def image_grid(task: AssemblyTask) -> np.ndarray:
    """``[K, 3]`` integer image offsets that cover ``bond_cutoff`` after minimum-image wrapping."""
    counts = image_counts(task.lattice_array, task.bond_cutoff)
    grids = [np.arange(-c, c + 1) for c in counts]
    return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)


def image_vectors(points: jax.Array, positions: jax.Array, lattice: jax.Array, grid: jax.Array) -> jax.Array:
    """``[P, N, K, 3]`` vectors from each point ``[P, 3]`` to every periodic image of ``positions [N, 3]`` (Å)."""
    inv = jnp.linalg.inv(lattice)
    frac = (positions[None, :, :] - points[:, None, :]) @ inv  # [P, N, 3]
    frac = frac - jnp.round(frac)
    return (frac[:, :, None, :] + grid[None, None, :, :]) @ lattice


def _distances(points, positions, lattice, grid):
    v = image_vectors(points, positions, lattice, grid)
    return jnp.sqrt(jnp.sum(v * v, axis=-1) + 1e-12), v  # [P, N, K]


def coordination(task: AssemblyTask, positions: jax.Array, occupied: jax.Array, lattice: jax.Array) -> jax.Array:
    """``[N]`` bonded neighbours (distance < ``bond_cutoff``, every image, self-images included) of each slot."""
    grid = jnp.asarray(image_grid(task), positions.dtype)
    dist, _ = _distances(positions, positions, lattice, grid)  # [N, N, K]
    bonded = (dist < task.bond_cutoff) & (dist > 1e-3) & occupied[None, :, None] & occupied[:, None, None]
    return jnp.sum(bonded, axis=(1, 2))


def local_frame(task: AssemblyTask, positions: jax.Array, occupied: jax.Array, focus: jax.Array,
                lattice: jax.Array) -> jax.Array:
    """``[3, 3]`` rows x, y, z of the focus's local frame (see module docstring)."""
    grid = jnp.asarray(image_grid(task), positions.dtype)
    dist, vec = _distances(positions[focus][None], positions, lattice, grid)
    dist, vec = dist[0].reshape(-1), vec[0].reshape(-1, 3)  # [N*K]
    k = grid.shape[0]
    ok = (dist < task.bond_cutoff) & (dist > 1e-3) & jnp.repeat(occupied, k)
    big = 1e6
    d1 = jnp.where(ok, dist, big)
    i1 = jnp.argmin(d1)
    has1 = d1[i1] < big
    a1 = lattice[0] / jnp.linalg.norm(lattice[0])
    a2 = lattice[1] / jnp.linalg.norm(lattice[1])
    z = jnp.where(has1, vec[i1] / dist[i1], a1)
    cos = jnp.abs(vec @ z) / dist
    d2 = jnp.where(ok & (cos < 0.95), dist, big)
    i2 = jnp.argmin(d2)
    has2 = has1 & (d2[i2] < big)
    lattice_ref = jnp.where(jnp.abs(a1 @ z) < 0.95, a1, a2)
    lattice_ref = jnp.where(has1, lattice_ref, a2)
    ref = jnp.where(has2, vec[i2] / dist[i2], lattice_ref)
    x = ref - (ref @ z) * z
    x = x / jnp.linalg.norm(x)
    y = jnp.cross(z, x)
    return jnp.stack([x, y, z])


def candidates(task: AssemblyTask, positions: jax.Array, focus: jax.Array, frame: jax.Array) -> jax.Array:
    """``[D*R, 3]`` Cartesian positions (Å) of the placements around the focus (direction-major)."""
    dirs = jnp.asarray(direction_set(task.directions), positions.dtype) @ frame  # [D, 3]
    radii = jnp.asarray(task.radii, positions.dtype)
    offsets = dirs[:, None, :] * radii[None, :, None]  # [D, R, 3]
    return (positions[jnp.maximum(focus, 0)] + offsets).reshape(-1, 3)


def geometry_mask(task: AssemblyTask, points: jax.Array, positions: jax.Array, occupied: jax.Array,
                  coord: jax.Array, lattice: jax.Array) -> jax.Array:
    """``[P]`` bool: placing an atom at ``points [P, 3]`` keeps min distance and maximum coordination."""
    grid = jnp.asarray(image_grid(task), positions.dtype)
    dist, _ = _distances(points, positions, lattice, grid)  # [P, N, K]
    occ = occupied[None, :, None]
    clash = jnp.any((dist < task.min_distance) & occ, axis=(1, 2))
    bonded = (dist < task.bond_cutoff) & occ
    new_coord = jnp.sum(bonded, axis=(1, 2))
    full_neighbour = jnp.any(bonded & (coord >= task.max_coordination)[None, :, None], axis=(1, 2))
    return ~clash & (new_coord <= task.max_coordination) & ~full_neighbour


def refresh(task: AssemblyTask, state: AssemblyState, lattice: jax.Array) -> AssemblyState:
    """Recompute focus, frame, legal actions, ``closed``, ``complete`` and ``done`` of ``state``."""
    occupied = state.occupied
    coord = coordination(task, state.positions, occupied, lattice)
    closed = state.closed | (occupied & (coord >= task.max_coordination))
    species_ok = state.remaining > 0  # [S]
    complete = ~jnp.any(species_ok)

    def first_open(closed):
        open_ = occupied & ~closed
        return jnp.where(jnp.any(open_), jnp.argmax(open_), -1)

    def mask_for(focus):
        frame = local_frame(task, state.positions, occupied, focus, lattice)
        pts = candidates(task, state.positions, focus, frame)
        return frame, geometry_mask(task, pts, state.positions, occupied, coord, lattice)

    def cond(carry):
        closed, focus, _, geo = carry
        return (focus >= 0) & ~jnp.any(geo) & ~complete

    def body(carry):
        closed, focus, _, _ = carry
        closed = closed.at[focus].set(True)
        focus = first_open(closed)
        frame, geo = mask_for(jnp.maximum(focus, 0))
        return closed, focus, frame, geo & (focus >= 0)

    focus0 = first_open(closed)
    frame0, geo0 = mask_for(jnp.maximum(focus0, 0))
    closed, focus, frame, geo = jax.lax.while_loop(cond, body, (closed, focus0, frame0, geo0 & (focus0 >= 0)))

    n_place = geo.shape[0]
    first_atom = state.n == 0
    seed_geo = jnp.arange(n_place) == 0
    geo = jnp.where(first_atom, seed_geo, geo)
    place = (species_ok[:, None] & geo[None, :]).reshape(-1)
    stop = jnp.asarray(task.allow_stop) & (state.n > 0) & ~complete
    legal = jnp.concatenate([place, stop[None]]) & ~complete
    done = complete | ~jnp.any(legal)
    return state.replace(closed=closed, focus=jnp.where(first_atom, -1, focus), frame=frame, legal=legal,
                         done=done, complete=complete)


def decode(task: AssemblyTask, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``action -> (species index, placement index in [0, D*R))``."""
    per_species = len(direction_set(task.directions)) * len(task.radii)
    return action // per_species, action % per_species
