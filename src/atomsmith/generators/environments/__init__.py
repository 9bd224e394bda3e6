"""What the two environment VAEs (Gram-matrix and equivariant) share, one concept per module.

Modules::

    ops             geometry of environments: Kabsch / Hungarian alignment, RMSDs, statistics, Crystal clusters
    graph           an environment as a one-cluster GraphBatch for the shared encoder
    metrics         reconstruction, generation and infilling metrics
    latent_prior    N(0, I) prior and the fitted latent mixture, latent draws
    shells          within-shell neighbour relabellings (the shell-permutation losses)
    infill          latent-optimisation infilling: its settings, result and the check of the held atoms
    interpolation   latent paths between two environments, aligned frame to frame
    views           plotly figures and the notebook slider (environments, latent maps, trajectories)
    model           EnvironmentVAE, the base of both model objects: checkpoint save / load, latent draws, checks

``gram_vae`` and ``eq_vae`` depend on this package, never on each other. Names are resolved lazily.
"""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.generators.environments.infill": ("InfillConfig", "InfillResult", "check_fixed"),
    "atomsmith.generators.environments.interpolation": ("Trajectory", "latent_path"),
    "atomsmith.generators.environments.latent_prior": ("LatentMixture", "draw_latents", "fit_mixture"),
    "atomsmith.generators.environments.model": ("EnvironmentVAE",),
    "atomsmith.generators.environments.shells": ("shell_permutations",),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
