"""``atomsmith predict --model PATH structure.cif ...``: print a predictor's output for structure files.

Scalars are printed per structure (or per atom); tensors as 3x3 matrices, rank-3 tensors as three 3x3 blocks
``T[k, :, :]`` (k = the first index, e.g. the displacement direction of a Raman tensor). ``--json`` writes
machine-readable output instead.

Structures far outside the predictor's training data (unseen elements, atom counts, cell sizes, densities; see
:mod:`atomsmith.predictors.applicability`) are still predicted, with a ``warning: ...`` line on stderr each and
their reasons in the JSON field ``domain_warnings`` (empty when inside). So is a structure with two atoms closer
than 0.5 Å (a generator's structurally invalid sample, as ``evaluate`` counts it): it is predicted, warned about and
flagged in ``domain_warnings``, so that one bad sample does not stop a whole file from being scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer


def _matrix(m: np.ndarray, fmt: str = "{:9.4f}") -> str:
    return "\n".join(" ".join(fmt.format(v) for v in row) for row in m)


def _render(value: np.ndarray) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return f"{float(value):.6g}"
    if value.ndim == 1:
        return " ".join(f"{v:.4f}" for v in value)
    if value.ndim == 2:
        return _matrix(value)
    return "\n".join(f"[{k}]\n{_matrix(value[k])}" for k in range(value.shape[0]))


def _overlap(crystal) -> list[str]:
    """One message when two atoms are closer than the structural-validity minimum (a generator's invalid sample is
    still scored, as ``evaluate`` counts it, but its prediction is flagged rather than refused)."""
    from atomsmith.structures.crystal import DEFAULT_MIN_DISTANCE

    pairs = crystal.close_pairs(DEFAULT_MIN_DISTANCE)
    if not pairs:
        return []
    i, j, d = pairs[0]
    return [f"atoms {i} ({crystal.symbols[i]}) and {j} ({crystal.symbols[j]}) are {d:.3f} Å apart "
            f"(< {DEFAULT_MIN_DISTANCE} Å; {len(pairs)} such pair{'s' if len(pairs) > 1 else ''})"]


def predict(
    structures: list[Path] = typer.Argument(..., help="Structure files (CIF, extxyz, POSCAR; several per file ok)."),
    model: str = typer.Option(..., "--model", "-m", help="Predictor: shipped name (e.g. perov-5-heat-ref) or a "
                                                         "checkpoint from `atomsmith train predictor`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the predictions as JSON here (atomically)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
    batch_size: int = typer.Option(16, help="Structures per batch."),
) -> None:
    """Predict the property a trained predictor was trained for.

    Examples:

      atomsmith predict --model perov-5-heat-ref samples.extxyz

      atomsmith predict --model my_gap.ckpt a.cif b.cif --out predictions.json
    """
    from rich.console import Console
    from rich.table import Table

    from atomsmith.api.sampling import resolve_model
    from atomsmith.cli.output import check_output, write_json
    from atomsmith.predictors.applicability import check_structure
    from atomsmith.predictors.model import CHECKPOINT_KIND
    from atomsmith.pretrained import UnknownModelError, WrongModelKindError
    from atomsmith.structures import io
    from atomsmith.structures.errors import StructureError
    from atomsmith.training.checkpoint import CheckpointError

    console = Console()
    if out is not None:
        check_output(out, force)
    crystals, names = [], []
    for path in structures:
        try:
            found = io.read(path, min_distance=None)  # overlapping atoms: predicted and flagged below
        except (OSError, StructureError) as exc:  # missing, unreadable, a directory, malformed
            raise typer.BadParameter(str(exc), param_hint="STRUCTURES") from None
        crystals.extend(found)
        names.extend(str(path) if len(found) == 1 else f"{path}[{k}]" for k in range(len(found)))
    try:
        predictor, _ = resolve_model(model, kinds=(CHECKPOINT_KIND,))
    except (UnknownModelError, WrongModelKindError, CheckpointError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    domain = getattr(predictor, "domain", None)  # applicability: warn, and predict all the same
    problems = []
    for name, crystal in zip(names, crystals):
        overlap, outside = _overlap(crystal), check_structure(crystal, domain)
        if overlap:
            typer.echo(f"warning: {name} ({crystal.formula}) is not structurally valid: {overlap[0]}", err=True)
        if outside:
            typer.echo(f"warning: {name} ({crystal.formula}) is far outside the training data of {model}: "
                       f"{'; '.join(outside)}", err=True)
        problems.append(overlap + outside)
    values = predictor.predict(crystals, batch_size=batch_size)
    readout = predictor.config.readout
    records = [{"structure": n, "formula": c.formula, "target": predictor.target, "value": np.asarray(v).tolist(),
                "domain_warnings": p} for n, c, v, p in zip(names, crystals, values, problems)]
    if out is not None:
        write_json(out, records, force, indent=1)
    if as_json:
        typer.echo(json.dumps(records, indent=1))
        return
    kind = readout.tensor or "scalar"
    console.print(f"[bold]{predictor.target}[/bold] ({kind}, {readout.level}) from {model}")
    for name, crystal, value in zip(names, crystals, values):
        if readout.level == "structure":
            table = Table(title=f"{name}  {crystal.formula}", show_header=False) if readout.tensor else None
            if table is None:
                console.print(f"{name}  {crystal.formula}: {predictor.target} = {_render(value)}")
            else:
                table.add_row(_render(value))
                console.print(table)
            continue
        table = Table(title=f"{name}  {crystal.formula}")
        table.add_column("atom", justify="right")
        table.add_column("element")
        table.add_column(predictor.target)
        for k, (symbol, v) in enumerate(zip(crystal.symbols, value)):
            table.add_row(str(k), symbol, _render(v))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
