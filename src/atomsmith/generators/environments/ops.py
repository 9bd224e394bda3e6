"""Geometry of local environments shared by the environment generators (Gram-matrix VAE, equivariant VAE).

An *environment* is ``[n, 3]`` float array of neighbour vectors in Å, neighbour minus centre; the centre atom sits
at the origin and is never moved. Alignment is therefore a rotation about the centre (no translation).

* :func:`kabsch`: the orthogonal matrix ``R`` minimising ``|P R - Q|`` (proper rotations only, or all of O(3)).
* :func:`align`: rotation *and* correspondence. Neighbour labels of two environments do not correspond, so we
  minimise over both an orthogonal matrix and an assignment of atoms (Hungarian algorithm), alternating the two
  steps from several starting points (distance order, principal axes with all sign choices, random rotations)
  and keeping the best. ``P`` may hold fewer atoms than ``Q`` (partial alignment, used by infilling).
* :func:`aligned_rmsd`: RMSD after that optimal alignment (the reconstruction metric).
* per-environment statistics: centre-neighbour distances, bond angles at the centre, closest pair.
* conversion between environments and :class:`Crystal` clusters (for file io and the CLI).

All functions are NumPy (float64) and run on the host; nothing here is differentiated.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from atomsmith.structures.crystal import Crystal


class EnvironmentShapeError(ValueError):
    """An environment array that is not ``[n, 3]`` (or ``[m, n, 3]``) with finite entries."""


def check_environment(vectors: np.ndarray, name: str = "environment") -> np.ndarray:
    """Return ``vectors`` as float64 ``[n, 3]``; raise :class:`EnvironmentShapeError` otherwise."""
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise EnvironmentShapeError(f"{name} must have shape [n_neighbors, 3] with n >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise EnvironmentShapeError(f"{name} contains non-finite coordinates")
    return arr


# ----------------------------------------------------------------------------------------------- orthogonal fit
def kabsch(p: np.ndarray, q: np.ndarray, allow_reflection: bool = True, weights: np.ndarray | None = None
           ) -> np.ndarray:
    """Orthogonal ``R`` ``[3, 3]`` minimising ``sum_i w_i |p_i R - q_i|^2`` (rows are points, no translation).

    With ``allow_reflection`` the minimum is over O(3) (``det R = ±1``), otherwise over SO(3).
    Works for any number of points (for fewer than 3 the rotation is not unique; one optimum is returned).
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64)
    h = (p * w[:, None]).T @ q  # [3, 3]
    u, _, vt = np.linalg.svd(h)
    if not allow_reflection and np.linalg.det(u @ vt) < 0:
        u = u.copy()
        u[:, -1] *= -1.0
    return u @ vt


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 3, 3]`` uniformly distributed proper rotations (QR of Gaussian matrices, sign-fixed)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 3, 3))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    det = np.linalg.det(q)
    q[det < 0, :, 0] *= -1.0
    return q


def _principal_frame(x: np.ndarray) -> np.ndarray:
    """``[3, 3]`` orthonormal principal axes (columns) of the second moment ``x^T x``, largest first."""
    _, vecs = np.linalg.eigh(x.T @ x)
    return vecs[:, ::-1]


