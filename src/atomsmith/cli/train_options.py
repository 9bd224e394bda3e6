"""Options and checks shared by every ``atomsmith train <family>`` command.

Each family keeps its own model options; the ones every training run has (output checkpoint, resumable training
state, seed, overwrite, progress) are defined once here so that their flags and help read the same everywhere.
A typer ``OptionInfo`` is an immutable default marker, so one instance can be the default of several commands.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

OUT = typer.Option(..., "--out", help="Model checkpoint to write (the best EMA weights + how it was trained).")
SEED = typer.Option(0, help="Seed of initialisation, data split, batching and noise.")
TRAIN_STATE = typer.Option(None, help="Training checkpoint for resuming (default: OUT.train.ckpt).")
FORCE = typer.Option(False, "--force", help="Overwrite OUT if it exists.")
PROGRESS = typer.Option(True, help="Show a progress bar with the running loss.")
DATA = typer.Option(None, "--data", help="Your own data instead of --dataset: a CSV of CIFs (a 'cif' column plus "
                                         "property columns) or a folder of extxyz/CIF/POSCAR files. A random "
                                         "--val-fraction is held out for validation.")
ON_BAD = typer.Option("fail", "--on-bad", help="What to do with bad rows of --data (unparsable CIF, overlapping "
                                               "atoms, missing or non-numeric target): fail (list them with line "
                                               "numbers and stop) or skip (list them and train on the rest).")
DEVICES = typer.Option(None, "--devices", min=1, help="Devices each batch is split over (data parallel; default: "
                                                      "every device JAX sees; 1 = one device).")
CIF_COLUMN = typer.Option("cif", help="CSV column holding the CIF text (with --data).")
VAL_FRACTION = typer.Option(0.2, help="Held-out validation fraction when there is no separate validation split "
                                      "(--data, or --val-split equal to --train-split).")


def check_output(out: Path, force: bool) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--force`` was given (a CLI usage error, exit code 2)."""
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists; pass --force to overwrite it", param_hint="--out")


def load_own_data(path: Path, targets: list[str], on_bad: str, cif_column: str, console) -> list:
    """Read ``--data`` (validated), print the rejected entries with their line numbers, return the crystals.

    Bad data is a usage error of the command (exit code 2), reported without a traceback.
    """
    from atomsmith.datasets.user_data import load_user_data
    from atomsmith.structures.errors import StructureError

    if on_bad not in ("fail", "skip"):
        raise typer.BadParameter(f"{on_bad!r}: use fail or skip", param_hint="--on-bad")
    try:
        data = load_user_data(path, targets, cif_column=cif_column, on_bad=on_bad)
    except (FileNotFoundError, StructureError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    for problem in data.problems:
        console.print(f"[yellow]skipped[/] {problem.where}: {problem.message}", markup=True, highlight=False)
    console.print(f"{path}: {len(data.crystals)} structures"
                  + (f", {len(data.problems)} skipped" if data.problems else ""))
    return list(data.crystals)


def split_own_data(crystals: list, val_fraction: float, seed: int, data: Path) -> tuple[list, list]:
    """``(train, validation)`` of ``--data`` (a deterministic random hold-out); a usage error when either is empty."""
    from atomsmith.datasets import random_split

    if not 0.0 < val_fraction < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1, got {val_fraction}", param_hint="--val-fraction")
    train, val = random_split(crystals, val_fraction, seed=seed)
    if not train or not val:
        raise typer.BadParameter(f"{data}: {len(crystals)} usable structure(s) are too few to hold out a validation "
                                 f"set with --val-fraction {val_fraction:g}", param_hint="--data")
    return train, val


def train_state_path(out: Path, train_state: Path | None) -> Path:
    """Where the resumable training state lives: ``--train-state`` or ``OUT.train.ckpt``."""
    return train_state or out.with_suffix(".train.ckpt")


def command_line(family: str) -> str:
    """The command that started this run, as a user would type it (recorded in ``how_trained``)."""
    argv = sys.argv
    if argv[1:3] == ["train", family]:
        return f"atomsmith train {family} " + shlex.join(argv[3:])
    return shlex.join(argv)
