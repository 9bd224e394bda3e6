"""``atomsmith evaluate SAMPLES --reference perov_5:test``: CDVAE benchmark metrics of any model's samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

#: Rows of the printed table: (key, label, kind) with kind "pct" (fraction shown in %), "float" or "int".
_ROWS = [
    ("n_samples", "samples", "int"),
    ("n_broken", "unbuildable cells", "int"),
    ("comp_valid", "comp. validity (%)", "pct"),
    ("struct_valid", "struct. validity (%)", "pct"),
    ("valid", "validity (%)", "pct"),
    ("cov_recall", "COV-R (%)", "pct"),
    ("cov_precision", "COV-P (%)", "pct"),
    ("amsd_recall", "AMSD-R", "float"),
    ("amsd_precision", "AMSD-P", "float"),
    ("amcd_recall", "AMCD-R", "float"),
    ("amcd_precision", "AMCD-P", "float"),
    ("subsample_size", "valid samples drawn for d_*", "int"),
    ("wdist_density", "d_rho (g/cm^3)", "float"),
    ("wdist_num_elems", "d_#el", "float"),
    ("wdist_prop", "d_prop", "float"),
    ("uniqueness", "uniqueness (%)", "pct"),
    ("novelty", "novelty (%)", "pct"),
    ("match_rate", "match rate (%)", "pct"),
    ("rms_dist", "RMSE", "float"),
    ("tight_match_rate", "tight matches, RMS < 0.1 (%)", "pct"),
    ("samples_per_target", "samples per structure", "int"),
]



def metrics_table(result: dict[str, Any], title: str = "metrics"):
    """A rich Table of the metrics present in ``result``."""
    from rich.table import Table

    from atomsmith.cli.output import format_value

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, kind in _ROWS:
        if key in result:
            table.add_row(label, format_value(result[key], kind))
    return table


def evaluate_command(
    samples: Path = typer.Argument(..., exists=True, help="extxyz file, multi-block CIF, or directory of "
                                   "CIF / extxyz / POSCAR files (any of them gzipped: *.extxyz.gz, *.cif.gz)."),
    reference: str = typer.Option(..., "--reference", "-r", help="Reference set: NAME:SPLIT (e.g. perov_5:test) "
                                  "or a structure file / directory."),
    task: str = typer.Option("generation", help="generation or csp (structure prediction)."),
    pairing: str = typer.Option("rounds", help="csp: sample j belongs to structure j mod n ('rounds') or j // k "
                                "('consecutive'), unless every sample has a gt_index property."),
    train: str = typer.Option("auto", help="Training set for novelty: NAME:SPLIT, a path, 'auto' (NAME:train of "
                              "the reference) or 'none'."),
    dataset: str | None = typer.Option(None, help="Dataset whose CDVAE coverage cutoffs to use (default: the "
                                       "reference's name)."),
    struct_cutoff: float | None = typer.Option(None, help="Override the structure-fingerprint cutoff."),
    comp_cutoff: float | None = typer.Option(None, help="Override the composition-fingerprint cutoff."),
    subsample: int = typer.Option(1000, help="Valid samples drawn for the distribution metrics (CDVAE: 1000)."),
    seed: int = typer.Option(0, help="Seed of that draw."),
    workers: int | None = typer.Option(None, help="Worker processes (default: all CPUs)."),
    comp_scaler: str = typer.Option("cdvae", help="Composition-fingerprint scaler: cdvae or reference."),
    uniqueness: bool = typer.Option(True, help="Compute uniqueness (StructureMatcher over valid samples)."),
    cache: bool = typer.Option(True, help="Cache reference fingerprints in $ATOMSMITH_CACHE_DIR."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the metrics as JSON here."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """CDVAE benchmark metrics (validity, COV-R/P, Wasserstein distances, uniqueness, novelty, CSP match rate).

    Examples:

      atomsmith evaluate samples.extxyz --reference perov_5:test --out metrics.json

      atomsmith evaluate csp_samples.extxyz --reference perov_5:test --task csp
    """
    from rich.console import Console

    from atomsmith.api.evaluation import training_set
    from atomsmith.cli.errors import sample_input_error_types
    from atomsmith.cli.output import check_output, write_json
    from atomsmith.metrics.evaluate import TASKS, evaluate, json_safe

    console = Console(stderr=True)
    if task not in TASKS:
        raise typer.BadParameter(f"--task must be one of {TASKS}, got {task!r}")
    if out is not None:
        check_output(out, force)
    if (struct_cutoff is None) != (comp_cutoff is None):
        raise typer.BadParameter("give both --struct-cutoff and --comp-cutoff, or neither")
    cutoffs = (struct_cutoff, comp_cutoff) if struct_cutoff is not None else None
    try:
        train_set = training_set(train, reference, warn=lambda m: console.print(f"[yellow]{m}[/yellow]")) \
            if task == "generation" else None
        result = evaluate(samples, reference, task=task, dataset=dataset, cutoffs=cutoffs, train=train_set,
                          pairing=pairing, n_subsample=subsample, seed=seed, n_workers=workers,
                          comp_scaler=comp_scaler, uniqueness=uniqueness, cache=cache, progress=not quiet)
    except sample_input_error_types() as exc:  # bad input: one line on stderr, exit code 2 (see `atomsmith --help`)
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from exc
    result = json_safe({"samples": str(samples), "reference": reference, **result})
    Console().print(metrics_table(result, title=f"{samples.name} vs {reference} ({task})"))
    console.print(f"total time {result['timing_s']['total']:.1f} s")
    if out is not None:
        write_json(out, result, force)
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
