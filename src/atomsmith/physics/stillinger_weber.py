"""The Stillinger-Weber potential for silicon in JAX: energy from positions + lattice, forces and stress by autodiff.

Functional form (Stillinger & Weber, Phys. Rev. B 31, 5262 (1985)), with ``rc = a * sigma``::

    E = sum_{i<j} phi2(r_ij) + sum_i sum_{j<k} phi3(r_ij, r_ik, theta_jik)
    phi2(r) = A eps [B (sigma/r)^p - (sigma/r)^q] exp(sigma / (r - a sigma))                   (r < rc)
    phi3 = lambda eps (cos theta_jik - cos theta0)^2 exp(gamma sigma/(r_ij - a sigma)) exp(gamma sigma/(r_ik - a sigma))

Edges follow the atomsmith convention (``graphs.neighbors``): edge e points from centre ``receivers[e]`` to
neighbour ``senders[e]`` with vector ``pos[s] - pos[r] + shifts[e] @ lattice``; every pair appears in both directions
and each periodic image separately, so cells smaller than twice the cutoff are exact (an atom may even be its own
neighbour through an image). The pair sum is half the sum over directed edges. The three-body sum needs pairs of
edges that share a centre: inside ``jit`` the edges within ``rc`` are scattered into a padded per-atom table
``[n_atoms, max_degree]`` and every unordered pair of table slots is one (j, k) term; a flag reports a degree above
``max_degree``.

NaN safety (double ``where``): lengths of masked edges are computed from a dummy value, and both exponential cutoff
factors are evaluated only for ``r / sigma < a - 1e-3``; above that ``exp(1 / (r/sigma - a)) < exp(-555)``, which is
exactly zero in float32 and float64, so the energy is unchanged while gradients stay finite at ``r -> rc``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors_jax import JaxNeighbors, NeighborSpec, neighbor_list_jax

#: Stay this far (in units of sigma) below ``a`` when evaluating exp(1/(r/sigma - a)); the factor is 0 beyond.
_CUTOFF_GUARD = 1e-3


@dataclasses.dataclass(frozen=True)
class SWParams:
    """Stillinger-Weber parameters (defaults: the original silicon set).

    Attributes:
      epsilon: energy unit, eV.  sigma: length unit, Å.  a: cutoff in units of sigma (rc = a sigma).
      lam: three-body strength lambda.  gamma: three-body decay.  A, B, p, q: two-body constants.
      cos_theta0: preferred angle cosine (-1/3: tetrahedral).
    """

    epsilon: float = 2.1683
    sigma: float = 2.0951
    a: float = 1.80
    lam: float = 21.0
    gamma: float = 1.20
    A: float = 7.049556277
    B: float = 0.6022245584
    p: float = 4.0
    q: float = 0.0
    cos_theta0: float = -1.0 / 3.0

    @property
    def cutoff(self) -> float:
        """rc = a * sigma in Å (3.77118 Å for silicon)."""
        return self.a * self.sigma


#: The original Stillinger-Weber silicon parameters.
SILICON = SWParams()

#: The parameters refitted to amorphous silicon by Vink, Barkema, van der Weg & Mousseau, J. Non-Cryst. Solids 282,
#: 248 (2001): lambda = 31.5 (stiffer bond angles, against the five-fold defects of original SW a-Si) and
#: epsilon = 1.64833 eV, all else as the original set. Ideal diamond has every angle tetrahedral, so its three-body
#: energy vanishes and its energy is the pair term alone: the lattice constant stays at the original 5.431 Å
#: (the pair minimum at r = 2^(1/6) sigma = 2.3517 Å) and the energy scales with epsilon, E = -2 epsilon =
#: -3.29666 eV/atom (original: -4.3366 eV/atom). Derived here from the functional form; tests check both by
#: minimising the energy over the lattice constant.
VINK = SWParams(epsilon=1.64833, lam=31.5)

#: Named parameter sets (``atomsmith data make-asi --potential NAME``).
PARAMETER_SETS = {"original": SILICON, "vink": VINK}


def parameter_set(name: str) -> SWParams:
    """The :class:`SWParams` called ``name`` in :data:`PARAMETER_SETS`; raises ``ValueError`` for an unknown one."""
    try:
        return PARAMETER_SETS[name]
    except KeyError:
        raise ValueError(f"unknown SW parameter set {name!r}; known: {', '.join(PARAMETER_SETS)}") from None


class SWOutput(NamedTuple):
    """Energy (eV), forces ``[n, 3]`` (eV/Å), stress ``[3, 3]`` (eV/Å^3, ``(1/V) dE/d strain``: positive is
    tensile, the ase convention) and ``overflow`` (True when an atom had more than ``max_degree`` neighbours within
    rc, or the edge list overflowed; the numbers are then wrong)."""

    energy: jax.Array
    forces: jax.Array
    stress: jax.Array
    overflow: jax.Array


def _cutoff_exp(r: jax.Array, inside: jax.Array, scale: float, params: SWParams) -> jax.Array:
    """``exp(scale / (r/sigma - a))`` where ``inside`` (r well below rc), else 0; finite gradient everywhere."""
    x = jnp.where(inside, r / params.sigma - params.a, -1.0)
    return jnp.where(inside, jnp.exp(scale / x), 0.0)


def pair_term(r: jax.Array, inside: jax.Array, params: SWParams = SILICON) -> jax.Array:
    """phi2(r) in eV for distances ``r`` (Å, any shape) where ``inside``; 0 elsewhere."""
    r_safe = jnp.where(inside, r, params.sigma)
    s = params.sigma / r_safe
    radial = params.A * params.epsilon * (params.B * s ** params.p - s ** params.q)
    return jnp.where(inside, radial, 0.0) * _cutoff_exp(r, inside, 1.0, params)


def _inside(r: jax.Array, valid: jax.Array, params: SWParams) -> jax.Array:
    return valid & (r < (params.a - _CUTOFF_GUARD) * params.sigma)


def degree_table(receivers: jax.Array, within: jax.Array, n_atoms: int, max_degree: int
                 ) -> tuple[jax.Array, jax.Array]:
    """Per-atom table of edge indices, built inside jit from a fixed-capacity edge list.

    The kept edges must be grouped by centre in ascending order (as :func:`neighbor_list_jax` returns them; the
    dropped ones may be anywhere). The k-th kept edge overall is found by a binary search in the running count of
    kept edges, so no sort or scatter is needed.

    Args:
      receivers: ``[E]`` int centre of each edge.
      within: ``[E]`` bool, which edges to keep.
      n_atoms: number of atoms (static).  max_degree: table width (static).
    Returns:
      ``table`` ``[n_atoms, max_degree]`` int (kept edges of atom i in slots ``0..deg_i-1``; empty slots hold ``E``,
      one past the last edge) and ``bad`` (scalar bool: some atom had more than ``max_degree`` kept edges, or the
      kept edges were not sorted by centre; the table is then incomplete).
    """
    n_edges = receivers.shape[0]
    kept = within.astype(jnp.int32)
    running = jnp.cumsum(kept)  # [E] number of kept edges up to and including e
    counts = jax.ops.segment_sum(kept, jnp.where(within, receivers, 0), n_atoms)  # [n]
    starts = jnp.cumsum(counts) - counts
    slots = jnp.arange(max_degree, dtype=jnp.int32)
    rank = starts[:, None] + slots[None, :]  # [n, D] global rank of each slot's edge among kept edges
    index = jnp.searchsorted(running, rank + 1, side="left").astype(jnp.int32)
    table = jnp.where(slots[None, :] < counts[:, None], index, n_edges)
    marked = jnp.where(within, receivers, -1)
    unsorted = jnp.any(within & (jax.lax.cummax(marked, axis=0) != marked))
    return table, jnp.any(counts > max_degree) | unsorted


def sw_node_energies(vectors: jax.Array, receivers: jax.Array, mask: jax.Array, n_atoms: int,
                     params: SWParams = SILICON, max_degree: int = 16) -> tuple[jax.Array, jax.Array]:
    """Per-atom SW energies from edge vectors: half of each pair term on each end, three-body terms on the centre.

    Args:
      vectors: ``[E, 3]`` edge vectors in Å (neighbour minus centre, images included).
      receivers: ``[E]`` int centre of each edge; the real edges must be grouped by centre in ascending order (as
        :func:`neighbor_list_jax` returns them; masked edges may be anywhere).
      mask: ``[E]`` bool, real edges.  n_atoms: number of atoms (static).
      params: :class:`SWParams`.  max_degree: static width of the per-atom three-body table.
    Returns:
      ``(node_energy, overflow)``: ``[n_atoms]`` eV, and True if an atom had more than ``max_degree`` neighbours
      within rc or the edges were not grouped by centre (its three-body terms are then incomplete).
    """
    r = jnp.sqrt(jnp.where(mask, jnp.sum(vectors ** 2, axis=-1), 1.0))
    inside = _inside(r, mask, params)
    node_pair = 0.5 * jax.ops.segment_sum(pair_term(r, inside, params), jnp.where(inside, receivers, 0),
                                          num_segments=n_atoms)
    table, overflow = degree_table(receivers, jax.lax.stop_gradient(inside), n_atoms, max_degree)
    pad = lambda x, v: jnp.concatenate([x, jnp.full((1,) + x.shape[1:], v, x.dtype)])  # noqa: E731
    vec_t = pad(vectors, 0.0)[table]  # [n, D, 3]
    r_t = pad(r, 1.0)[table]  # [n, D]
    in_t = pad(inside, False)[table]
    f_t = _cutoff_exp(r_t, in_t, params.gamma, params)  # [n, D], 0 on empty slots
    cos = jnp.sum(vec_t[:, :, None, :] * vec_t[:, None, :, :], axis=-1) / (r_t[:, :, None] * r_t[:, None, :])
    upper = jnp.triu(jnp.ones((max_degree, max_degree), bool), k=1)
    angular = jnp.where(upper, (cos - params.cos_theta0) ** 2, 0.0)
    node_three = params.lam * params.epsilon * jnp.sum(angular * f_t[:, :, None] * f_t[:, None, :], axis=(1, 2))
    return node_pair + node_three, overflow


def sw_energy_from_edges(positions: jax.Array, lattice: jax.Array, senders: jax.Array, receivers: jax.Array,
                         shifts: jax.Array, mask: jax.Array, params: SWParams = SILICON, max_degree: int = 16
                         ) -> tuple[jax.Array, jax.Array]:
    """Total SW energy from a fixed edge list (which may extend beyond rc: a Verlet list with a skin).

    Args:
      positions: ``[n, 3]`` Cartesian Å (unwrapped is fine; ``shifts`` must match them).
      lattice: ``[3, 3]`` rows in Å.
      senders, receivers: ``[E]`` int.  shifts: ``[E, 3]`` image offsets.  mask: ``[E]`` bool (real edges).
      params: :class:`SWParams`.  max_degree: static width of the per-atom three-body table.
    Returns:
      ``(energy, overflow)``: energy in eV (scalar), ``overflow`` True if an atom had more than ``max_degree``
      neighbours within rc (its surplus three-body terms are then missing).
    """
    vectors = positions[senders] - positions[receivers] + shifts.astype(positions.dtype) @ lattice  # [E, 3]
    node_energy, overflow = sw_node_energies(vectors, receivers, mask, positions.shape[0], params, max_degree)
    return jnp.sum(node_energy), overflow


def neighbors_for(positions: jax.Array, lattice: jax.Array, spec: NeighborSpec) -> JaxNeighbors:
    """:func:`neighbor_list_jax` from Cartesian positions (no gradient flows through the list)."""
    positions = jax.lax.stop_gradient(positions)
    lattice = jax.lax.stop_gradient(lattice)
    frac = jnp.linalg.solve(lattice.T, positions.T).T
    return jax.lax.stop_gradient(neighbor_list_jax(frac, lattice, spec))


def sw_energy(positions: jax.Array, lattice: jax.Array, neighbors: JaxNeighbors, params: SWParams = SILICON,
              max_degree: int = 16) -> tuple[jax.Array, jax.Array]:
    """SW energy (eV) and overflow flag for a :class:`JaxNeighbors` edge set (cutoff >= rc)."""
    energy, overflow = sw_energy_from_edges(positions, lattice, neighbors.senders, neighbors.receivers,
                                            neighbors.shifts, neighbors.mask, params, max_degree)
    return energy, overflow | neighbors.overflow


def sw_energy_forces_stress(positions: jax.Array, lattice: jax.Array, neighbors: JaxNeighbors,
                            params: SWParams = SILICON, max_degree: int = 16) -> SWOutput:
    """Energy, forces ``-dE/dpos`` and stress ``(1/V) dE/d strain`` (symmetric) by autodiff.

    The strain ``eps`` acts on positions and lattice rows together: ``pos (I + eps)``, ``lattice (I + eps)``.
    """

    def strained(pos, strain):
        deform = jnp.eye(3, dtype=pos.dtype) + strain
        return sw_energy(pos @ deform, lattice @ deform, neighbors, params, max_degree)

    zero = jnp.zeros((3, 3), positions.dtype)
    (energy, overflow), (grad_pos, grad_strain) = jax.value_and_grad(strained, argnums=(0, 1), has_aux=True)(
        positions, zero)
    volume = jnp.abs(jnp.linalg.det(lattice))
    stress = 0.5 * (grad_strain + grad_strain.T) / volume
    return SWOutput(energy, -grad_pos, stress, overflow)


def spec_for(lattice: np.ndarray, n_atoms: int, cutoff: float, max_neighbors: int = 40,
             margin: float = 0.0) -> NeighborSpec:
    """A :class:`NeighborSpec` for one cell: capacity ``max_neighbors * n_atoms`` edges."""
    return NeighborSpec.for_lattice(np.asarray(lattice, np.float64), cutoff, max_neighbors * n_atoms, margin)


def evaluate(crystal, params: SWParams = SILICON, max_degree: int = 32, max_neighbors: int = 64) -> dict:
    """Host convenience: SW energy (eV), forces (eV/Å) and stress (eV/Å^3) of a :class:`Crystal`.

    Computes in the current default float precision (float64 under ``jax.enable_x64(True)``). Raises
    ``ValueError`` if the neighbour capacity or ``max_degree`` was too small.
    """
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    positions = jnp.asarray(crystal.positions, dtype)
    lattice = jnp.asarray(crystal.lattice, dtype)
    spec = spec_for(crystal.lattice, crystal.n_atoms, params.cutoff, max_neighbors)
    out = _evaluate_jit(positions, lattice, spec, params, max_degree)
    if bool(out.overflow):
        raise ValueError(f"neighbour capacity exceeded (max_neighbors={max_neighbors}, max_degree={max_degree}); "
                         "increase them")
    return {"energy": float(out.energy), "forces": np.asarray(out.forces, np.float64),
            "stress": np.asarray(out.stress, np.float64)}


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _evaluate_jit(positions, lattice, spec, params, max_degree):
    nbrs = neighbors_for(positions, lattice, spec)
    return sw_energy_forces_stress(positions, lattice, nbrs, params, max_degree)


@dataclasses.dataclass(frozen=True)
class SWModel:
    """A hashable energy model (usable as a static ``jit`` argument by MD and relaxation).

    ``model(positions [n, 3] Å, lattice [3, 3] Å, neighbors) -> (energy eV, overflow bool)``; ``cutoff`` in Å.
    """

    params: SWParams = SILICON
    max_degree: int = 24

    @property
    def cutoff(self) -> float:
        return self.params.cutoff

    def __call__(self, positions: jax.Array, lattice: jax.Array, neighbors: JaxNeighbors
                 ) -> tuple[jax.Array, jax.Array]:
        return sw_energy(positions, lattice, neighbors, self.params, self.max_degree)
