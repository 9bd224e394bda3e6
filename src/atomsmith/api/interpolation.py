"""``atomsmith.interpolate``: structures along a latent path, chosen by the model's kind.

* Environment VAEs (Gram VAE, equivariant VAE): local environments, decoded from a latent path between the two
  environments' posterior means (:mod:`atomsmith.generators.environments.interpolation`).
* Crystal diffusion models: whole cells, decoded by the probability-flow sampler from a path between the two
  crystals' probability-flow latents (:mod:`atomsmith.generators.diffusion.interpolation`).

    >>> import atomsmith
    >>> frames = atomsmith.interpolate("eq-vae", "a.xyz", "b.xyz", steps=20)   # list of clusters, aligned
    >>> cells = atomsmith.interpolate("perov-5", "a.cif", "b.cif", steps=9)    # list of crystals
    >>> atomsmith.write("path.extxyz", cells)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

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
                steps: int = 9, spherical: bool | None = None, centre_first: int = 0,
                centre_second: int = 0, ode_steps: int | None = None, species: str | None = None,
                target: Any = None, guidance_scale: float = 10.0, property_scale: float = 0.1,
                predictors: Sequence[str] = ()) -> list[Crystal]:
    """Decoded structures from ``first`` to ``second`` through the model's latent space.

    Args:
      model: ``"gram-vae"``, ``"eq-vae"`` or a crystal diffusion model such as ``"perov-5"`` (name, path or loaded
        model).
      first, second: structures (Crystal or file) holding the two environments, or the two crystals.
      steps: frames including both end points (>= 2).
      spherical: spherical instead of straight latent path (default: straight for environments, spherical for the
        Gaussian parts of crystal latents).
      centre_first, centre_second: environments: centre atom index in each structure.
      ode_steps: crystals: probability-flow steps of encoding and decoding (default 100).
      species: crystals: ``"latent"`` or ``"held"`` (default by the model; see
        :mod:`atomsmith.generators.diffusion.interpolation`).
      target: crystals: guided interpolation towards property targets, e.g. ``{"heat_ref": 0.3}`` (gradient
        guidance through the predictors of the model's dataset or ``predictors``, strength ``guidance_scale`` at
        the midpoint, zero at the ends; ``property_scale`` as in :func:`atomsmith.sample`).

    Returns:
      Environments: ``steps`` clusters (centre first, one common box), properties ``step`` and ``t``, frames aligned
      to each other (O(3) for the Gram VAE, proper rotations for the mirror-aware equivariant VAE). Crystals:
      ``steps`` cells, properties ``step`` and ``t``, coordinates unwrapped from frame to frame.
    """
    from atomsmith.generators.diffusion.model import CHECKPOINT_KIND as DIFFUSION_KIND
    from atomsmith.generators.environments import interpolation as li
    from atomsmith.generators.eq_vae.model import CHECKPOINT_KIND as EQ_KIND
    from atomsmith.generators.gram_vae.model import CHECKPOINT_KIND as GRAM_KIND

    kinds = (GRAM_KIND, EQ_KIND, DIFFUSION_KIND, f"train-state:{DIFFUSION_KIND}")
    generator, name = resolve_model(model or "gram-vae", kinds=kinds)
    if is_crystal_model(generator):
        if centre_first or centre_second:
            raise InvalidRequestError(f"{name} interpolates whole crystals: centre atoms apply to environment models")
        return crystal_path(generator, name, as_crystal(first, "crystal"), as_crystal(second, "crystal"),
                            steps=steps, spherical=spherical, ode_steps=ode_steps, species=species, target=target,
                            guidance_scale=guidance_scale, property_scale=property_scale,
                            predictors=predictors).frames
    if any(x is not None for x in (ode_steps, species, target)) or predictors:
        raise InvalidRequestError(f"{name} interpolates local environments: ode_steps, species and property targets "
                                  "apply to crystal diffusion models (e.g. perov-5)")
    trajectory, _, _ = path(generator, as_crystal(first, "environment"), as_crystal(second, "environment"),
                            steps=steps, spherical=bool(spherical), centre_first=centre_first,
                            centre_second=centre_second)
    return li.trajectory_crystals(trajectory, source=f"{generator.kind} interpolate")


def is_crystal_model(model: Any) -> bool:
    """True for a crystal diffusion model (crystal interpolation), False for an environment VAE."""
    from atomsmith.generators.diffusion.model import DiffusionModel

    return isinstance(model, DiffusionModel)


def crystal_path(model: Any, name: str, first: Crystal, second: Crystal, *, steps: int = 9,
                 spherical: bool | None = None, ode_steps: int | None = None, species: str | None = None,
                 target: Any = None, guidance_scale: float = 10.0, property_scale: float = 0.1,
                 predictors: Sequence[str] = ()):
    """The :class:`~atomsmith.generators.diffusion.interpolation.CrystalPath` between two crystals (optionally
    guided towards property ``target`` values, see :func:`interpolate`)."""
    from atomsmith.api.sampling import parse_requests, plan_guidance
    from atomsmith.generators.diffusion import interpolation as ci
    from atomsmith.generators.diffusion.inversion import DEFAULT_ODE_STEPS

    objective = None
    if target is not None:
        plan = plan_guidance(model, name, parse_requests(target, None, property_scale), predictors=predictors,
                             mode="gradient")
        objective = plan.objective
    elif predictors:
        raise InvalidRequestError("a predictor needs a target to guide the interpolation")
    return ci.interpolate(model, first, second, steps=steps, ode_steps=ode_steps or DEFAULT_ODE_STEPS,
                          species=species, spherical=True if spherical is None else bool(spherical),
                          objective=objective, guidance_scale=guidance_scale)


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
