"""``atomsmith infill --model perov-5 --fixed partial.cif --n-free 3 -n 10 --out completed.extxyz``: complete a
crystal with a diffusion model, holding the atoms (and by default the cell) of a partial structure
(:class:`~atomsmith.generators.protocol.FixedAtoms`, RePaint replacement inside the sampler)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def infill_crystals(generator, name: str, partial: Path, n_free: int, n: int, seed: int, out: Path,
                    fmt: str | None, free_species: str | None, free_lattice: bool, resample: int,
                    steps: int | None, force: bool, progress: bool) -> None:
    """Run crystal infilling and write ``n`` completed cells (held atoms first, site property ``fixed``)."""
    import numpy as np
    from rich.console import Console

    from atomsmith.api.infilling import infill
    from atomsmith.api.sampling import parse_composition
    from atomsmith.cli.output import check_output, output_plan, print_summary, write_structures
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.metrics.validity import min_pair_distance, structure_validity
    from atomsmith.structures import io
    from atomsmith.structures.errors import StructureError

    console = Console(stderr=True)
    out_format, directory, gz = output_plan(out, fmt, n)
    check_output(out, force, directory=directory)
    if n_free is None:
        raise typer.BadParameter("give the number of atoms to generate with --n-free", param_hint="--n-free")
    try:
        structures = io.read(partial)
    except (StructureError, ValueError, OSError) as exc:
        raise typer.BadParameter(f"{partial}: {exc}", param_hint="--fixed") from None
    if len(structures) != 1:
        raise typer.BadParameter(f"{partial} holds {len(structures)} structures; give one partial cell",
                                 param_hint="--fixed")
    try:
        species = tuple(parse_composition(free_species)) if free_species else None
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--free-species") from None
    t0 = time.perf_counter()
    try:
        crystals = infill(generator, structures[0], n=n, seed=seed, n_free=n_free, free_species=species,
                          hold_lattice=not free_lattice, resample=resample, steps=steps, progress=progress)
    except ValueError as exc:  # InvalidRequestError and the sampler's own checks
        raise typer.BadParameter(str(exc)) from None
    seconds = time.perf_counter() - t0
    write_structures(out, crystals, out_format, directory, gz, force)
    valid = sum(structure_validity(c) for c in crystals)
    formulas = {}
    for c in crystals:
        formulas[c.formula] = formulas.get(c.formula, 0) + 1
    common = ", ".join(f"{f} ({k})" for f, k in sorted(formulas.items(), key=lambda x: -x[1])[:3])
    rows = [("held atoms / generated atoms", f"{structures[0].n_atoms} / {n_free}"),
            ("cell", "generated" if free_lattice else "held"),
            ("completed cells", str(len(crystals))),
            ("structurally valid (d >= 0.5 Å, V >= 0.1 Å^3)",
             f"{100 * valid / max(len(crystals), 1):.1f} %"),
            ("most common formulas", common),
            ("steps / RePaint resampling", f"{generator.options(steps=steps).steps} / {resample}"),
            ("time (incl. compilation)", f"{seconds:.1f} s"),
            ("closest pair (median)", f"{np.median([min_pair_distance(c, 6.0) for c in crystals]):.2f} Å"),
            ("output", f"{out} ({out_format}{', directory' if directory else ''})")]
    print_summary(f"atomsmith infill: {name}", rows, console)
