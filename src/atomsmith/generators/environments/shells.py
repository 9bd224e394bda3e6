"""Relabellings of an environment's neighbours that keep distance-ordered blocks ("shells") in place.

The ``shell-perm`` losses of both environment VAEs take the minimum of their reconstruction error over these
permutations (576 for blocks 4 + 4), so the decoder may emit neighbours in any order inside a block.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

__all__ = ["shell_permutations"]


@functools.lru_cache(maxsize=16)
def shell_permutations(shells: tuple[int, ...]) -> np.ndarray:
    """``[P, n]`` every permutation of ``range(n)`` that maps each consecutive block of sizes ``shells`` to itself."""
    blocks, start = [], 0
    for size in shells:
        blocks.append([list(p) for p in itertools.permutations(range(start, start + size))])
        start += size
    return np.array([sum(parts, []) for parts in itertools.product(*blocks)], dtype=np.int32)