_SIGNS = np.array(list(itertools.product((1.0, -1.0), repeat=3)))  # [8, 3]
_DEFAULT_RANDOM = random_rotations(4, seed=12345)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Result of :func:`align` of ``p`` ``[k, 3]`` onto ``q`` ``[n, 3]`` (k <= n).

    Attributes:
      rotation: ``[3, 3]`` orthogonal; ``p @ rotation`` is ``p`` in ``q``'s frame.
      assignment: ``[k]`` index into ``q`` of the partner of each row of ``p`` (distinct).
      rmsd: ``sqrt(mean_i |p_i R - q_assignment[i]|^2)`` in Å.
      reflected: whether ``det(rotation) < 0``.
    """

    rotation: np.ndarray
    assignment: np.ndarray
    rmsd: float
    reflected: bool


def _refine(p: np.ndarray, q: np.ndarray, rot: np.ndarray, allow_reflection: bool, max_iter: int = 30
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternate Hungarian assignment and Kabsch from ``rot`` until the assignment stops changing."""
    assignment = None
    cost_value = np.inf
    for _ in range(max_iter):
        pr = p @ rot
        cost = np.sum((pr[:, None, :] - q[None, :, :]) ** 2, axis=-1)  # [k, n]
        rows, cols = linear_sum_assignment(cost)
        new = cols[np.argsort(rows)]
        value = float(cost[np.arange(len(p)), new].sum())
        if assignment is not None and np.array_equal(new, assignment):
            cost_value = value
            break
        assignment = new
        rot = kabsch(p, q[assignment], allow_reflection)
        cost_value = float(np.sum((p @ rot - q[assignment]) ** 2))
    return rot, assignment, cost_value


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Rows: orthonormal frame from two vectors (a, the part of b orthogonal to a, their cross product)."""
    na = np.linalg.norm(a)
    if na < 1e-9:
        return None
    e1 = a / na
    b_perp = b - (b @ e1) * e1
    nb = np.linalg.norm(b_perp)
    if nb < 1e-6 * max(np.linalg.norm(b), 1.0):
        return None
    e2 = b_perp / nb
    return np.stack([e1, e2, np.cross(e1, e2)])


def _pair_seeds(p: np.ndarray, q: np.ndarray, allow_reflection: bool, max_pair_seeds: int = 8
                ) -> list[np.ndarray]:
    """Rotations superposing the most spread pair (a, b) of ``p`` onto the best-matching ordered pairs of ``q``."""
    k, n = len(p), len(q)
    if k < 2 or n < 2:
        return []
    ia, ib = np.triu_indices(k, 1)
    area = np.linalg.norm(np.cross(p[ia], p[ib]), axis=1)
    best = int(np.argmax(area))
    a, b = ia[best], ib[best]
    ep = _frame(p[a], p[b])
    if ep is None:
        return []
    rq = np.linalg.norm(q, axis=1)
    dq = np.linalg.norm(q[:, None] - q[None, :], axis=-1)
    i, j = np.where(~np.eye(n, dtype=bool))
    score = ((np.linalg.norm(p[a]) - rq[i]) ** 2 + (np.linalg.norm(p[b]) - rq[j]) ** 2
             + (np.linalg.norm(p[a] - p[b]) - dq[i, j]) ** 2)
    seeds = []
    for m in np.argsort(score, kind="stable")[:max_pair_seeds]:
        eq = _frame(q[i[m]], q[j[m]])
        if eq is None:
            continue
        seeds.append(ep.T @ eq)
        if allow_reflection:
            seeds.append(ep.T @ (eq * np.array([1.0, 1.0, -1.0])[:, None]))
    return seeds


def align(p: np.ndarray, q: np.ndarray, allow_reflection: bool = True, permute: bool = True,
          n_random: int = 4, max_pair_seeds: int = 8) -> Alignment:
    """Best orthogonal matrix and atom correspondence taking environment ``p`` ``[k, 3]`` onto ``q`` ``[n, 3]``.

    Minimises ``sum_i |p_i R - q_{a(i)}|^2`` over orthogonal ``R`` (O(3) if ``allow_reflection``, else SO(3)) and
    injective assignments ``a`` (identity if ``permute`` is False, which needs ``k == n``). The joint problem is not
    convex; we run alternating Hungarian/Kabsch from many starts and keep the best: rotations that superpose a
    well-spread pair of atoms of ``p`` on the ``max_pair_seeds`` best-matching (by radii and separation) ordered
    pairs of ``q`` (both handednesses), the matched distance order and the 8 sign choices of principal axes (when
    ``k == n``), and ``n_random`` fixed random rotations. For environments of up to ~16 atoms this finds the global
    optimum in practice (tested against brute force, including partial alignment).

    Raises:
      EnvironmentShapeError: bad shapes, or ``k > n``.
    """
    p = check_environment(p, "p")
    q = check_environment(q, "q")
    k, n = len(p), len(q)
    if k > n:
        raise EnvironmentShapeError(f"cannot align {k} atoms onto an environment of {n}")
    if not permute:
        if k != n:
            raise EnvironmentShapeError("align(permute=False) needs environments of equal size")
        rot = kabsch(p, q, allow_reflection)
        rmsd = float(np.sqrt(np.mean(np.sum((p @ rot - q) ** 2, axis=1))))
        return Alignment(rot, np.arange(n), rmsd, bool(np.linalg.det(rot) < 0))
    starts = _pair_seeds(p, q, allow_reflection, max_pair_seeds)
    # distance-matched start: pair atoms of similar radius, then Kabsch
    if k == n:
        order_p = np.argsort(np.linalg.norm(p, axis=1))
        order_q = np.argsort(np.linalg.norm(q, axis=1))
        starts.append(kabsch(p[order_p], q[order_q], allow_reflection))
    if k >= 3 and k == n:
        fp, fq = _principal_frame(p), _principal_frame(q)
        for s in _SIGNS:
            rot = (fp * s) @ fq.T
            if allow_reflection or np.linalg.det(rot) > 0:
                starts.append(rot)
    rand = _DEFAULT_RANDOM if n_random == len(_DEFAULT_RANDOM) else random_rotations(n_random, seed=12345)
    starts.extend(rand)
    if allow_reflection:
        starts.extend(r @ np.diag([1.0, 1.0, -1.0]) for r in rand)
    best = None
    for rot in starts:
        rot, assignment, value = _refine(p, q, rot, allow_reflection)
        if best is None or value < best[2] - 1e-12:
            best = (rot, assignment, value)
    rot, assignment, value = best
    return Alignment(rot, assignment, float(np.sqrt(max(value, 0.0) / k)), bool(np.linalg.det(rot) < 0))


def aligned_rmsd(p: np.ndarray, q: np.ndarray, allow_reflection: bool = True, permute: bool = True) -> float:
    """RMSD (Å) between two environments of equal size after the optimal orthogonal map and assignment."""
    p = check_environment(p, "p")
    q = check_environment(q, "q")
    if len(p) != len(q):
        raise EnvironmentShapeError(f"environments differ in size: {len(p)} vs {len(q)}")
    return align(p, q, allow_reflection, permute).rmsd


def brute_force_rmsd(p: np.ndarray, q: np.ndarray, allow_reflection: bool = True) -> float:
    """Exact minimum over all injective assignments of ``p`` ``[k, 3]`` into ``q`` ``[n, 3]`` (Kabsch for each):
    a test reference for small sizes (``n! / (n - k)!`` Kabsch fits)."""
    p, q = check_environment(p, "p"), check_environment(q, "q")
    best = np.inf
    for perm in itertools.permutations(range(len(q)), len(p)):
        qq = q[list(perm)]
        rot = kabsch(p, qq, allow_reflection)
        best = min(best, float(np.mean(np.sum((p @ rot - qq) ** 2, axis=1))))
    return float(np.sqrt(best))


# ----------------------------------------------------------------------------------------------- statistics
def neighbor_distances(envs: np.ndarray) -> np.ndarray:
    """Centre-neighbour distances, Å: ``[m, n, 3] -> [m, n]`` (or ``[n, 3] -> [n]``)."""
    return np.linalg.norm(np.asarray(envs, np.float64), axis=-1)


def bond_angles(envs: np.ndarray, bond_cutoff: float = 2.85) -> np.ndarray:
    """Angles (degrees) j-centre-k between every pair of neighbours closer than ``bond_cutoff`` Å to the centre.

    ``envs``: ``[m, n, 3]`` or ``[n, 3]``. Returns a flat array over all environments (a-Si: ~109.5 ± 10°).
    """
    envs = np.asarray(envs, np.float64)
    if envs.ndim == 2:
        envs = envs[None]
    out = []
    for env in envs:
        d = np.linalg.norm(env, axis=1)
        bonded = env[d < bond_cutoff]
        if len(bonded) < 2:
            continue
        unit = bonded / np.linalg.norm(bonded, axis=1, keepdims=True)
        i, j = np.triu_indices(len(unit), 1)
        cos = np.clip(np.sum(unit[i] * unit[j], axis=1), -1.0, 1.0)
        out.append(np.degrees(np.arccos(cos)))
    return np.concatenate(out) if out else np.zeros(0)


def min_pair_distance(envs: np.ndarray) -> np.ndarray:
    """Closest pair (Å) among the centre and its neighbours, per environment: ``[m, n, 3] -> [m]``."""
    envs = np.asarray(envs, np.float64)
    single = envs.ndim == 2
    if single:
        envs = envs[None]
    pts = np.concatenate([np.zeros((len(envs), 1, 3)), envs], axis=1)
    d = np.linalg.norm(pts[:, :, None] - pts[:, None, :], axis=-1)
    iu = np.triu_indices(pts.shape[1], 1)
    out = d[:, iu[0], iu[1]].min(axis=1)
    return out[0] if single else out


def coordination(envs: np.ndarray, bond_cutoff: float = 2.85) -> np.ndarray:
    """Number of neighbours closer than ``bond_cutoff`` Å to the centre, per environment ``[m]``."""
    return np.sum(neighbor_distances(envs) < bond_cutoff, axis=-1)


def sort_by_distance(env: np.ndarray) -> np.ndarray:
    """The same environment with neighbours ordered by distance to the centre (closest first)."""
    env = np.asarray(env)
    return env[np.argsort(np.linalg.norm(env, axis=-1), kind="stable")]


# ----------------------------------------------------------------------------------------------- io helpers
def environment_to_crystal(vectors: np.ndarray, centre_number: int = 14,
                           neighbor_numbers: Sequence[int] | np.ndarray | None = None,
                           box: float | None = None, **properties) -> Crystal:
    """A cluster (centre at index 0, then the neighbours) in a cubic box, centre at the box centre.

    The box edge defaults to ``4 * max distance + 4`` Å so that no periodic image of any atom comes within the
    environment's radius of the centre (files written this way read back as the same environment).
    """
    vectors = check_environment(vectors)
    numbers = np.full(len(vectors), centre_number) if neighbor_numbers is None else np.asarray(neighbor_numbers)
    radius = float(np.max(np.linalg.norm(vectors, axis=1)))
    box = box if box is not None else 4.0 * radius + 4.0
    positions = np.concatenate([np.zeros((1, 3)), vectors]) + box / 2.0
    return Crystal.from_cartesian(np.eye(3) * box, positions, np.concatenate([[centre_number], numbers]),
                                  properties=properties)


def crystal_to_environment(crystal: Crystal, n_neighbors: int, r_cut: float, centre: int = 0) -> np.ndarray:
    """The environment ``[n_neighbors, 3]`` of atom ``centre`` of ``crystal`` (closest first).

    Raises:
      IndexError: ``centre`` is not an atom of the structure.
      atomsmith.graphs.environments.EnvironmentError_: fewer than ``n_neighbors`` neighbours within ``r_cut``.
    """
    from atomsmith.graphs.environments import local_environments

    if not 0 <= centre < crystal.n_atoms:
        raise IndexError(f"centre atom {centre} does not exist; the structure has {crystal.n_atoms} atoms")
    return local_environments(crystal, n_neighbors, r_cut, centres=np.array([centre])).vectors[0]


def neighbors_within(crystal: Crystal, centre: int, r_cut: float) -> np.ndarray:
    """All neighbour vectors ``[m, 3]`` (Å, over periodic images) of atom ``centre`` within ``r_cut``, closest
    first; ``m`` may be anything, including 0 (a partial environment, e.g. the held atoms for infilling)."""
    from atomsmith.graphs.neighbors import neighbor_list

    if not 0 <= centre < crystal.n_atoms:
        raise IndexError(f"centre atom {centre} does not exist; the structure has {crystal.n_atoms} atoms")
    graph = neighbor_list(crystal, r_cut)
    vectors = graph.vectors(crystal)[graph.receivers == centre]
    return sort_by_distance(vectors.reshape(-1, 3))
