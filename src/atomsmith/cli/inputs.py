"""Input helpers shared by the commands: read a structure file or load an environment VAE, failing with
``typer.BadParameter`` (one ``error:`` line, exit code 2) naming the argument."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["load_environment_vae", "read_structure"]


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
