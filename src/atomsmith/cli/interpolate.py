"""``atomsmith interpolate A B --out path.extxyz``: structures along a latent path, chosen by the model's kind.

* Environment VAEs (the Gram VAE or the equivariant VAE; :mod:`atomsmith.generators.environments.interpolation`):
  local environments between an environment of A and one of B.
* Crystal diffusion models (``--model perov-5``; :mod:`atomsmith.cli.interpolate_crystal`): whole cells between the
  crystals A and B, through their probability-flow latents.
"""

from __future__ import annotations

from pathlib import Path

import typer

_MODEL_HELP = ("Shipped model name or checkpoint path: an environment VAE (gram-vae, eq-vae) or a crystal diffusion "
               "model (perov-5).")
#: checkpoint kinds ``interpolate`` takes: environment VAEs (environments) and crystal diffusion models (crystals).
INTERPOLATE_KINDS = ("gram-vae", "eq-vae", "diffusion", "train-state:diffusion")


def interpolate_command(
    first: Path = typer.Argument(..., exists=True, dir_okay=False, help="Structure file holding the first "
                                                                         "environment, or the first crystal (any "
                                                                         "atomsmith format)."),
    second: Path = typer.Argument(..., exists=True, dir_okay=False, help="Structure file of the second one."),
    out: Path = typer.Option(..., "--out", "-o", help="Output extxyz: one cluster (centre first) or one cell per "
                                                      "step."),
    model: str = typer.Option("gram-vae", "--model", "-m", help=_MODEL_HELP),
    steps: int = typer.Option(9, "--steps", min=2, help="Frames including both end points."),
    centre_first: int = typer.Option(0, "--centre-first", help="Environment models: centre atom index in the first "
                                                               "file."),
    centre_second: int = typer.Option(0, "--centre-second", help="Environment models: centre atom index in the "
                                                                 "second file."),
    spherical: bool = typer.Option(False, "--spherical", help="Environment models: spherical instead of straight "
                                                              "latent path (crystal paths are always spherical in "
                                                              "their Gaussian parts)."),
    ode_steps: int = typer.Option(None, "--ode-steps", min=1, help="Diffusion models: probability-flow steps of "
                                                                   "encoding and decoding (default 100)."),
    species: str = typer.Option(None, "--species", help="Diffusion models: 'latent' (species encoded and "
                                                        "interpolated; relaxed one-hot models) or 'held' (species "
                                                        "carried, switching at the midpoint between different "
                                                        "compositions; the only choice for masked-species models). "
                                                        "Default by the model."),
    target: list[str] = typer.Option(None, "--target", "-t", help="Diffusion models: guided interpolation towards "
                                                                  "NAME=VALUE (e.g. heat_ref=0.3), strongest at the "
                                                                  "midpoint, zero at the ends."),
    guidance_scale: float = typer.Option(10.0, help="Diffusion models: peak gradient-guidance strength."),
    property_scale: float = typer.Option(0.1, help="Diffusion models: tolerance of the target (property units)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
) -> None:
    """Interpolate between two local environments through the latent space of an environment VAE (frames aligned
    to each other: O(3) for the Gram VAE, proper rotations for the mirror-aware equivariant VAE), or between two
    crystals of the same atom count through the probability-flow latents of a diffusion model.

    Examples:

      atomsmith interpolate --model eq-vae a.xyz b.xyz --steps 20 --out path.extxyz

      atomsmith interpolate --model gram-vae cell.cif cell.cif --centre-first 0 --centre-second 7 --out path.extxyz

      atomsmith interpolate --model perov-5 a.cif b.cif --steps 9 --out path.extxyz
    """
    from atomsmith.cli.output import check_output
    from atomsmith.pretrained import kind_of, require_kind
    from atomsmith.training.checkpoint import CheckpointError

    check_output(out, force)
    try:  # UnknownModelError and WrongModelKindError are ValueErrors
        kind = kind_of(model)
        require_kind(model, kind, INTERPOLATE_KINDS)
    except (CheckpointError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if kind in ("diffusion", "train-state:diffusion"):
        if centre_first or centre_second:
            raise typer.BadParameter(f"{model} interpolates whole crystals: --centre-first / --centre-second apply "
                                     "to environment models (gram-vae, eq-vae)")
        from atomsmith.cli.interpolate_crystal import interpolate_crystals

        return interpolate_crystals(model, first, second, out, steps=steps, ode_steps=ode_steps, species=species,
                                    target=target, guidance_scale=guidance_scale, property_scale=property_scale,
                                    force=force)
    if ode_steps is not None or species is not None or target:
        raise typer.BadParameter(f"{model} interpolates local environments: --ode-steps, --species and --target "
                                 "apply to crystal diffusion models (e.g. perov-5)")
    _interpolate_environments(model, first, second, out, steps, centre_first, centre_second, spherical, force)


def _interpolate_environments(model: str, first: Path, second: Path, out: Path, steps: int, centre_first: int,
                              centre_second: int, spherical: bool, force: bool) -> None:
    from rich.console import Console

    from atomsmith.api.interpolation import path
    from atomsmith.cli.output import check_output
    from atomsmith.generators.environments import interpolation as li
    from atomsmith.generators.environments import ops
    from atomsmith.generators.protocol import InvalidRequestError

    console = Console(stderr=True)
    from atomsmith.cli.inputs import load_environment_vae, read_structure

    vae = load_environment_vae(model)
    a, b = read_structure(first, "FIRST"), read_structure(second, "SECOND")
    try:
        trajectory, env_a, env_b = path(vae, a, b, steps=steps, spherical=spherical, centre_first=centre_first,
                          centre_second=centre_second)
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc)) from None
    li.write_trajectory(out, trajectory, overwrite=force, source=f"{vae.kind} interpolate")
    frames = trajectory.frames
    console.print(f"wrote {steps} frames to {out} (end-point reconstruction RMSD "
                  f"{ops.aligned_rmsd(frames[0], env_a):.3f} / "
                  f"{ops.aligned_rmsd(frames[-1], env_b):.3f} Å)")
    if trajectory.mirrored_end:
        console.print("note: the two environments' frames have opposite handedness; the path keeps the first one's, "
                      "so the last frame is the mirror image of the second environment's reconstruction")


def register(app: typer.Typer) -> None:
    app.command("interpolate")(interpolate_command)
