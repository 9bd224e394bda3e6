"""``atomsmith judge SAMPLES [--reference NAME:SPLIT]``: relax generated structures with CHGNet and report how far
they moved, how low their energy went and (``--phonons``) whether they are dynamically stable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

#: Rows of the printed table: (section, key, label, kind) with kind "pct", "float", "int" or "ev".
_ROWS = [
    ("summary", "n_structures", "structures", "int"),
    ("summary", "n_failed", "failed (potential or input)", "int"),
    ("summary", "median_energy_per_atom_initial", "median energy before relaxation (eV/atom)", "float"),
    ("summary", "median_energy_per_atom_relaxed", "median energy after relaxation (eV/atom)", "float"),
    ("summary", "median_energy_drop_per_atom", "median energy drop (eV/atom)", "float"),
    ("summary", "median_rmsd", "median RMSD generated vs relaxed (Å)", "float"),
    ("summary", "median_abs_volume_change", "median |volume change| (%)", "pct"),
    ("summary", "fraction_converged", "relaxations converged (%)", "pct"),
    ("summary", "fraction_still_matching", "still matching after relaxation (%)", "pct"),
    ("summary", "fraction_phonon_stable", "phonon-stable (%)", "pct"),
    ("summary", "median_min_frequency_thz", "median lowest frequency (THz)", "float"),
    ("reference", "fraction_with_reference_formula", "with a same-formula reference (%)", "pct"),
    ("reference", "median_energy_above_reference", "median energy above reference (eV/atom)", "float"),
    ("reference", "fraction_within_threshold", "within threshold of reference (%)", "pct"),
    ("reference", "median_reference_energy_per_atom_relaxed", "reference median relaxed energy (eV/atom)", "float"),
    ("reference", "wasserstein_relaxed_energy_per_atom", "W1 relaxed energies vs reference (eV/atom)", "float"),
]


def judge_table(result: dict[str, Any], title: str):
    from rich.table import Table

    from atomsmith.cli.output import format_value

    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for section, key, label, kind in _ROWS:
        values = result.get(section) or {}
        if key in values:
            table.add_row(label, format_value(values[key], kind, percent_digits=1))
    return table


def judge_command(
    samples: Path = typer.Argument(..., help="extxyz file, multi-block CIF, or directory of CIF / extxyz / POSCAR "
                                   "files (gzipped too)."),
    reference: str | None = typer.Option(None, "--reference", "-r", help="Reference set relaxed the same way: "
                                         "NAME:SPLIT (e.g. perov_5:test) or a structure file / directory."),
    reference_limit: int = typer.Option(100, min=1, help="Relax only the first N reference structures."),
    fmax: float = typer.Option(0.1, help="FIRE stops when the largest force is below this (eV/Å)."),
    steps: int = typer.Option(500, min=0, help="FIRE step limit per structure."),
    fixed_cell: bool = typer.Option(False, "--fixed-cell", help="Relax positions only (default: cell too)."),
    phonons: bool = typer.Option(False, "--phonons", help="Phonons of each relaxed structure by finite "
                                 "displacements (phonopy, CHGNet forces)."),
    supercell: int = typer.Option(2, min=1, help="Phonon supercell repetitions along each lattice vector."),
    mesh: int = typer.Option(4, min=1, help="Γ-centred q-mesh per direction for the phonon check."),
    imaginary_threshold: float = typer.Option(0.1, min=0.0, help="A structure is phonon-stable when no frequency "
                                              "is below minus this (THz)."),
    threshold: float = typer.Option(0.1, min=0.0, help="Energy above reference counted as close (eV/atom)."),
    limit: int | None = typer.Option(None, min=1, help="Judge only the first N samples."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the results (per structure and per set) as "
                                    "JSON here."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Judge generated structures with a physical model: CHGNet relaxation (FIRE), energies, RMSD, matching,
    volume change, optional phonons. Needs the optional extra: pip install 'atomsmith\\[judge]'.

    Examples:

      atomsmith judge samples.extxyz --out judged.json

      atomsmith judge samples.extxyz --reference perov_5:test --reference-limit 50 --phonons --out judged.json
    """
    from rich.console import Console

    from atomsmith.cli.errors import sample_input_error_types
    from atomsmith.cli.output import write_json
    from atomsmith.judging import MissingExtraError, judge
    from atomsmith.metrics.evaluate import json_safe

    console = Console(stderr=True)

    def fail(message: str) -> None:  # bad input or environment: one line on stderr, exit 2
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise typer.Exit(2)

    if out is not None and out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    if not samples.exists():
        fail(f"no such file or directory: {samples}")
    if fmax <= 0:
        fail(f"--fmax must be positive, got {fmax}")
    try:
        result = judge(samples, reference, fmax=fmax, steps=steps, relax_cell=not fixed_cell, phonons=phonons,
                       supercell=supercell, mesh=mesh, imaginary_threshold=imaginary_threshold,
                       reference_limit=reference_limit, limit=limit, threshold=threshold, progress=not quiet)
    except MissingExtraError as exc:
        fail(str(exc))
    except sample_input_error_types() as exc:
        fail(str(exc))
    result = json_safe({"samples": str(samples), **result})
    Console().print(judge_table(result, title=f"{samples.name} judged by CHGNet {result.get('chgnet_version')}"))
    timing = result["timing_s"]
    console.print(f"{timing['per_structure']:.2f} s per structure, {timing['samples']:.1f} s for the samples"
                  + (f", {timing['reference']:.1f} s for the reference" if "reference" in timing else ""))
    if out is not None:
        write_json(out, result, force)
        console.print(f"wrote {out}")
    if result["summary"]["n_failed"] == result["summary"]["n_structures"]:
        typer.echo("error: no structure could be judged (see the errors in the results)", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_command)
