"""Many crystals stored as a few flat arrays: the on-disk cache format and a fast way to hand data to training.

Atoms of all structures are concatenated; ``n_atoms`` says how many belong to each structure, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from atomsmith.structures.crystal import Crystal

_PROP, _SITE = "prop__", "site__"


@dataclasses.dataclass(frozen=True, eq=False)
class PackedCrystals:
    """``N`` crystals with ``A`` atoms in total.

    Attributes:
      n_atoms: ``[N]`` int64 atoms per structure.
      lattices: ``[N, 3, 3]`` float64 lattice rows, Å.
      frac_coords: ``[A, 3]`` float64 fractional coordinates.
      numbers: ``[A]`` int64 atomic numbers.
      properties: name -> ``[N, ...]`` array (float, int or unicode string).
      site_properties: name -> ``[A, ...]`` array.
    """

    n_atoms: np.ndarray
    lattices: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray
    properties: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    site_properties: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n_atoms = np.asarray(self.n_atoms, np.int64)
        n, a = len(n_atoms), int(n_atoms.sum())
        problems = []
        if n_atoms.ndim != 1 or np.any(n_atoms < 1):
            problems.append(f"n_atoms must be a 1D array of positive counts, got shape {n_atoms.shape}")
        if np.shape(self.lattices) != (n, 3, 3):
            problems.append(f"lattices has shape {np.shape(self.lattices)}, expected {(n, 3, 3)}")
        if np.shape(self.frac_coords) != (a, 3):
            problems.append(f"frac_coords has shape {np.shape(self.frac_coords)}, expected {(a, 3)}")
        if np.shape(self.numbers) != (a,):
            problems.append(f"numbers has shape {np.shape(self.numbers)}, expected {(a,)}")
        for key, value in self.properties.items():
            if np.shape(value)[:1] != (n,):
                problems.append(f"property {key!r} has shape {np.shape(value)}; first axis must be {n}")
        for key, value in self.site_properties.items():
            if np.shape(value)[:1] != (a,):
                problems.append(f"site property {key!r} has shape {np.shape(value)}; first axis must be {a}")
        if problems:
            raise ValueError("inconsistent packed crystals: " + "; ".join(problems))
        object.__setattr__(self, "n_atoms", n_atoms)
        object.__setattr__(self, "lattices", np.asarray(self.lattices, np.float64))
        object.__setattr__(self, "frac_coords", np.asarray(self.frac_coords, np.float64))
        object.__setattr__(self, "numbers", np.asarray(self.numbers, np.int64))
        # Plain dicts (not MappingProxyType) so that packs pickle between worker processes.
        object.__setattr__(self, "properties", {k: np.asarray(v) for k, v in self.properties.items()})
        object.__setattr__(self, "site_properties", {k: np.asarray(v) for k, v in self.site_properties.items()})

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def offsets(self) -> np.ndarray:
        """``[N + 1]`` start of each structure's atoms in the flat arrays (last entry = total atoms)."""
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    def head(self, count: int) -> PackedCrystals:
        """The first ``count`` structures."""
        count = max(0, min(int(count), len(self)))
        end = int(self.offsets[count])
        return PackedCrystals(self.n_atoms[:count], self.lattices[:count], self.frac_coords[:end],
                              self.numbers[:end], {k: v[:count] for k, v in self.properties.items()},
                              {k: v[:end] for k, v in self.site_properties.items()})

    def to_crystals(self) -> list[Crystal]:
        """One :class:`Crystal` per structure (validated by its constructor)."""
        offsets = self.offsets.tolist()
        # Scalars as Python values (float, int, str) once for all; tensors are sliced per structure.
        props = {k: (v.tolist() if v.ndim == 1 else v) for k, v in self.properties.items()}
        out = []
        for i in range(len(self)):
            lo, hi = offsets[i], offsets[i + 1]
            out.append(Crystal(self.lattices[i], self.frac_coords[lo:hi], self.numbers[lo:hi],
                               properties={k: v[i] for k, v in props.items()},
                               site_properties={k: v[lo:hi] for k, v in self.site_properties.items()}))
        return out

    @classmethod
    def from_crystals(cls, crystals: Sequence[Crystal]) -> PackedCrystals:
        """Pack crystals that all carry the same property and site-property names."""
        if not crystals:
            raise ValueError("cannot pack an empty list of crystals")
        keys, site_keys = set(crystals[0].properties), set(crystals[0].site_properties)
        for i, c in enumerate(crystals):
            if set(c.properties) != keys or set(c.site_properties) != site_keys:
                raise ValueError(f"crystal {i} has properties {sorted(c.properties)} / site properties "
                                 f"{sorted(c.site_properties)}; crystal 0 has {sorted(keys)} / {sorted(site_keys)}")
        props = {k: np.asarray([c.properties[k] for c in crystals]) for k in sorted(keys)}
        for k, v in props.items():
            if v.dtype.kind not in "biufU":
                raise ValueError(f"property {k!r} has dtype {v.dtype}; only numbers and strings can be packed")
        return cls(np.array([c.n_atoms for c in crystals]), np.stack([c.lattice for c in crystals]),
                   np.concatenate([c.frac_coords for c in crystals]), np.concatenate([c.numbers for c in crystals]),
                   props, {k: np.concatenate([c.site_properties[k] for c in crystals]) for k in sorted(site_keys)})

    @classmethod
    def concatenate(cls, parts: Sequence[PackedCrystals]) -> PackedCrystals:
        """Join packs with the same property names, in order."""
        first = parts[0]
        return cls(np.concatenate([p.n_atoms for p in parts]), np.concatenate([p.lattices for p in parts]),
                   np.concatenate([p.frac_coords for p in parts]), np.concatenate([p.numbers for p in parts]),
                   {k: np.concatenate([p.properties[k] for p in parts]) for k in first.properties},
                   {k: np.concatenate([p.site_properties[k] for p in parts]) for k in first.site_properties})

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array mapping (the ``.npz`` layout)."""
        arrays = {"n_atoms": self.n_atoms, "lattices": self.lattices, "frac_coords": self.frac_coords,
                  "numbers": self.numbers.astype(np.int16)}
        arrays.update({_PROP + k: v for k, v in self.properties.items()})
        arrays.update({_SITE + k: v for k, v in self.site_properties.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PackedCrystals:
        """Inverse of :meth:`to_arrays`; raises ``ValueError``/``KeyError`` on inconsistent input."""
        return cls(arrays["n_atoms"], arrays["lattices"], arrays["frac_coords"], arrays["numbers"],
                   {k[len(_PROP):]: v for k, v in arrays.items() if k.startswith(_PROP)},
                   {k[len(_SITE):]: v for k, v in arrays.items() if k.startswith(_SITE)})
