"""Configuration of the crystal diffusion model (frozen, JSON round-trippable for checkpoints)."""

from __future__ import annotations

import dataclasses
from typing import Any

from atomsmith.generators.diffusion.lattice import LatticeNormalizer
from atomsmith.generators.diffusion.schedules import Schedules
from atomsmith.nn.encoder import EncoderConfig

#: width of the sinusoidal time embedding fed to the encoder as conditioning.
TIME_DIM = 16
#: conditioning = [time embedding, structure-prediction flag, 6 standardised lattice parameters]
CONDITIONING_DIM = TIME_DIM + 1 + 6


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Everything needed to rebuild a diffusion model.

    Attributes:
      elements: atomic numbers of the species vocabulary (``K = len(elements)`` classes).
      encoder: the shared encoder's config (``n_species`` = :attr:`species_channels`, ``conditioning_dim`` =
        :data:`CONDITIONING_DIM`).
      lattice: standardisation of the lattice parameters.
      schedules: noise schedules.
      max_edges_per_cell: neighbour-list capacity per cell inside jit (overflow is counted and reported).
      n_images: periodic images enumerated along each lattice vector by the jit neighbour list.
      n_atoms_counts: ``((n_atoms, count), ...)`` in the training set; the number of atoms is drawn from it.
      species_process: ``"absorbing"`` (masked discrete diffusion, cross-entropy on the clean species) or
        ``"gaussian"`` (relaxed one-hot DDPM, the models shipped before issue 16); see
        :mod:`atomsmith.generators.diffusion.species`.
      csp_fraction: fraction of training cells whose species are given clean (trains structure prediction).
      species_weight, lattice_weight: loss weights (coordinate loss has weight 1).
      head_hidden: hidden width of the species and lattice MLP heads.
      properties: names of the scalar properties the network is conditioned on (classifier-free guidance); each
        adds two conditioning scalars (standardised value, present flag) after the base :data:`CONDITIONING_DIM`.
      property_mean, property_std: standardisation of those properties (training statistics, property units).
      property_dropout: probability that a property is hidden from the network in a training cell (the
        unconditional model of classifier-free guidance is the same network with every property hidden).
    """

    elements: tuple[int, ...]
    encoder: EncoderConfig
    lattice: LatticeNormalizer
    schedules: Schedules = Schedules()
    max_edges_per_cell: int = 256
    n_images: tuple[int, int, int] = (2, 2, 2)
    n_atoms_counts: tuple[tuple[int, int], ...] = ((5, 1),)
    species_process: str = "gaussian"
    csp_fraction: float = 0.25
    species_weight: float = 20.0
    lattice_weight: float = 1.0
    head_hidden: int = 64
    properties: tuple[str, ...] = ()
    property_mean: tuple[float, ...] = ()
    property_std: tuple[float, ...] = ()
    property_dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.species_process not in ("gaussian", "absorbing"):
            raise ValueError(f"unknown species process {self.species_process!r}; choose gaussian or absorbing")
        if self.encoder.n_species != self.species_channels:
            raise ValueError(f"the encoder's n_species must be {self.species_channels} for {len(self.elements)} "
                             f"elements with {self.species_process} species, got {self.encoder.n_species}")
        p = len(self.properties)
        if len(self.property_mean) != p or len(self.property_std) != p:
            raise ValueError("properties, property_mean and property_std must have the same length")
        if self.encoder.conditioning_dim != CONDITIONING_DIM + 2 * p:
            raise ValueError(f"the encoder's conditioning_dim must be {CONDITIONING_DIM} + 2 x {p} properties = "
                             f"{CONDITIONING_DIM + 2 * p}, got {self.encoder.conditioning_dim}")

    @property
    def conditioning_dim(self) -> int:
        """Width of the conditioning vector: time, flag, lattice parameters and two scalars per property."""
        return CONDITIONING_DIM + 2 * len(self.properties)

    def with_properties(self, names, mean, std, dropout: float = 0.2) -> DiffusionConfig:
        """The same model conditioned on the scalar properties ``names`` (the encoder's conditioning grows)."""
        names = tuple(str(n) for n in names)
        encoder = dataclasses.replace(self.encoder, conditioning_dim=CONDITIONING_DIM + 2 * len(names))
        return dataclasses.replace(self, encoder=encoder, properties=names,
                                   property_mean=tuple(float(x) for x in mean),
                                   property_std=tuple(float(x) for x in std), property_dropout=float(dropout))

    @classmethod
    def tiny(cls, elements: tuple[int, ...] = (8, 22, 38), **overrides: Any) -> DiffusionConfig:
        """A small config for unit tests (cells of ~4 Å, 4 Å cutoff)."""
        extra = 1 if overrides.get("species_process") == "absorbing" else 0
        encoder = EncoderConfig.tiny(n_species=len(elements) + extra, conditioning_dim=CONDITIONING_DIM, cutoff=4.0,
                                     irreps_hidden="8x0e+4x1o+2x2e", n_layers=1)
        base = dict(elements=tuple(elements), encoder=encoder,
                    lattice=LatticeNormalizer((1.4, 1.4, 1.4, 90.0, 90.0, 90.0), (0.05, 0.05, 0.05, 5.0, 5.0, 5.0)),
                    max_edges_per_cell=160, n_images=(2, 2, 2), n_atoms_counts=((3, 1), (5, 2)), head_hidden=16)
        return cls(**{**base, **overrides})

    @property
    def n_species(self) -> int:
        """Number of species classes ``K`` (the vocabulary)."""
        return len(self.elements)

    @property
    def species_channels(self) -> int:
        """Width of the network's species input: ``K``, plus the MASK channel for absorbing species."""
        return len(self.elements) + (1 if self.species_process == "absorbing" else 0)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DiffusionConfig:
        enc = dict(data["encoder"])
        enc["radial_hidden"] = tuple(enc["radial_hidden"])
        lat = data["lattice"]
        return cls(
            elements=tuple(int(z) for z in data["elements"]),
            encoder=EncoderConfig(**enc),
            lattice=LatticeNormalizer(tuple(lat["mean"]), tuple(lat["std"])),
            schedules=Schedules(**data["schedules"]),
            max_edges_per_cell=int(data["max_edges_per_cell"]),
            n_images=tuple(int(x) for x in data["n_images"]),
            n_atoms_counts=tuple((int(a), int(b)) for a, b in data["n_atoms_counts"]),
            species_process=str(data.get("species_process", "gaussian")),
            csp_fraction=float(data["csp_fraction"]),
            species_weight=float(data["species_weight"]),
            lattice_weight=float(data["lattice_weight"]),
            head_hidden=int(data["head_hidden"]),
            properties=tuple(str(x) for x in data.get("properties", ())),
            property_mean=tuple(float(x) for x in data.get("property_mean", ())),
            property_std=tuple(float(x) for x in data.get("property_std", ())),
            property_dropout=float(data.get("property_dropout", 0.2)),
        )
