"""Assembly tasks: the cell, the composition, the action geometry and the objective to minimise.

A task is a frozen, hashable dataclass (a static ``jit`` argument). Built-in tasks:

==================  ============================================================================================
``a-si-64``         64 Si in a cubic cell at a-Si density (2.29 g/cm^3, edge 10.93 Å); tetrahedral direction set,
                    radii 0.95/1.00/1.05/1.15/1.30 x 2.35 Å (the long ones let growth fill voids; with only the bond
                    length every random episode dead-ended), at most 4 neighbours within 2.75 Å, no pair below 2.0 Å.
                    Objective: Stillinger-Weber energy per atom after a short FIRE relaxation (eV/atom).
``a-si-8``          the same rules with 8 atoms (edge 5.47 Å), a tiny task for tests.
``perov-heat-ref``  a perov_5-like cell: V Rh F N O in a 4.02 Å cubic cell (a composition of perov_5:test),
                    cubic direction set, radii 2.0/2.85/3.5 Å. Objective: ``PropertyTarget`` on the shipped
                    ``perov-5-heat-ref`` predictor (target 0.5 eV, scale 0.5 eV), no relaxation.
==================  ============================================================================================
"""

from __future__ import annotations

import dataclasses

import numpy as np

AVOGADRO = 6.02214076e23
SI_MASS = 28.0855  # g/mol
SI_BOND = 2.35  # Å, Stillinger-Weber equilibrium bond length


class UnknownTaskError(ValueError):
    """Raised for a task name that is not built in."""


@dataclasses.dataclass(frozen=True)
class AssemblyTask:
    """Static description of an assembly problem (all lengths in Å).

    Attributes:
      name: task name.
      lattice: cell rows ``((ax, ay, az), ...)`` in Å (fixed for the whole episode).
      species: atomic numbers of the species the agent may place, ``(S,)``.
      counts: how many atoms of each species the finished structure holds, ``(S,)``.
      directions: ``"tetrahedral"`` or ``"cubic"`` (see :mod:`atomsmith.assembly.actions`).
      radii: bond-length bins, Å, ``(R,)``.
      min_distance: no two atoms (any periodic images) closer than this, Å.
      bond_cutoff: atoms closer than this are bonded (coordination, local frame), Å.
      max_coordination: no atom may have more bonded neighbours than this.
      objective: ``"sw_energy"`` (SW energy per atom, eV/atom) or ``"heat_ref"`` (predictor target).
      relax_steps: FIRE steps on the finished structure before the objective (0: none).
      relax_fmax: FIRE force threshold, eV/Å.
      reward_offset, reward_scale: normalised reward ``R = -(objective - offset) / scale``.
      dead_end_return: return of an episode that stops before the composition is complete, minus the missing
        fraction of atoms (always below the return of any reasonable finished structure).
      shaping: add the potential-based shaping term (unrelaxed SW energy of the atoms placed so far); the return of
        an episode still equals the terminal ``R`` minus the potential of the start state.
      target: property target of ``heat_ref`` tasks (eV); ``target_scale``: its scale (eV).
      allow_stop: whether STOP is legal before the composition is complete.
    """

    name: str
    lattice: tuple
    species: tuple
    counts: tuple
    directions: str = "tetrahedral"
    radii: tuple = tuple(f * SI_BOND for f in (0.95, 1.0, 1.05, 1.15, 1.3))
    min_distance: float = 2.0
    bond_cutoff: float = 2.75
    max_coordination: int = 4
    objective: str = "sw_energy"
    relax_steps: int = 100
    relax_fmax: float = 0.05
    reward_offset: float = -4.0
    reward_scale: float = 0.25
    dead_end_return: float = -3.0
    shaping: bool = True
    target: float = 0.0
    target_scale: float = 1.0
    allow_stop: bool = False

    def __post_init__(self) -> None:
        if len(self.species) != len(self.counts) or not self.species:
            raise ValueError("species and counts must be non-empty and of the same length")
        if min(self.counts) < 1:
            raise ValueError(f"every species needs a positive count, got {self.counts}")
        if self.min_distance <= 0 or self.bond_cutoff <= self.min_distance:
            raise ValueError("need 0 < min_distance < bond_cutoff")
        if self.objective not in ("sw_energy", "heat_ref"):
            raise ValueError(f"unknown objective {self.objective!r}")
        if self.reward_scale <= 0:
            raise ValueError("reward_scale must be positive")
        if np.linalg.det(np.asarray(self.lattice, float)) <= 0:
            raise ValueError("the lattice must be right-handed with positive volume")

    @property
    def n_atoms(self) -> int:
        """Atoms in the finished structure."""
        return int(sum(self.counts))

    @property
    def n_species(self) -> int:
        return len(self.species)

    @property
    def lattice_array(self) -> np.ndarray:
        return np.asarray(self.lattice, np.float64)

    def normalise(self, objective_value):
        """Objective value (lower is better) -> reward ``-(v - offset) / scale`` (higher is better)."""
        return -(objective_value - self.reward_offset) / self.reward_scale


def _cubic(edge: float) -> tuple:
    return ((edge, 0.0, 0.0), (0.0, edge, 0.0), (0.0, 0.0, edge))


def asi_edge(n_atoms: int, density: float = 2.29) -> float:
    """Edge (Å) of a cubic cell holding ``n_atoms`` Si at ``density`` g/cm^3."""
    volume = n_atoms * SI_MASS / (AVOGADRO * density) * 1e24
    return float(volume ** (1.0 / 3.0))


TASK_NAMES = ("a-si-64", "a-si-8", "perov-heat-ref")


def make_task(name: str, **overrides) -> AssemblyTask:
    """A built-in task by name (see module docstring), with field overrides."""
    if name in ("a-si-64", "a-si-8"):
        n = 64 if name == "a-si-64" else 8
        base = dict(name=name, lattice=_cubic(asi_edge(n)), species=(14,), counts=(n,))
    elif name == "perov-heat-ref":
        base = dict(name=name, lattice=_cubic(4.02), species=(23, 45, 9, 7, 8), counts=(1, 1, 1, 1, 1),
                    directions="cubic", radii=(2.0, 2.85, 3.5), min_distance=1.7, bond_cutoff=3.0,
                    max_coordination=24, objective="heat_ref", relax_steps=0, reward_offset=0.0,
                    reward_scale=1.0, dead_end_return=-10.0, shaping=False, target=0.5, target_scale=0.5)
    else:
        raise UnknownTaskError(f"unknown assembly task {name!r}; built in: {TASK_NAMES}")
    return AssemblyTask(**{**base, **overrides})
