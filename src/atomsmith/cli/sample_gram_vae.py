"""The environments branch of ``atomsmith sample``: local environments (clusters) instead of periodic cells.

Called from :mod:`atomsmith.cli.sample` when the loaded model makes environments (its declared capabilities: the
Gram VAE, the equivariant VAE); writes the environments as clusters
(centre atom first, then its neighbours, in a cubic box) and prints a summary table.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer


def sample_environments(generator, name: str, n: int, seed: int, out: Path, out_format: str, directory: bool,
                        gz: bool, force: bool, composition: str | None) -> None:
    """Draw ``n`` environments from a :class:`~atomsmith.generators.gram_vae.GramVAE` or
    :class:`~atomsmith.generators.eq_vae.EqVAE` and write them."""
    import jax
    import numpy as np

    from atomsmith.cli.output import print_summary, write_structures
    from atomsmith.generators.environments import ops

    if composition:
        raise typer.BadParameter(f"--composition does not apply to a {generator.kind} model (it generates local "
                                 "environments)", param_hint="--composition")
    t0 = time.perf_counter()
    crystals = generator.sample(jax.random.PRNGKey(seed), n, label=name)  # the generator protocol
    envs = np.stack([c.positions[1:] - c.positions[0] for c in crystals])
    seconds = time.perf_counter() - t0
    write_structures(out, crystals, out_format, directory, gz, force)
    closest = ops.min_pair_distance(envs)
    source = "latent mixture" if generator.latent_mixture is not None else "N(0, I)"
    rows = [("environments", f"{len(envs)} x {generator.n_neighbors} neighbours"),
            ("latents drawn from", source),
            ("no pair closer than 2.0 Å", f"{100 * np.mean(closest >= 2.0):.1f} %"),
            ("mean coordination (< 2.85 Å)", f"{np.mean(ops.coordination(envs)):.2f}"),
            ("time", f"{seconds:.1f} s"),
            ("output", f"{out} ({out_format}{', directory' if directory else ''})")]
    print_summary(f"atomsmith sample: {name} (local environments)", rows)
