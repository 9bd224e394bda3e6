"""The one generator protocol: every generative model in atomsmith offers the same ``sample`` verb.

The CLI, notebooks and experiments talk to this protocol, never to model internals.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax

from atomsmith.structures.crystal import Crystal


class InvalidRequestError(ValueError):
    """A request a generator cannot serve (wrong environment size, k out of range, unknown sampling source, ...)."""


@runtime_checkable
class Generator(Protocol):
    """A model that draws crystals.

    ``sample(key, n, *, conditions=None, guidance=None, fixed=None) -> list[Crystal]``

    Args:
      key: a ``jax.random`` key; the same key (and arguments) gives the same structures.
      n: number of structures.
      conditions: model-specific conditioning. Generators that support structure prediction accept
        ``{"composition": ...}`` (atomic numbers per structure, or one composition for all).
      guidance: a sequence of shared objective objects (property targets, energies, validity); models that
        do not support guidance raise ``NotImplementedError`` when it is given.
      fixed: which atoms are held (infilling); same rule as ``guidance``.
    """

    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None,
               guidance: Sequence[Any] | None = None, fixed: Any = None) -> list[Crystal]:
        ...


@dataclasses.dataclass(frozen=True)
class FixedAtoms:
    """Infilling request for crystal generators: hold the atoms (and by default the cell) of ``crystal`` and
    generate ``n_free`` more atoms in it.

    Attributes:
      crystal: the partial structure; its lattice (Å) and atoms (fractional coordinates, atomic numbers) are held.
      n_free: number of atoms to generate (>= 1).
      free_species: atomic numbers of the generated atoms (``n_free`` of them), or ``None`` to generate them too.
      hold_lattice: keep ``crystal.lattice`` (True) or generate the cell as well (held fractional coordinates).
    """

    crystal: Crystal
    n_free: int
    free_species: tuple[int, ...] | None = None
    hold_lattice: bool = True

    def __post_init__(self) -> None:
        if int(self.n_free) < 1:
            raise InvalidRequestError(f"n_free must be >= 1, got {self.n_free}")
        if self.free_species is not None:
            object.__setattr__(self, "free_species", tuple(int(z) for z in self.free_species))
            if len(self.free_species) != int(self.n_free):
                raise InvalidRequestError(f"free_species lists {len(self.free_species)} atoms for n_free = "
                                          f"{self.n_free}")

    @property
    def n_atoms(self) -> int:
        """Atoms of the completed cell."""
        return self.crystal.n_atoms + int(self.n_free)
