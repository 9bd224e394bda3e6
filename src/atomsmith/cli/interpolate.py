"""``atomsmith interpolate A.xyz B.xyz --out path.extxyz``: environments along a latent path of an environment VAE
(the Gram VAE or the equivariant VAE; :mod:`atomsmith.generators.environments.interpolation`)."""

from __future__ import annotations

from pathlib import Path

import typer

_MODEL_HELP = "Shipped model name (gram-vae, eq-vae) or a gram-vae / eq-vae checkpoint path."


def read_structure(path: Path, what: str):
    """The first structure in ``path``; ``typer.BadParameter`` (exit code 2) naming ``what`` when unreadable."""
    from atomsmith.structures import io
    from atomsmith.structures.errors import StructureError

    try:
        return io.read(path)[0]
    except (StructureError, ValueError, OSError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint=what) from None


def load_environment_vae(name: str):
    """A :class:`GramVAE` or :class:`EqVAE` from a shipped name or a checkpoint path (by the checkpoint's kind);
    ``typer.BadParameter`` otherwise."""
    from atomsmith import pretrained
    from atomsmith.generators.eq_vae.model import CHECKPOINT_KIND as EQ_KIND
    from atomsmith.generators.gram_vae.model import CHECKPOINT_KIND as GRAM_KIND

    try:
        return pretrained.load_model(name, kinds=(GRAM_KIND, EQ_KIND))
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
    """Interpolate between two local environments through the latent space of an environment VAE (frames aligned
    to each other: O(3) for the Gram VAE, proper rotations for the mirror-aware equivariant VAE).

    Examples:

      atomsmith interpolate --model eq-vae a.xyz b.xyz --steps 20 --out path.extxyz

      atomsmith interpolate --model gram-vae cell.cif cell.cif --centre-first 0 --centre-second 7 --out path.extxyz
    """
    from rich.console import Console

    from atomsmith.api.interpolation import path
    from atomsmith.cli.outputs import check_output
    from atomsmith.generators.environments import ops
    from atomsmith.generators.environments import interpolation as li
    from atomsmith.generators.protocol import InvalidRequestError

    console = Console(stderr=True)
    check_output(out, force)
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
