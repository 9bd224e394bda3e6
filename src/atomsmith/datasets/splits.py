"""Deterministic train/test subsets for datasets without a published split (the BaTiO3 set).

Items are ordered by the sha256 of ``"<seed>:<index>"``: the result depends only on ``n``, the fraction and the
seed, never on the NumPy version or random state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` index arrays partitioning ``range(n)``; ``round(n * test_fraction)`` are test."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    keys = [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n)]
    order = sorted(range(n), key=keys.__getitem__)
    n_test = int(round(n * test_fraction))
    return np.sort(np.array(order[n_test:], np.int64)), np.sort(np.array(order[:n_test], np.int64))


def random_split(items: Sequence[T], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[T], list[T]]:
    """Split ``items`` into ``(train, test)`` lists with :func:`split_indices` (original order kept in each)."""
    train, test = split_indices(len(items), test_fraction, seed)
    return [items[i] for i in train], [items[i] for i in test]
