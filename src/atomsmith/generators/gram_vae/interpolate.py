"""Interpolation between two environments through the Gram VAE's latent space (the shared implementation in
:mod:`atomsmith.generators.environments.interpolation`, which also serves the equivariant VAE)."""

from __future__ import annotations

from typing import Any

import numpy as np

from atomsmith.generators.environments import interpolation as latent_interpolation
from atomsmith.generators.environments.interpolation import latent_path  # noqa: F401  (re-exported)
from atomsmith.generators.environments.model import EnvironmentVAE  # typed by the base: the model imports us



def interpolate(model: EnvironmentVAE, a: Any, b: Any, steps: int = 9, spherical: bool = False) -> np.ndarray:
    """``[steps, n, 3]`` Å: decoded environments along the latent path between the posterior means of ``a`` and
    ``b`` (each ``[n, 3]``), aligned frame to frame (the first to ``a``). Raises ``InvalidRequestError``."""
    return latent_interpolation.interpolate(model, a, b, steps, spherical).frames
