"""What the environment VAEs' latent-optimisation infilling shares: its settings, its result and the check of
the held atoms.

Both models hold ``k`` given neighbours of a centre atom and optimise a latent so that the decoding contains them
(Gram-matrix VAE: :mod:`atomsmith.generators.gram_vae.infill`, equivariant VAE:
:mod:`atomsmith.generators.eq_vae.infill`); the generated atoms are the decoder slots left over.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from atomsmith.generators.protocol import InvalidRequestError

__all__ = ["InfillConfig", "InfillResult", "check_fixed"]


@dataclasses.dataclass(frozen=True)
class InfillConfig:
    """Settings of the latent optimisation.

    Attributes:
      restarts: independent starts from the prior per requested sample (best kept).
      rounds: assignment updates (host alignment) alternating with ``steps`` Adam steps each.
      steps: Adam steps per round.
      learning_rate: Adam step size in latent units.
      prior_weight: weight of ``-log p(z)``; ``None`` (default) uses the model's KL weight beta, which makes the
        objective the MAP of z given the fixed atoms under the training objective (``SE + beta KL`` is a Gaussian
        likelihood of variance beta / 2).
    """

    restarts: int = 8
    rounds: int = 4
    steps: int = 100
    learning_rate: float = 0.05
    prior_weight: float | None = None

    def __post_init__(self) -> None:
        if self.restarts < 1 or self.rounds < 1 or self.steps < 0 or self.learning_rate <= 0 \
                or (self.prior_weight is not None and self.prior_weight < 0):
            raise ValueError(f"invalid InfillConfig {self}")


@dataclasses.dataclass(frozen=True)
class InfillResult:
    """``m`` infilled environments around the same ``k`` fixed atoms.

    Attributes:
      environments: ``[m, n, 3]`` Å in the frame of the fixed atoms: rows ``0..k-1`` are the fixed atoms exactly as
        given, rows ``k..n-1`` the generated atoms (closest first).
      generated: ``[m, n - k, 3]`` Å, the generated atoms (same as ``environments[:, k:]``).
      fit_rmsd: ``[m]`` Å, RMSD between the fixed atoms and their decoded partners after the optimal alignment.
      objective: ``[m]`` final value of the objective.
      latents: ``[m, d]`` optimised latents.
      reflected: ``[m]`` whether the decoded environment had to be mirrored onto the fixed atoms.
    """

    environments: np.ndarray
    generated: np.ndarray
    fit_rmsd: np.ndarray
    objective: np.ndarray
    latents: np.ndarray
    reflected: np.ndarray


def check_fixed(model: Any, fixed: Any) -> np.ndarray:
    """Validate the held atoms ``[k, 3]`` Å for an environment model (``n_neighbors``, ``config.r_cut``); raises
    ``InvalidRequestError`` with the reason."""
    arr = np.asarray(fixed, np.float64)
    if arr.ndim == 1 and arr.size == 3:
        arr = arr[None]
    n = model.n_neighbors
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InvalidRequestError(f"fixed atoms must be an array [k, 3] of neighbour vectors (Å), got {arr.shape}")
    k = len(arr)
    if k < 1:
        raise InvalidRequestError("at least one fixed atom is needed for infilling (use sample for k = 0)")
    if k >= n:
        raise InvalidRequestError(
            f"k = {k} fixed atoms, but this model's environments have n = {n} neighbours: k must be at most "
            f"{n - 1} (k = n leaves nothing to generate, k > n is larger than the environment)")
    if not np.all(np.isfinite(arr)):
        raise InvalidRequestError("fixed atoms contain non-finite coordinates")
    dist = np.linalg.norm(arr, axis=1)
    if np.any(dist > model.config.r_cut + 1e-6):
        raise InvalidRequestError(
            f"fixed atom(s) {np.flatnonzero(dist > model.config.r_cut).tolist()} lie beyond the model's "
            f"r_cut = {model.config.r_cut} Å from the centre (distances {np.round(dist, 3).tolist()})")
    if np.any(dist < 0.5):
        raise InvalidRequestError("a fixed atom lies on the centre atom (closer than 0.5 Å); vectors are "
                                  "neighbour minus centre")
    return arr
