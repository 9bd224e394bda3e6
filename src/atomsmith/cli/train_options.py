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


def check_output(out: Path, force: bool) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--force`` was given (a CLI usage error, exit code 2)."""
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists; pass --force to overwrite it", param_hint="--out")


def train_state_path(out: Path, train_state: Path | None) -> Path:
    """Where the resumable training state lives: ``--train-state`` or ``OUT.train.ckpt``."""
    return train_state or out.with_suffix(".train.ckpt")


def command_line(family: str) -> str:
    """The command that started this run, as a user would type it (recorded in ``how_trained``)."""
    argv = sys.argv
    if argv[1:3] == ["train", family]:
        return f"atomsmith train {family} " + shlex.join(argv[3:])
    return shlex.join(argv)
