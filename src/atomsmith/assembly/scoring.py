"""Score structures that did not come from the assembly environment (e.g. diffusion samples) with a task's objective.

:func:`score_crystals` returns the same normalised reward ``R`` the environment gives a finished structure
(:meth:`AssemblyTask.normalise` of the task's guidance objective), so baselines and MCTS share one scale. Only tasks
without a finishing relaxation are supported here (a relaxation is defined in the task's fixed cell; use
``AssemblyEnv.reset(fixed=crystal)`` + ``finish`` for those).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atomsmith.assembly.env import AssemblyEnv
from atomsmith.graphs.batching import batch_graphs
from atomsmith.metrics.validity import min_pair_distance
from atomsmith.structures.crystal import Crystal


class UnsupportedScoringError(ValueError):
    """Raised when a task's objective cannot be evaluated on arbitrary crystals."""


def objective_values(env: AssemblyEnv, crystals: Sequence[Crystal], batch_size: int = 64) -> np.ndarray:
    """``[n]`` raw objective values (lower is better) of ``crystals`` under ``env``'s guidance objective."""
    if env.task.relax_steps > 0:
        raise UnsupportedScoringError(
            f"task {env.task.name!r} relaxes finished structures in its own cell; score those through the environment")
    crystals = list(crystals)
    out = []
    for start in range(0, len(crystals), batch_size):
        chunk = crystals[start:start + batch_size]
        batch = batch_graphs(chunk, cutoff=env.objective_cutoff)
        out.append(np.asarray(env.objective(batch), np.float64)[: len(chunk)])
    return np.concatenate(out) if out else np.zeros(0)


def score_crystals(env: AssemblyEnv, crystals: Sequence[Crystal], respect_min_distance: bool = False,
                   batch_size: int = 64) -> np.ndarray:
    """``[n]`` normalised rewards ``R`` (higher is better) of ``crystals``.

    With ``respect_min_distance`` a structure with two distinct atoms closer than the task's ``min_distance`` (Å),
    which the assembly environment can never build, gets the task's ``dead_end_return`` instead.
    """
    crystals = list(crystals)
    rewards = np.asarray(env.task.normalise(objective_values(env, crystals, batch_size)), np.float64)
    if respect_min_distance:
        d = env.task.min_distance
        ok = np.array([min_pair_distance(c, d) >= d for c in crystals], bool)
        rewards = np.where(ok, rewards, env.task.dead_end_return)
    return rewards
