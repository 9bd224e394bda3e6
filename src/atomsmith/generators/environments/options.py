"""The sampler settings of the environment VAEs (:class:`EnvironmentOptions`), one frozen dataclass in place of
free keyword arguments to their ``sample``."""

from __future__ import annotations

import dataclasses

from atomsmith.generators.environments.infill import InfillConfig

__all__ = ["EnvironmentOptions"]


@dataclasses.dataclass(frozen=True)
class EnvironmentOptions:
    """How an environment VAE samples.

    Attributes:
      temperature: spread of the latent draws (1 = the latent distribution itself).
      latents: where latents come from: ``"auto"`` (the fitted latent mixture when there is one, else the prior),
        ``"mixture"`` or ``"prior"`` (:func:`atomsmith.generators.environments.latent_prior.draw_latents`).
      infill: the latent optimisation of infilling (``fixed=FixedNeighbors(...)``).
      label: the model's name in each structure's ``source`` property (``"<label> sample"``, ``"<label> infill"``)
        and in error messages; default: its kind.
    """

    temperature: float = 1.0
    latents: str = "auto"
    infill: InfillConfig = InfillConfig()
    label: str | None = None
