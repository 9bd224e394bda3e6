"""``atomsmith interpolate --model perov-5 a.cif b.cif --steps 9 --out path.extxyz``: crystals along the path between
two crystals' probability-flow latents (:mod:`atomsmith.generators.diffusion.interpolation`), written as one
multi-frame extxyz file, with a summary table."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def interpolate_crystals(model: str, first: Path, second: Path, out: Path, *, steps: int, ode_steps: int | None,
                         species: str | None, target: list[str] | None, guidance_scale: float,
                         property_scale: float, force: bool) -> None:
    """Check the inputs (one-line errors, exit 2, before any model runs), interpolate, write ``out`` atomically and
    print the summary. ``out`` was already checked by the caller."""
    import numpy as np
    from rich.console import Console

    from atomsmith.api.interpolation import crystal_path
    from atomsmith.cli.inputs import read_structure
    from atomsmith.cli.output import print_summary
    from atomsmith.generators.diffusion.inversion import DEFAULT_ODE_STEPS, DEFAULT_TOL, species_onehot
    from atomsmith.generators.diffusion.interpolation import species_mode
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.metrics.validity import min_pair_distance, structure_validity
    from atomsmith.pretrained import load_model
    from atomsmith.structures import io
    from atomsmith.training.checkpoint import CheckpointError

    console = Console(stderr=True)
    a, b = read_structure(first, "FIRST"), read_structure(second, "SECOND")
    if a.n_atoms != b.n_atoms:
        raise typer.BadParameter(f"{first} has {a.n_atoms} atoms and {second} has {b.n_atoms}; crystal "
                                 "interpolation needs the same number of atoms (atom slots are matched one to one)")
    try:
        generator = load_model(model)
    except (CheckpointError, ValueError, OSError) as exc:  # e.g. a damaged payload behind a sound header
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    for path, crystal, hint in ((first, a, "FIRST"), (second, b, "SECOND")):
        try:
            species_onehot(generator, crystal.numbers)
        except ValueError as exc:
            raise typer.BadParameter(f"{path}: {exc}", param_hint=hint) from None
    try:
        mode = species_mode(generator, species)
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--species") from None
    t0 = time.perf_counter()
    try:
        path = crystal_path(generator, model, a, b, steps=steps, ode_steps=ode_steps, species=mode,
                            target=list(target) if target else None, guidance_scale=guidance_scale,
                            property_scale=property_scale)
    except ValueError as exc:  # InvalidRequestError, UnknownPropertyError and the model's own checks
        raise typer.BadParameter(str(exc)) from None
    seconds = time.perf_counter() - t0
    io.write(out, path.frames, format="extxyz", overwrite=force)
    frames = path.frames
    valid = [structure_validity(f.wrapped()) for f in frames]
    moves = [float(np.max(np.linalg.norm((f.frac_coords - p.frac_coords) @ f.lattice, axis=1)))
             for p, f in zip(frames[:-1], frames[1:])]

    def rms(value):
        return "no match" if value is None else f"{value:.4f}"

    corr = path.correspondence
    if path.switch is not None:
        species_row = f"held; {a.formula} until frame {path.switch - 1}, then {path.second.formula}"
    else:
        species_row = "held" if mode == "held" else "latent (encoded, interpolated, decoded)"
    rows = [("frames / atoms", f"{len(frames)} / {a.n_atoms}"),
            ("species", species_row),
            ("atom matching (RMS, species changed)", f"{corr.rms:.3f} Å, {corr.species_changed}"),
            ("ODE steps", str(ode_steps or DEFAULT_ODE_STEPS)),
            ("end-point StructureMatcher RMS (first / last)", f"{rms(path.end_rms[0])} / {rms(path.end_rms[1])}"),
            ("end-point max coordinate error (fractional)", f"{path.end_error[0]:.2e} / {path.end_error[1]:.2e}"),
            ("inversion residual (first / second)", f"{path.residual[0]:.1e} / {path.residual[1]:.1e}"),
            ("structurally valid frames (d >= 0.5 Å, V >= 0.1 Å^3)", f"{sum(valid)} / {len(frames)}"),
            ("largest atom move between frames", f"{max(moves):.2f} Å"),
            ("closest pair (median over frames)",
             f"{np.median([min_pair_distance(f.wrapped(), 6.0) for f in frames]):.2f} Å"),
            ("time (incl. compilation)", f"{seconds:.1f} s"),
            ("output", f"{out} (extxyz)")]
    if target:
        objective = [f.properties.get("guidance_objective") for f in frames[1:-1]]
        rows.insert(-2, ("guided towards", ", ".join(target) + f" (peak scale {guidance_scale:g})"))
        if objective and all(v is not None for v in objective):
            rows.insert(-2, ("guidance objective (median, inner frames)", f"{float(np.median(objective)):.3f}"))
    print_summary(f"atomsmith interpolate: {model}", rows, console)
    if max(path.residual) > 10 * DEFAULT_TOL:
        console.print("note: the probability-flow inversion did not reach its tolerance for every component (the "
                      "model's last denoising step cannot produce some part of an input exactly, e.g. a lattice "
                      "angle it always denoises to the training value); the end-point errors above include that")
