"""Best-so-far curves against the number of objective evaluations, and their summary over seeds.

A curve is a sequence of ``(evaluations so far, best normalised reward so far)`` points with non-decreasing
evaluation counts (``-inf`` before the first finished structure). Baselines that spend one evaluation per structure
(random search, sampling) give a curve with :func:`curve_from_returns`; MCTS records its own points (several
evaluations per move, see :class:`atomsmith.assembly.selfplay.EpisodeResult`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def curve_from_returns(returns: Sequence[float]) -> list[tuple[int, float]]:
    """``[(k, max(returns[:k]))]`` for ``k = 1..len(returns)``: one evaluation per return (higher is better)."""
    r = np.asarray(returns, np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {r.shape}")
    best = np.maximum.accumulate(r) if r.size else r
    return [(k + 1, float(b)) for k, b in enumerate(best)]


def _checked(curve: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    if len(curve) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    arr = np.asarray(curve, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("a curve is a sequence of (evaluations, best) pairs")
    evals, best = arr[:, 0], arr[:, 1]
    if np.any(np.diff(evals) < 0):
        raise ValueError("evaluation counts of a curve must be non-decreasing")
    return evals, best


def best_at(curve: Sequence[tuple[int, float]], counts: Sequence[int]) -> np.ndarray:
    """Best reward reached within each evaluation budget in ``counts`` (``-inf`` if nothing finished by then).

    Budgets beyond the curve's last point are ``nan`` (the run did not spend that many evaluations), so a short run
    is never credited with a budget it did not use.
    """
    evals, best = _checked(curve)
    out = np.full(len(counts), -np.inf)
    for i, c in enumerate(counts):
        if evals.size == 0 or c > evals[-1]:
            out[i] = np.nan
            continue
        within = best[evals <= c]
        if within.size:
            out[i] = np.max(within)
    return out


def evaluations_to_reach(curve: Sequence[tuple[int, float]], level: float, tol: float = 1e-9) -> int | None:
    """First evaluation count at which the curve reaches ``level`` (None if never)."""
    evals, best = _checked(curve)
    hit = np.flatnonzero(best >= level - tol)
    return int(evals[hit[0]]) if hit.size else None


def summarise(curves: Sequence[Sequence[tuple[int, float]]], counts: Sequence[int]) -> dict:
    """Mean, std (ddof 0) and per-seed values of :func:`best_at` over several runs (seeds).

    Returns ``{"counts": [...], "mean": [...], "std": [...], "per_seed": [[...], ...], "n": [...]}``; ``n`` is how
    many runs reached each budget with a finished structure (``nan``/``-inf`` runs are left out of mean and std).
    """
    values = np.stack([best_at(c, counts) for c in curves]) if curves else np.zeros((0, len(counts)))
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    mean = np.array([values[ok[:, j], j].mean() if n[j] else np.nan for j in range(len(counts))])
    std = np.array([values[ok[:, j], j].std() if n[j] else np.nan for j in range(len(counts))])
    return {"counts": [int(c) for c in counts], "mean": mean.tolist(), "std": std.tolist(),
            "per_seed": values.tolist(), "n": n.tolist()}
