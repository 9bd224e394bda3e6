"""Score-based diffusion for crystals: wrapped-normal coordinates on the torus, DDPM lattice parameters, masked
discrete (or relaxed one-hot) species, on the shared encoder (see ``experiments/diffusion/README.md`` for results). Crystal latents by probability-flow
inversion and interpolation between crystals: :mod:`.inversion`, :mod:`.correspondence`, :mod:`.interpolation`."""

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.model import DEFAULT_STEPS, DiffusionModel
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.samplers import SAMPLERS
from atomsmith.generators.diffusion.schedules import Schedules

__all__ = ["DEFAULT_STEPS", "SAMPLERS", "DiffusionConfig", "DiffusionModel", "Schedules", "ScoreNetwork"]
