"""``atomsmith infill``: two kinds of infilling behind one command, chosen by the model's declared capabilities.

* Environments (Gram VAE / equivariant VAE): ``atomsmith infill ENV.xyz --k 5 -n 10 --out completions.extxyz`` holds
  k atoms of an environment and generates the rest (latent optimisation; :mod:`atomsmith.generators.gram_vae.infill`).
* Crystals (diffusion): ``atomsmith infill --model perov-5 --fixed partial.cif --n-free 3 --out completed.extxyz``
  holds the atoms and cell of a partial structure and generates ``--n-free`` atoms (:mod:`atomsmith.cli.infill_crystal`).
"""

from __future__ import annotations

from pathlib import Path

import typer

def infill_kinds() -> tuple[str, ...]:
    """Checkpoint kinds ``infill`` takes: those whose model class declares held atoms (crystal diffusion) or held
    neighbours (the environment VAEs), in the registry's order."""
    from atomsmith.generators.protocol import capabilities_of
    from atomsmith.pretrained.kinds import MODEL_CLASSES, model_class

    declared = {kind: capabilities_of(model_class(kind)) for kind in MODEL_CLASSES}
    return tuple(kind for kind, caps in declared.items() if caps.fixed_atoms or caps.fixed_neighbors)


def _parse_indices(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise typer.BadParameter(f"--fixed takes comma-separated integers, got {text!r}") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise typer.BadParameter(f"--fixed needs distinct non-negative indices, got {text!r}")
    return out


def infill_command(
    environment: Path = typer.Argument(None, exists=True, dir_okay=False,
                                       help="Environment models: structure file holding the (partial) environment: "
                                            "the centre atom and the neighbours to hold, within the model's r_cut."),
    out: Path = typer.Option(..., "--out", "-o", help="Output extxyz: one completed cluster per sample (centre, "
                                                      "held atoms, generated atoms; site property 'fixed')."),
    model: str = typer.Option("gram-vae", "--model", "-m", help="Shipped model name or checkpoint: an environment "
                                                                "VAE (gram-vae) or a crystal diffusion model "
                                                                "(perov-5)."),
    k: int = typer.Option(None, "--k", help="Hold the k nearest neighbours of the centre (default: all of them "
                                            "within r_cut)."),
    fixed: str = typer.Option(None, "--fixed", help="Environment models: hold these neighbours instead "
                                                    "(comma-separated indices in order of distance from the centre, "
                                                    "0 = nearest). Diffusion models: the partial structure file "
                                                    "whose atoms and cell are held."),
    n_free: int = typer.Option(None, "--n-free", min=1, help="Diffusion models: number of atoms to generate."),
    free_species: str = typer.Option(None, help="Diffusion models: composition of the generated atoms, e.g. O2 "
                                                "(default: generated too)."),
    free_lattice: bool = typer.Option(False, "--free-lattice", help="Diffusion models: generate the cell too."),
    resample: int = typer.Option(0, min=0, help="Diffusion models: RePaint resampling per step."),
    steps: int = typer.Option(None, min=1, help="Diffusion models: reverse steps (default 200)."),
    fmt: str = typer.Option(None, "--format", "-f", help="Diffusion models: extxyz, cif or poscar."),
    progress: bool = typer.Option(True, help="Show a progress bar (diffusion models)."),
    centre: int = typer.Option(0, "--centre", help="Index of the centre atom in the file."),
    n: int = typer.Option(10, "-n", "--n", min=1, help="Number of completions."),
    seed: int = typer.Option(0, help="Random seed."),
    restarts: int = typer.Option(8, min=1, help="Latent restarts per completion (best kept)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
) -> None:
    """Infilling: generate the missing atoms around held ones.

    Examples:

      atomsmith infill env.xyz --k 5 -n 10 --out completions.extxyz

      atomsmith infill --model perov-5 --fixed partial.cif --n-free 1 -n 10 --out completed.extxyz
    """
    import numpy as np
    from rich.console import Console

    from atomsmith.api.infilling import infill
    from atomsmith.cli.interpolate import load_environment_vae, read_structure
    from atomsmith.cli.output import check_output, output_plan, print_summary
    from atomsmith.generators.environments import ops
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.structures import io
    from atomsmith.pretrained import kind_of, model_class, require_kind
    from atomsmith.training.checkpoint import CheckpointError

    try:  # UnknownModelError and WrongModelKindError are ValueErrors
        kind = kind_of(model)
        require_kind(model, kind, infill_kinds())
    except (CheckpointError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if model_class(kind).capabilities.fixed_atoms:  # declared by the model class (nothing loaded yet)
        if environment is not None:
            raise typer.BadParameter(
                f"{model} is a crystal diffusion model: give the partial crystal with --fixed FILE and --n-free, not "
                "an environment file (environment infilling needs a gram-vae or eq-vae model)")
        if fixed is None:
            raise typer.BadParameter("give the partial crystal with --fixed FILE", param_hint="--fixed")
        from atomsmith.cli.infill_crystal import infill_crystals
        from atomsmith.pretrained import load_model

        check_output(out, force, directory=output_plan(out, fmt, n)[1])  # before loading the model

        try:
            generator = load_model(model)
        except (CheckpointError, ValueError, OSError) as exc:  # e.g. a damaged payload behind a sound header
            raise typer.BadParameter(str(exc), param_hint="--model") from None
        return infill_crystals(generator, model, Path(fixed), n_free, n, seed, out, fmt, free_species,
                               free_lattice, resample, steps, force, progress)
    if environment is None:
        raise typer.BadParameter("give the environment file (ENVIRONMENT)", param_hint="ENVIRONMENT")
    console = Console(stderr=True)
    check_output(out, force)
    vae = load_environment_vae(model)
    crystal = read_structure(environment, "ENVIRONMENT")
    try:
        crystals = infill(vae, crystal, n=n, seed=seed, k=k, centre=centre, restarts=restarts,
                          held=_parse_indices(fixed) if fixed is not None else None)
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc)) from None
    io.write(out, crystals, format="extxyz", overwrite=force)
    kk = int(crystals[0].properties["k"])
    envs = np.stack([c.positions[1:] - c.positions[0] for c in crystals])
    rows = [("held atoms k / environment n", f"{kk} / {vae.n_neighbors}"),
            ("completions", str(n)),
            ("fit RMSD of held atoms (median)", f"{np.median([c.properties['fit_rmsd'] for c in crystals]):.3f} Å"),
            ("closest pair (median)", f"{np.median(ops.min_pair_distance(envs)):.2f} Å"),
            ("output", str(out))]
    print_summary(f"atomsmith infill: {model}", rows, console)


def register(app: typer.Typer) -> None:
    app.command("infill")(infill_command)
