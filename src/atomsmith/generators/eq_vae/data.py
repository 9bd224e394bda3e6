"""Environments with species for the equivariant VAE: neighbour vectors plus atomic numbers (centre first).

The a-Si data, split and environment extraction are the Gram VAE's (:func:`atomsmith.generators.gram_vae.
split_cells`, :func:`atomsmith.graphs.environments.local_environments`); this module only carries the species
along, so the same code serves multi-element environments (perov_5, BaTiO3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from atomsmith.graphs.environments import local_environments
from atomsmith.structures.crystal import Crystal


@dataclasses.dataclass(frozen=True)
class EnvironmentSet:
    """``m`` environments.

    Attributes:
      vectors: ``[m, n, 3]`` float32 Å, neighbour minus centre, closest first.
      numbers: ``[m, n + 1]`` int32 atomic numbers, centre first, then the neighbours in the order of ``vectors``.
    """

    vectors: np.ndarray
    numbers: np.ndarray

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, np.float32)
        z = np.asarray(self.numbers, np.int32)
        if v.ndim != 3 or v.shape[-1] != 3 or z.shape != (v.shape[0], v.shape[1] + 1):
            raise ValueError(f"vectors [m, n, 3] and numbers [m, n + 1] expected, got {v.shape} and {z.shape}")
        object.__setattr__(self, "vectors", v)
        object.__setattr__(self, "numbers", z)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def n_neighbors(self) -> int:
        return self.vectors.shape[1]

    @classmethod
    def of_silicon(cls, vectors: np.ndarray) -> EnvironmentSet:
        """Si environments from vectors alone (all atoms Si)."""
        v = np.asarray(vectors, np.float32)
        if v.ndim == 2:
            v = v[None]
        return cls(v, np.full((v.shape[0], v.shape[1] + 1), 14, np.int32))

    def subset(self, index) -> EnvironmentSet:
        return EnvironmentSet(self.vectors[index], self.numbers[index])

    def distance_ordered(self) -> EnvironmentSet:
        """The same environments with neighbours (and their species) sorted by distance to the centre."""
        order = np.argsort(np.linalg.norm(self.vectors, axis=-1), axis=1, kind="stable")
        vectors = np.take_along_axis(self.vectors, order[:, :, None], axis=1)
        numbers = np.concatenate([self.numbers[:, :1], np.take_along_axis(self.numbers[:, 1:], order, axis=1)], 1)
        return EnvironmentSet(vectors, numbers)

    def elements(self) -> tuple[int, ...]:
        return tuple(sorted(set(np.unique(self.numbers).tolist())))


def environment_set(crystals: Sequence[Crystal], n_neighbors: int, r_cut: float) -> EnvironmentSet:
    """Environments of every atom of every structure (atoms with fewer than ``n_neighbors`` neighbours within
    ``r_cut`` are skipped), with species."""
    vectors, numbers = [], []
    for crystal in crystals:
        env = local_environments(crystal, n_neighbors, r_cut, strict=False)
        vectors.append(env.vectors)
        numbers.append(np.concatenate([env.centre_numbers[:, None], env.neighbor_numbers], axis=1))
    if not vectors:
        return EnvironmentSet(np.zeros((0, n_neighbors, 3)), np.zeros((0, n_neighbors + 1)))
    return EnvironmentSet(np.concatenate(vectors), np.concatenate(numbers))
