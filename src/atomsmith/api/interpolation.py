"""``atomsmith.interpolate``: environments along a latent path of an environment VAE (Gram VAE or equivariant VAE).

    >>> import atomsmith
    >>> frames = atomsmith.interpolate("eq-vae", "a.xyz", "b.xyz", steps=20)   # list of clusters, aligned
    >>> atomsmith.write("path.extxyz", frames)
"""

from __future__ import annotations

import os

import numpy as np

from atomsmith.api.infilling import as_crystal
from atomsmith.api.sampling import ModelLike, resolve_model
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures.crystal import Crystal


def environment_of(crystal: Crystal, centre: int, n_neighbors: int, r_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest neighbour vectors ``[n, 3]`` (Å) of atom ``centre`` and the atomic numbers
    ``[n + 1]`` (centre first). Raises :class:`InvalidRequestError` when the atom does not exist or has too few
    neighbours within ``r_cut`` (Å)."""
    from atomsmith.graphs.environments import EnvironmentError_, local_environments

    if not 0 <= centre < crystal.n_atoms:
        raise InvalidRequestError(f"centre atom {centre} does not exist; the structure has {crystal.n_atoms} atoms")
    try:
        env = local_environments(crystal, n_neighbors, r_cut, centres=np.array([centre]))
    except EnvironmentError_ as exc:
        raise InvalidRequestError(f"too few neighbours for this model: {exc}") from None
    return env.vectors[0], np.concatenate([env.centre_numbers[:1], env.neighbor_numbers[0]])


def interpolate(model: ModelLike, first: Crystal | str | os.PathLike, second: Crystal | str | os.PathLike, *,
                steps: int = 9, spherical: bool = False, centre_first: int = 0,
                centre_second: int = 0) -> list[Crystal]:
    """Decoded environments from ``first`` to ``second`` through the model's latent space.

    Args:
      model: ``"gram-vae"`` or ``"eq-vae"`` (name, path or loaded model).
      first, second: structures (Crystal or file) holding the two environments.
      steps: frames including both end points (>= 2).
      spherical: spherical instead of straight latent path.
      centre_first, centre_second: centre atom index in each structure.

    Returns:
      ``steps`` clusters (centre first, one common box), properties ``step`` and ``t``, frames aligned to each other
      (O(3) for the Gram VAE, proper rotations for the mirror-aware equivariant VAE).
    """
    from atomsmith.generators.environments import interpolation as li
    from atomsmith.generators.eq_vae.model import CHECKPOINT_KIND as EQ_KIND
    from atomsmith.generators.gram_vae.model import CHECKPOINT_KIND as GRAM_KIND

    vae, name = resolve_model(model or "gram-vae", kinds=(GRAM_KIND, EQ_KIND))
    trajectory, _, _ = path(vae, as_crystal(first, "environment"), as_crystal(second, "environment"), steps=steps,
                      spherical=spherical, centre_first=centre_first, centre_second=centre_second)
    return li.trajectory_crystals(trajectory, source=f"{vae.kind} interpolate")


def path(vae, first: Crystal, second: Crystal, *, steps: int, spherical: bool, centre_first: int,
         centre_second: int):
    """The :class:`~atomsmith.generators.environments.interpolation.Trajectory` between two structures' environments,
    and the two input environments ``[n, 3]`` (Å)."""
    from atomsmith.generators.environments import interpolation as li

    n, r_cut = vae.n_neighbors, vae.config.r_cut
    a, za = environment_of(first, centre_first, n, r_cut)
    b, zb = environment_of(second, centre_second, n, r_cut)
    extra = {"numbers_a": za, "numbers_b": zb} if getattr(vae, "mirror_aware", False) else {}
    return li.interpolate(vae, a, b, steps=steps, spherical=spherical, **extra), a, b
