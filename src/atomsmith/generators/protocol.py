"""The one generator protocol: every generative model in atomsmith offers the same ``sample`` verb.

The API, the CLI, notebooks and experiments talk to this protocol, never to model internals:

* :class:`Generator` is the verb, ``sample(key, n, *, conditions=None, guidance=None, fixed=None, options=None)``.
* :class:`Capabilities` is what a model declares it can be asked for (composition, held cell, guidance, held atoms
  of a crystal, held neighbours of an environment), and what it makes (crystals or environments).
* :class:`FixedAtoms` and :class:`FixedNeighbors` are the typed infilling requests.
* :class:`GeneratorBase` owns the request validation shared by every model (as distrax's ``Distribution`` owns
  ``sample``): a request for a capability the model does not declare gets one :class:`UnsupportedRequestError`
  naming the model; the model's own options dataclass (``options_type``) replaces free keyword arguments (keywords
  naming its fields are accepted as a shorthand).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import numpy as np

from atomsmith.structures.crystal import Crystal

__all__ = ["Capabilities", "FixedAtoms", "FixedNeighbors", "Generator", "GeneratorBase", "InvalidRequestError",
           "UnsupportedRequestError", "capabilities_of", "options_for", "unsupported"]


class InvalidRequestError(ValueError):
    """A request a generator cannot serve (wrong environment size, k out of range, unknown sampling source, ...)."""


class UnsupportedRequestError(InvalidRequestError, NotImplementedError):
    """A request for a capability the model does not declare (e.g. guidance for an environment VAE). Both a
    ``ValueError`` (a bad request) and a ``NotImplementedError`` (what models raised before they declared
    capabilities)."""


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a generator can be asked for.

    Attributes:
      composition: ``conditions={"composition": Z}`` (structure prediction) and ``{"n_atoms": k}``.
      lattice: ``conditions={"lattice": L}`` (a held cell, ``[3, 3]`` rows in Å).
      properties: other condition keys (property values for classifier-free guidance; the model checks which).
      guidance: ``guidance=`` shared objectives (:mod:`atomsmith.guidance`).
      fixed_atoms: ``fixed=FixedAtoms(...)`` (crystal infilling).
      fixed_neighbors: ``fixed=FixedNeighbors(...)`` (environment infilling).
      produces: ``"crystals"`` (periodic cells) or ``"environments"`` (clusters: a centre atom and its neighbours
        in a cubic box).
      about: what the model makes, for the error message of a missing capability.
    """

    composition: bool = False
    lattice: bool = False
    properties: bool = False
    guidance: bool = False
    fixed_atoms: bool = False
    fixed_neighbors: bool = False
    produces: str = "crystals"
    about: str = "generates crystals"


@runtime_checkable
class Generator(Protocol):
    """A model that draws crystals.

    ``sample(key, n, *, conditions=None, guidance=None, fixed=None, options=None) -> list[Crystal]``

    Args:
      key: a ``jax.random`` key; the same key (and arguments) gives the same structures.
      n: number of structures.
      conditions: ``{"composition": ...}`` (atomic numbers per structure, or one composition for all),
        ``{"lattice": L}``, property values; only what the model's :class:`Capabilities` declare.
      guidance: a shared objective or a sequence of them (property targets, energies, validity).
      fixed: what is held (infilling): :class:`FixedAtoms` for crystal generators, :class:`FixedNeighbors` for
        environment generators.
      options: the model's own options dataclass (its sampler settings).

    A request the model does not declare raises :class:`UnsupportedRequestError` naming the model.
    """

    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None,
               guidance: Any = None, fixed: Any = None, options: Any = None) -> list[Crystal]:
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


@dataclasses.dataclass(frozen=True, eq=False)
class FixedNeighbors:
    """Infilling request for environment generators: hold these neighbours of a centre atom and generate the rest
    of its environment.

    Attributes:
      vectors: ``[k, 3]`` Å, neighbour minus centre (the model checks ``k`` against its environment size and the
        distances against its ``r_cut``).
      numbers: optional ``[k]`` atomic numbers of the held neighbours (models with species; default: decoded).
    """

    vectors: np.ndarray
    numbers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.numbers is not None:
            object.__setattr__(self, "numbers", tuple(int(z) for z in np.asarray(self.numbers).reshape(-1)))

    @classmethod
    def around(cls, crystal: Crystal, centre: int, *, n_neighbors: int, r_cut: float, k: int | None = None,
               held: Sequence[int] | None = None) -> FixedNeighbors:
        """Hold the ``k`` nearest neighbours (default: all within ``r_cut``, at most ``n_neighbors - 1``) of atom
        ``centre`` of ``crystal``, or the neighbours ``held`` (indices by distance, 0 = nearest), for a model whose
        environments have ``n_neighbors`` neighbours within ``r_cut`` Å. Raises :class:`InvalidRequestError`."""
        from atomsmith.generators.environments.ops import neighbors_within

        if k is not None and held is not None:
            raise InvalidRequestError("give k or held, not both")
        size = n_neighbors
        try:
            neighbours = neighbors_within(crystal, centre, r_cut)
        except IndexError as exc:
            raise InvalidRequestError(str(exc)) from None
        if k is not None and not 1 <= k < size:
            what = "larger than the environment" if k > size else "not below the environment size"
            raise InvalidRequestError(f"k = {k} is {what}: this model's environments have {size} neighbours, so k "
                                      f"is at least 1 and at most {size - 1}")
        indices = list(held) if held is not None else list(range(min(len(neighbours), size - 1) if k is None else k))
        if not indices or len(set(indices)) != len(indices) or min(indices) < 0:
            raise InvalidRequestError(f"held neighbours must be distinct non-negative indices, got {indices}")
        if len(neighbours) <= max(indices):
            raise InvalidRequestError(f"atom {centre} has only {len(neighbours)} neighbours within r_cut = {r_cut} "
                                      f"Å, but {max(indices) + 1} are needed to hold the requested atoms")
        return cls(neighbours[indices])


