"""The sampler settings of a crystal diffusion model (:class:`DiffusionOptions`), one frozen dataclass in place of
free keyword arguments to :meth:`~atomsmith.generators.diffusion.model.DiffusionModel.sample`."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["DEFAULT_BATCH", "DEFAULT_STEPS", "DiffusionOptions"]

#: default number of reverse steps (predictor-corrector: two network evaluations per step).
DEFAULT_STEPS = 200
#: cells sampled together (one compiled shape; smaller requests use a smaller bucketed batch).
DEFAULT_BATCH = 256


@dataclasses.dataclass(frozen=True, eq=False)
class DiffusionOptions:
    """How a diffusion model samples.

    Attributes:
      steps: reverse steps (default :data:`DEFAULT_STEPS`).
      method: ``"pc"`` (predictor-corrector) or ``"ode"`` (probability flow).
      step_lr: corrector step size (``e = step_lr (sigma_t / sigma_min)^2``); ``None``: the model's own
        (:meth:`~atomsmith.generators.diffusion.model.DiffusionModel.default_step_lr`).
      batch_size: cells sampled together (default :data:`DEFAULT_BATCH`).
      guidance_scale: gradient-guidance strength (scalar, or one value per structure).
      guidance_weights: per-part guidance weights (coordinates, lattice, species).
      guidance_cutoff: graph cutoff (Å) of the guidance objective; ``None``: the largest predictor cutoff found in
        the objective, else the model's cutoff.
      resample: RePaint resampling: each step is repeated this many extra times (infilling; costs ``1 + r``x).
      cfg_scale: classifier-free guidance factor (1 = the conditional model alone; larger sharpens; scalar or one
        per structure).
      progress: show a progress bar.
      stats: if a dict is given it receives ``seconds``, ``structures_per_s`` and ``overflow`` (cells whose
        neighbour list overflowed at some step).
      devices: local devices each batch of cells is split over (:mod:`atomsmith.parallel`; parameters
        replicated). ``None``: all local devices; ``1``: one device. The samples do not depend on it beyond float
        rounding, except that a bucketed batch which does not divide by the device count is padded up to a
        multiple of it (which changes the random draws).
    """

    steps: int = DEFAULT_STEPS
    method: str = "pc"
    step_lr: float | None = None
    batch_size: int = DEFAULT_BATCH
    guidance_scale: Any = 1.0
    guidance_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    guidance_cutoff: float | None = None
    resample: int = 0
    cfg_scale: Any = 2.0
    progress: bool = False
    stats: dict | None = None
    devices: int | None = None
