"""Applicability of a predictor: is a structure (or a guidance target) inside what it saw in training?

A predictor answers with a number for any structure, also for one far from its training data (a 1-atom Pu cell, a
400 Å cell holding 2 atoms, a 576-atom zeolite for a model of 5-atom perovskites). :class:`TrainingDomain` records
what the training set covered; :func:`check_structure` lists, per structure, every way it lies far outside:

* an element absent from the training set;
* an atom count outside ``[n_min / N_ATOMS_FACTOR, n_max * N_ATOMS_FACTOR]``;
* a volume per atom (Å^3) or mass density (g/cm^3) outside the training range widened by ``SPREAD_FACTOR`` on
  either side (multiplicatively);
* a lattice vector longer than ``LENGTH_FACTOR`` times the longest in training.

:func:`check_request` does the same for a guidance target or range against the training range of the target
property. The checks are cheap (no model evaluation) and never change a prediction: they only warn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from atomsmith.structures.crystal import Crystal

#: An atom count counts as far outside below ``n_min / N_ATOMS_FACTOR`` or above ``n_max * N_ATOMS_FACTOR``.
N_ATOMS_FACTOR = 2.0
#: Volume per atom and density count as far outside beyond ``[low / SPREAD_FACTOR, high * SPREAD_FACTOR]``.
SPREAD_FACTOR = 1.5
#: A lattice vector counts as far outside when longer than ``LENGTH_FACTOR`` times the longest in training.
LENGTH_FACTOR = 2.0


class OutOfDomainWarning(UserWarning):
    """A structure or request lies far outside a predictor's training data (the prediction may be meaningless)."""


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z)


@dataclasses.dataclass(frozen=True)
class TrainingDomain:
    """What a predictor's training structures covered.

    Attributes:
      elements: atomic numbers present in training (sorted).
      n_atoms: ``(min, max)`` atoms per structure.
      volume_per_atom: ``(min, max)`` cell volume per atom, Å^3.
      density: ``(min, max)`` mass density, g/cm^3.
      max_length: the longest lattice vector in training, Å.
      target: ``(min, max)`` of a structure-level scalar target (its units, e.g. eV), else ``None``.
      n_structures: size of the training set.
    """

    elements: tuple[int, ...]
    n_atoms: tuple[int, int]
    volume_per_atom: tuple[float, float]
    density: tuple[float, float]
    max_length: float
    target: tuple[float, float] | None = None
    n_structures: int = 0

    @classmethod
    def from_crystals(cls, crystals: Sequence[Crystal], values: Sequence[Any] | None = None) -> TrainingDomain:
        """The domain of ``crystals`` (and of ``values``, the target per structure, when scalars)."""
        crystals = list(crystals)
        if not crystals:
            raise ValueError("a training domain needs at least one structure")
        sizes = np.array([c.n_atoms for c in crystals])
        vpa = np.array([c.volume / c.n_atoms for c in crystals])
        density = np.array([c.density for c in crystals])
        length = max(float(np.linalg.norm(c.lattice, axis=1).max()) for c in crystals)
        target = None
        if values is not None and all(np.ndim(v) == 0 for v in values):
            v = np.asarray(values, np.float64)
            target = (float(v.min()), float(v.max()))
        return cls(elements=tuple(sorted({int(z) for c in crystals for z in c.numbers})),
                   n_atoms=(int(sizes.min()), int(sizes.max())),
                   volume_per_atom=(float(vpa.min()), float(vpa.max())),
                   density=(float(density.min()), float(density.max())), max_length=length, target=target,
                   n_structures=len(crystals))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (checkpoint metadata, registry)."""
        return {"elements": list(self.elements), "n_atoms": list(self.n_atoms),
                "volume_per_atom": list(self.volume_per_atom), "density": list(self.density),
                "max_length": self.max_length, "target": list(self.target) if self.target is not None else None,
                "n_structures": self.n_structures}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingDomain:
        target = data.get("target")
        return cls(elements=tuple(int(z) for z in data["elements"]), n_atoms=tuple(int(n) for n in data["n_atoms"]),
                   volume_per_atom=tuple(float(x) for x in data["volume_per_atom"]),
                   density=tuple(float(x) for x in data["density"]), max_length=float(data["max_length"]),
                   target=tuple(float(x) for x in target) if target is not None else None,
                   n_structures=int(data.get("n_structures", 0)))


def _outside(value: float, low: float, high: float, factor: float) -> bool:
    return value < low / factor or value > high * factor


def check_structure(crystal: Crystal, domain: TrainingDomain | None) -> list[str]:
    """Every way ``crystal`` lies far outside ``domain`` (one short message each; empty when inside or unknown)."""
    if domain is None:
        return []
    problems = []
    unknown = sorted({int(z) for z in crystal.numbers} - set(domain.elements))
    if unknown:
        problems.append(f"element{'s' if len(unknown) > 1 else ''} {', '.join(_symbol(z) for z in unknown)} not in "
                        f"the training data ({len(domain.elements)} elements)")
    low, high = domain.n_atoms
    if _outside(crystal.n_atoms, low, high, N_ATOMS_FACTOR):
        seen = f"{low}" if low == high else f"{low}-{high}"
        problems.append(f"{crystal.n_atoms} atoms (training: {seen})")
    vpa = crystal.volume / crystal.n_atoms
    if _outside(vpa, *domain.volume_per_atom, SPREAD_FACTOR):
        problems.append(f"{vpa:.4g} Å^3 per atom (training: {domain.volume_per_atom[0]:.3g}-"
                        f"{domain.volume_per_atom[1]:.3g})")
    density = crystal.density
    if _outside(density, *domain.density, SPREAD_FACTOR):
        problems.append(f"density {density:.3g} g/cm^3 (training: {domain.density[0]:.3g}-{domain.density[1]:.3g})")
    length = float(np.linalg.norm(crystal.lattice, axis=1).max())
    if length > LENGTH_FACTOR * domain.max_length:
        problems.append(f"a {length:.4g} Å lattice vector (training: up to {domain.max_length:.3g} Å)")
    return problems


def check_request(name: str, low: float | None, high: float | None, domain: TrainingDomain | None) -> list[str]:
    """A message when the requested value (``low == high``) or range ``[low, high]`` (an open end: ``None`` or
    infinite) of property ``name`` lies outside the values the predictor saw in training; empty when inside or
    unknown."""
    if domain is None or domain.target is None:
        return []
    seen_low, seen_high = domain.target
    lo = -np.inf if low is None else float(low)
    hi = np.inf if high is None else float(high)
    if seen_low <= hi and lo <= seen_high:
        return []

    def end(x: float) -> str:
        return "" if np.isinf(x) else f"{x:g}"

    asked = f"target {name}={lo:g}" if lo == hi else f"range {name}={end(lo)}:{end(hi)}"
    return [f"{asked} is outside the values its predictor saw in training ({seen_low:.3g} to {seen_high:.3g}); "
            "the guidance extrapolates"]
