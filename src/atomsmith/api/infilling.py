"""``atomsmith.infill``: generate the missing atoms around held ones, with whichever model fits the request.

With the shipped models::

    partial = atomsmith.read_one("examples/partial_perovskite.cif")          # HgSbO3, one O missing
    done = atomsmith.infill("perov-5", partial, n_free=1, free_species="O", n=4)   # held atoms and cell kept
    envs = atomsmith.infill("gram-vae", cluster, k=5, n=10)                  # local environment: 5 neighbours held

What is held travels as a typed request (:mod:`atomsmith.generators.protocol`):

    >>> import numpy as np
    >>> from atomsmith import Crystal
    >>> from atomsmith.generators.protocol import FixedAtoms, FixedNeighbors
    >>> partial = Crystal(np.eye(3) * 4.0, np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]), np.array([38, 22]))  # Sr, Ti
    >>> FixedAtoms(partial, n_free=3, free_species=[8, 8, 8]).n_atoms
    5
    >>> held = FixedNeighbors.around(partial, 0, n_neighbors=8, r_cut=4.0, k=1)   # Sr's nearest neighbour, held
    >>> np.round(np.linalg.norm(held.vectors, axis=1), 3).tolist()
    [3.464]

Crystal diffusion models hold the atoms (and by default the cell) of a partial structure and generate ``n_free``
more (RePaint inside the sampler; a :class:`~atomsmith.generators.protocol.FixedAtoms` request). Environment VAEs
hold the ``k`` nearest neighbours of a centre atom and generate the rest of its environment (latent optimisation; a
:class:`~atomsmith.generators.protocol.FixedNeighbors` request); results are clusters with site property ``fixed``.
Which request is built follows the model's declared capabilities; either way the work is one
``generator.sample(key, n, fixed=request)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


from atomsmith.api.sampling import ModelLike, parse_composition, resolve_model
from atomsmith.generators.protocol import FixedAtoms, FixedNeighbors, InvalidRequestError, capabilities_of, \
    options_for, unsupported
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
    caps = capabilities_of(generator)
    if caps.fixed_atoms:
        if n_free is None:
            raise InvalidRequestError("give the number of atoms to generate (n_free)")
        species = tuple(parse_composition(free_species)) if free_species else None
        request: Any = FixedAtoms(crystal, n_free, free_species=species, hold_lattice=hold_lattice)
        settings: dict[str, Any] = dict(steps=steps or None, resample=resample, progress=progress)
    elif caps.fixed_neighbors:
        from atomsmith.generators.environments.infill import InfillConfig

        request = FixedNeighbors.around(crystal, centre, n_neighbors=generator.n_neighbors,
                                        r_cut=generator.config.r_cut, k=k, held=held)
        settings = dict(infill=InfillConfig(restarts=restarts), label=name)
    else:
        raise unsupported(generator, "held atoms (infilling)", name)
    return generator.sample(jax.random.PRNGKey(seed), n, fixed=request, options=options_for(generator, **settings))
