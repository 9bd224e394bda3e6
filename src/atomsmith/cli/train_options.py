"""Options and checks shared by every ``atomsmith train <family>`` command.

Each family keeps its own model options; the ones every training run has (output checkpoint, resumable training
state, seed, overwrite, progress) are defined once here so that their flags and help read the same everywhere.
A typer ``OptionInfo`` is an immutable default marker, so one instance can be the default of several commands.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
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


def check_output(out: Path, force: bool, train_state: Path | None = None) -> None:
    """Before any work: refuse an existing checkpoint unless ``--force`` was given, and an ``--out`` or training
    state that cannot be written (:func:`atomsmith.cli.output.check_output`; a usage error, exit code 2)."""
    from atomsmith.cli.output import check_output as check_writable

    check_writable(out, force)
    if train_state is not None:  # an existing training state is resumed, not overwritten
        check_writable(train_state, True, param_hint="--train-state")


def saved_step(state_path: Path) -> int | None:
    """The optimiser step stored in a training state (``None`` when it holds none)."""
    import numpy as np

    from atomsmith.training import checkpoint as ckpt

    state, _ = ckpt.load(state_path)
    try:
        return int(np.asarray(state["state"]["step"]))
    except (KeyError, TypeError, ValueError):
        return None


def announce_resume(state_path: Path, kind: str, console) -> None:
    """Before training: when ``state_path`` exists, check that it is the training state of a ``kind`` model (else a
    usage error naming what it holds) and say from which step the run resumes."""
    from atomsmith.training import checkpoint as ckpt

    if not state_path.exists():
        return
    try:
        header = ckpt.read_header(state_path)
        expected = f"train-state:{kind}"
        if header["kind"] != expected:
            raise typer.BadParameter(f"{state_path} holds a {header['kind']!r} checkpoint, not the training state of "
                                     f"a {kind} model ({expected!r}); remove it or pass another --train-state",
                                     param_hint="--train-state")
        step = saved_step(state_path)
    except (ckpt.CheckpointError, OSError) as exc:
        raise typer.BadParameter(f"{exc} (remove it to start afresh)", param_hint="--train-state") from None
    loop = header["metadata"].get("loop", {}) if isinstance(header["metadata"], dict) else {}
    where = f"step {step}" if step is not None else "its last step"
    if isinstance(loop, dict) and loop.get("finished"):
        console.print(f"{state_path}: training already finished at {where}; writing the model from it",
                      highlight=False, markup=False, soft_wrap=True)
    else:
        console.print(f"resuming from {where} (training state {state_path})", highlight=False, markup=False,
                      soft_wrap=True)  # one line: a long path must not be broken inside a word


@contextlib.contextmanager
def interruptible(state_path: Path, family: str) -> Iterator[None]:
    """Ctrl-C during training (the loop saves its state first): say where the state is and which command resumes
    it, then exit with code 130 (the shell's code for SIGINT)."""
    try:
        yield
    except KeyboardInterrupt:
        step = None
        if state_path.exists():
            with contextlib.suppress(Exception):
                step = saved_step(state_path)
        if state_path.exists():
            at = f" at step {step}" if step is not None else ""
            typer.echo(f"interrupted: training state saved{at} in {state_path}; the same command resumes it: "
                       f"{command_line(family)}", err=True)
        else:
            typer.echo("interrupted before the first training state was written; nothing to resume", err=True)
        raise typer.Exit(130) from None


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
