"""Held-out metrics of environment generators (shared by the Gram-VAE and equivariant-VAE experiments).

Environments are ``[n, 3]`` / ``[m, n, 3]`` neighbour vectors in Å (centre at the origin); see
:mod:`atomsmith.generators.environments.ops` for alignment and per-environment statistics.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from atomsmith.generators.environments import ops
from atomsmith.metrics.distributions import wasserstein


def reconstruction_rmsd(recon: np.ndarray, truth: np.ndarray, allow_reflection: bool = True) -> np.ndarray:
    """``[m]`` RMSD (Å) of each reconstruction after the optimal orthogonal map (O(3), or SO(3) without
    ``allow_reflection``) and assignment of neighbours."""
    return np.array([ops.aligned_rmsd(a, b, allow_reflection) for a, b in zip(recon, truth)])


def assignment_rmsd(recon: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[m]`` RMSD (Å) after the optimal assignment of neighbours only, *no rotation*: for reconstructions that
    should already be in the input's frame."""
    out = []
    for a, b in zip(np.asarray(recon, np.float64), np.asarray(truth, np.float64)):
        cost = np.sum((a[:, None] - b[None]) ** 2, axis=-1)
        rows, cols = linear_sum_assignment(cost)
        out.append(np.sqrt(cost[rows, cols].mean()))
    return np.array(out)


def generation_metrics(samples: np.ndarray, held_out: np.ndarray) -> dict:
    """W1 distances between generated and held-out neighbour distances (Å) and bond angles (°, < 2.85 Å), the
    fraction of samples with no pair closer than 2.0 Å, and the mean coordination (< 2.85 Å)."""
    return {
        "w1_neighbor_distance": wasserstein(ops.neighbor_distances(samples).ravel(),
                                            ops.neighbor_distances(held_out).ravel()),
        "w1_bond_angle": wasserstein(ops.bond_angles(samples), ops.bond_angles(held_out)),
        "fraction_no_pair_below_2A": float(np.mean(ops.min_pair_distance(samples) >= 2.0)),
        "mean_coordination_2.85": float(np.mean(ops.coordination(samples))),
    }


def free_atom_errors(generated: np.ndarray, truth_free: np.ndarray) -> np.ndarray:
    """Distance (Å) of each true free atom to its generated partner (best assignment), both in the fixed atoms'
    frame: ``[n_free]`` in the order of ``truth_free``."""
    cost = np.sum((generated[:, None] - truth_free[None]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(cost)
    out = np.empty(len(truth_free))
    out[cols] = np.sqrt(cost[rows, cols])
    return out


def free_atom_rmsd(generated: np.ndarray, truth_free: np.ndarray) -> float:
    """RMSD (Å) between generated and true free atoms, both in the fixed atoms' frame, best assignment."""
    return float(np.sqrt(np.mean(free_atom_errors(generated, truth_free) ** 2)))


def retrieval_infill(fixed: np.ndarray, library: np.ndarray) -> np.ndarray:
    """Baseline: the library environment whose best partial alignment fits the fixed atoms best; its other
    atoms, moved into the fixed atoms' frame, are the prediction."""
    best = None
    for env in library:
        al = ops.align(fixed, env)
        if best is None or al.rmsd < best[0]:
            best = (al.rmsd, env, al)
    _, env, al = best
    moved = env @ al.rotation.T
    return moved[np.setdiff1d(np.arange(len(env)), al.assignment)]


def infill_tasks(test: np.ndarray, ks, n_envs: int, seed: int) -> list[tuple[int, int, np.ndarray]]:
    """``(k, environment index, held atom indices)`` for each k and each of ``n_envs`` held-out environments,
    drawn exactly as the Gram-VAE experiment draws them (same seed, same tasks)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(test), size=min(n_envs, len(test)), replace=False)
    return [(k, int(idx), rng.permutation(test.shape[1])[:k]) for k in ks for idx in chosen]
