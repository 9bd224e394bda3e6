"""``atomsmith interpolate A.xyz B.xyz --out path.extxyz``: environments along a latent path of a Gram VAE."""

from __future__ import annotations

from pathlib import Path

import typer

_MODEL_HELP = "Shipped model name (gram-vae) or a gram-vae checkpoint path."


def load_environment(path: Path, centre: int, n_neighbors: int, r_cut: float, what: str):
    """The ``n_neighbors``-environment of atom ``centre`` in the structure file ``path``; ``typer.BadParameter``
    with the reason (unreadable file, no such atom, too few neighbours within ``r_cut``)."""
    from atomsmith.generators import environment_ops as ops
    from atomsmith.graphs.environments import EnvironmentError_
    from atomsmith.structures import io
    from atomsmith.structures.errors import StructureError

    try:
        crystal = io.read(path)[0]
    except (StructureError, ValueError, OSError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint=what) from None
    try:
        return ops.crystal_to_environment(crystal, n_neighbors, r_cut, centre)
    except IndexError as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint=what) from None
    except EnvironmentError_ as exc:
        raise typer.BadParameter(f"{path}: too few neighbours for this model: {exc}", param_hint=what) from None


def load_gram_vae(name: str):
    """A :class:`GramVAE` from a shipped name or a checkpoint path; ``typer.BadParameter`` otherwise."""
    from atomsmith.generators.gram_vae.model import resolve_gram_vae

    try:
        return resolve_gram_vae(name)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None


def interpolate_command(
    first: Path = typer.Argument(..., exists=True, dir_okay=False, help="Structure file holding the first "
                                                                         "environment (any atomsmith format)."),
    second: Path = typer.Argument(..., exists=True, dir_okay=False, help="Structure file of the second one."),
    out: Path = typer.Option(..., "--out", "-o", help="Output extxyz: one cluster (centre first) per step."),
    model: str = typer.Option("gram-vae", "--model", "-m", help=_MODEL_HELP),
    steps: int = typer.Option(9, "--steps", min=2, help="Frames including both end points."),
    centre_first: int = typer.Option(0, "--centre-first", help="Centre atom index in the first file."),
    centre_second: int = typer.Option(0, "--centre-second", help="Centre atom index in the second file."),
    spherical: bool = typer.Option(False, "--spherical", help="Spherical instead of straight latent path."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
) -> None:
    """Interpolate between two local environments through the Gram VAE latent space (frames aligned in O(3))."""
    import numpy as np
    from rich.console import Console

    from atomsmith.generators import environment_ops as ops
    from atomsmith.generators.gram_vae.model import InvalidRequestError
    from atomsmith.structures import io

    console = Console(stderr=True)
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists; pass --force to overwrite it", param_hint="--out")
    vae = load_gram_vae(model)
    n, r_cut = vae.n_neighbors, vae.config.r_cut
    a = load_environment(first, centre_first, n, r_cut, "FIRST")
    b = load_environment(second, centre_second, n, r_cut, "SECOND")
    try:
        frames = vae.interpolate(a, b, steps=steps, spherical=spherical)
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc)) from None
    t = np.linspace(0.0, 1.0, steps)
    crystals = [ops.environment_to_crystal(f, step=i, t=float(t[i]), source="gram-vae interpolate")
                for i, f in enumerate(frames)]
    io.write(out, crystals, format="extxyz", overwrite=force)
    console.print(f"wrote {steps} frames to {out} (end-point reconstruction RMSD "
                  f"{ops.aligned_rmsd(frames[0], a):.3f} / {ops.aligned_rmsd(frames[-1], b):.3f} Å)")


def register(app: typer.Typer) -> None:
    app.command("interpolate")(interpolate_command)