def capabilities_of(generator: Any) -> Capabilities:
    """The generator's declared :class:`Capabilities` (a duck-typed generator without them declares nothing but
    plain sampling)."""
    return getattr(generator, "capabilities", None) or Capabilities()


def unsupported(generator: Any, what: str, name: str | None = None) -> UnsupportedRequestError:
    """The error for a request of ``what`` that ``generator`` (shown as ``name``, default its ``kind``) does not
    declare: ``"gram-vae does not take a composition: it samples local environments ..."``."""
    label = name or getattr(generator, "kind", None) or type(generator).__name__
    return UnsupportedRequestError(f"{label} does not take {what}: it {capabilities_of(generator).about}")


def options_for(generator: Any, **settings: Any) -> Any:
    """The generator's options dataclass from those of ``settings`` it has (``None``: the model's default); the
    other settings do not apply to this model (e.g. diffusion steps for an environment VAE). ``None`` for a
    duck-typed generator without ``options_type``."""
    options_type = getattr(generator, "options_type", None)
    if options_type is None:
        return None
    names = {f.name for f in dataclasses.fields(options_type)}
    return options_type(**{k: v for k, v in settings.items() if k in names and v is not None})


class GeneratorBase:
    """Base class of atomsmith's generators: the request validation every model shares.

    A subclass declares ``kind`` (its checkpoint kind), ``capabilities`` (:class:`Capabilities`) and
    ``options_type`` (a frozen dataclass of its sampler settings), and implements
    ``_sample(key, n, conditions, guidance, fixed, options)``. :meth:`sample` resolves the options, turns ``fixed``
    into the model's request type (:meth:`_as_request`), checks the request against the capabilities and calls
    ``_sample``.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    options_type: ClassVar[type]

    def options(self, options: Any = None, **overrides: Any) -> Any:
        """The sampler settings: ``options`` (default: ``options_type()``) with ``overrides`` (field names of
        ``options_type``; ``None`` keeps the value). Raises ``TypeError`` for a name the options do not have."""
        base = self.options_type() if options is None else options
        if not isinstance(base, self.options_type):
            raise InvalidRequestError(f"{self.kind or type(self).__name__} takes {self.options_type.__name__} "
                                      f"options, got {type(base).__name__}")
        names = [f.name for f in dataclasses.fields(self.options_type)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__}.sample() got unknown option(s) {', '.join(unknown)}; "
                            f"{self.options_type.__name__} has: {', '.join(names)}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(base, **changes) if changes else base

    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None, guidance: Any = None,
               fixed: Any = None, options: Any = None, **overrides: Any) -> list[Crystal]:
        """Draw ``n`` structures (see :class:`Generator`); keywords other than the protocol's are fields of the
        model's ``options_type`` (a shorthand for ``options=``)."""
        settings = self.options(options, **overrides)
        fixed = self._as_request(fixed)
        self.check_request(conditions, guidance, fixed, getattr(settings, "label", None))
        return self._sample(key, n, conditions, guidance, fixed, settings)

    def _as_request(self, fixed: Any) -> Any:
        """``fixed`` as the model's request type (e.g. an array of neighbour vectors as :class:`FixedNeighbors`)."""
        return fixed

    def check_request(self, conditions: Mapping[str, Any] | None, guidance: Any, fixed: Any,
                      name: str | None = None) -> None:
        """Raise :class:`UnsupportedRequestError` for a part of the request the model's capabilities lack."""
        caps = self.capabilities
        keys = set(conditions or {})
        if keys & {"composition", "n_atoms"} and not caps.composition:
            raise unsupported(self, "a composition", name)
        if "lattice" in keys and not caps.lattice:
            raise unsupported(self, "a held cell (lattice)", name)
        if keys - {"composition", "n_atoms", "lattice"} and not caps.properties:
            raise unsupported(self, f"the conditions {sorted(keys - {'composition', 'n_atoms', 'lattice'})}", name)
        if guidance is not None and not (isinstance(guidance, Sequence) and not guidance) and not caps.guidance:
            raise unsupported(self, "guidance", name)
        items = fixed if isinstance(fixed, (list, tuple)) else [fixed]
        if any(isinstance(f, FixedAtoms) for f in items) and not caps.fixed_atoms:
            raise unsupported(self, "held atoms of a crystal (FixedAtoms)", name)
        if isinstance(fixed, FixedNeighbors) and not caps.fixed_neighbors:
            raise unsupported(self, "held neighbours of an environment (FixedNeighbors)", name)

    def _sample(self, key: jax.Array, n: int, conditions: Mapping[str, Any] | None, guidance: Any, fixed: Any,
                options: Any) -> list[Crystal]:
        raise NotImplementedError
