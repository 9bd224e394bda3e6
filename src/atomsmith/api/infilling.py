"""``atomsmith.infill``: generate the missing atoms around held ones, with whichever model fits the request.

    >>> import atomsmith
    >>> partial = atomsmith.read_one("partial.cif")                    # e.g. a perovskite missing one O
    >>> done = atomsmith.infill("perov-5", partial, n_free=1, n=10)    # crystal: held atoms and cell kept
    >>> envs = atomsmith.infill("gram-vae", cluster, k=5, n=10)        # local environment: 5 neighbours held

Crystal diffusion models hold the atoms (and by default the cell) of a partial structure and generate ``n_free``
more (RePaint inside the sampler). Environment VAEs hold the ``k`` nearest neighbours of a centre atom and generate
the rest of its environment (latent optimisation); results are clusters with site property ``fixed``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from atomsmith.api.sampling import ModelLike, parse_composition, resolve_model
from atomsmith.generators.protocol import FixedAtoms, InvalidRequestError
from atomsmith.structures.crystal import Crystal


def as_crystal(structure: Crystal | str | os.PathLike, what: str = "structure") -> Crystal:
    """A :class:`Crystal` or the single structure in a file (CIF, extxyz, POSCAR)."""
    if isinstance(structure, Crystal):
        return structure
    from atomsmith.structures.io import read

    found = read(structure)
    if len(found) != 1:
        raise InvalidRequestError(f"{structure} holds {len(found)} structures; give one {what}")
    return found[0]


def infill(model: ModelLike, structure: Crystal | str | os.PathLike, *, n: int = 10, seed: int = 0,
           n_free: int | None = None, free_species: str | Sequence[int] | None = None, hold_lattice: bool = True,
           resample: int = 0, steps: int | None = None, k: int | None = None, held: Sequence[int] | None = None,
           centre: int = 0, restarts: int = 8, progress: bool = False) -> list[Crystal]:
    """Complete ``structure`` ``n`` times.

    Args:
      model: a crystal diffusion model (``"perov-5"``) or an environment VAE (``"gram-vae"``, ``"eq-vae"``): name,
        path or loaded model.
      structure: the partial crystal (diffusion) or a structure holding the environment (VAEs); a Crystal or file.
      n: completions.
      seed: the same seed gives the same completions.
      n_free: diffusion: atoms to generate (required).
      free_species: diffusion: their composition (``"O2"`` or atomic numbers); default: generated too.
      hold_lattice: diffusion: keep the cell (False: generate it, fractional coordinates held).
      resample: diffusion: RePaint resampling per step.
      steps: diffusion: reverse steps (default 200).
      k: VAEs: hold the k nearest neighbours of ``centre`` (default: all within the model's ``r_cut``).
      held: VAEs: hold these neighbours instead (indices by distance from the centre, 0 = nearest).
      centre: VAEs: index of the centre atom in ``structure``.
      restarts: VAEs: latent restarts per completion (best kept).
      progress: show a progress bar (diffusion).

    Returns:
      Diffusion: completed cells, held atoms first (site property ``fixed`` = 1). VAEs: clusters (centre first,
      then held then generated neighbours; site property ``fixed``; property ``fit_rmsd`` in Å).

    Raises:
      InvalidRequestError (``ValueError``) for requests the model cannot serve; structure errors for bad files.
    """
    import jax

    generator, name = resolve_model(model)
    crystal = as_crystal(structure, "partial structure")
    if getattr(generator, "kind", None) not in ("gram-vae", "eq-vae"):
        if n_free is None:
            raise InvalidRequestError("give the number of atoms to generate (n_free)")
        from atomsmith.generators.diffusion.model import DEFAULT_STEPS

        species = tuple(parse_composition(free_species)) if free_species else None
        request = FixedAtoms(crystal, n_free, free_species=species, hold_lattice=hold_lattice)
        return generator.sample(jax.random.PRNGKey(seed), n, fixed=request, steps=steps or DEFAULT_STEPS,
                                resample=resample, progress=progress)
    return _infill_environment(generator, name, crystal, n, seed, k, held, centre, restarts)


def _infill_environment(vae: Any, name: str, crystal: Crystal, n: int, seed: int, k: int | None,
                        held: Sequence[int] | None, centre: int, restarts: int) -> list[Crystal]:
    import jax

    from atomsmith.generators.environments import ops

    if k is not None and held is not None:
        raise InvalidRequestError("give k or held, not both")
    size, r_cut = vae.n_neighbors, vae.config.r_cut
    try:
        neighbours = ops.neighbors_within(crystal, centre, r_cut)
    except IndexError as exc:
        raise InvalidRequestError(str(exc)) from None
    if k is not None and not 1 <= k < size:
        what = "larger than the environment" if k > size else "not below the environment size"
        raise InvalidRequestError(f"k = {k} is {what}: this model's environments have {size} neighbours, so k is "
                                  f"at least 1 and at most {size - 1}")
    indices = list(held) if held is not None else list(range(min(len(neighbours), size - 1) if k is None else k))
    if not indices or len(set(indices)) != len(indices) or min(indices) < 0:
        raise InvalidRequestError(f"held neighbours must be distinct non-negative indices, got {indices}")
    if len(neighbours) <= max(indices):
        raise InvalidRequestError(f"atom {centre} has only {len(neighbours)} neighbours within r_cut = {r_cut} Å, "
                                  f"but {max(indices) + 1} are needed to hold the requested atoms")
    fixed = neighbours[indices]
    key = jax.random.PRNGKey(seed)
    if vae.kind == "eq-vae":
        from atomsmith.generators.eq_vae.infill import InfillConfig, infill as run
    else:
        from atomsmith.generators.gram_vae.infill import InfillConfig, infill as run
    result = run(vae, fixed, n, key, InfillConfig(restarts=restarts))
    kk = len(fixed)
    numbers = getattr(result, "numbers", None)
    out = []
    for i, env in enumerate(result.environments):
        z = np.full(size + 1, 14) if numbers is None else np.asarray(numbers[i])
        c = ops.environment_to_crystal(env, centre_number=int(z[0]), neighbor_numbers=z[1:], sample=i,
                                       fit_rmsd=float(result.fit_rmsd[i]), k=kk, source=f"{name} infill")
        out.append(c.replace(site_properties={"fixed": np.r_[1, np.ones(kk, int), np.zeros(size - kk, int)]}))
    return out
