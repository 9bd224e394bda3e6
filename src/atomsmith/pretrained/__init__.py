"""Small pretrained checkpoints shipped with atomsmith, and :func:`load_model` to open them by name or path.

``registry.json`` maps a name to its file (beside this module), checkpoint kind, description and how it was
trained; the checkpoint's own metadata (``how_trained``) records the exact command, data, steps, seed and wall
time. Loading dispatches on the checkpoint's ``kind`` through the table of :mod:`atomsmith.pretrained.kinds`
(kind -> ``"module:Class"``, imported on first use; each class has ``kind`` and ``load(path)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import Any

from atomsmith.pretrained.kinds import MODEL_CLASSES, model_class
from atomsmith.training import checkpoint as ckpt

__all__ = ["DEFAULT_MODEL", "GENERATOR_KINDS", "MODEL_CLASSES", "UnknownModelError", "WrongModelKindError",
           "available", "info", "kind_of", "load_model", "model_class", "path_of", "resolve_eq_vae", "resolve_gram_vae"]

#: the model ``atomsmith sample`` uses when none is named.
DEFAULT_MODEL = "perov-5"
#: checkpoint kinds that ``sample`` can draw from: crystal diffusion models (final or a training state) and the
#: environment VAEs.
GENERATOR_KINDS = ("diffusion", "train-state:diffusion", "gram-vae", "eq-vae")
_HERE = Path(__file__).resolve().parent


class UnknownModelError(ValueError):
    """A model name that is neither registered nor an existing checkpoint file."""


class WrongModelKindError(ValueError):
    """A model that exists but is of another kind than the caller needs (e.g. a diffusion model for infilling)."""


@cache
def _registry() -> dict[str, dict[str, Any]]:
    with open(_HERE / "registry.json", encoding="utf-8") as handle:
        return json.load(handle)


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(_registry())


def info(name: str) -> dict[str, Any]:
    """Registry entry of ``name`` (file, kind, description, how trained)."""
    try:
        return dict(_registry()[name])
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; available: {', '.join(available())} (or pass a checkpoint file path)") from None


def path_of(name: str) -> Path:
    """File of a registered model."""
    return _HERE / info(name)["file"]


def kind_of(name_or_path: str | os.PathLike) -> str:
    """Checkpoint kind of a registered name or a checkpoint path (reads only the header)."""
    name = str(name_or_path)
    if name in _registry():
        return str(info(name)["kind"])
    return str(ckpt.read_header(resolve_path(name))["kind"])


def resolve_path(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file of a registered name or a path; :class:`UnknownModelError` (listing the shipped names)
    when it is neither."""
    name = str(name_or_path)
    if name in _registry():
        return path_of(name)
    if Path(name).is_file():
        return Path(name)
    raise UnknownModelError(
        f"unknown model {name!r}: not a shipped model and no such file; available: {', '.join(available())}")


def require_kind(name: str, kind: str, kinds: Collection[str] | None) -> None:
    """:class:`WrongModelKindError` (naming shipped models of the wanted kinds) unless ``kind`` is in ``kinds``."""
    if kinds is not None and kind not in kinds:
        shipped = [n for n in available() if info(n)["kind"] in kinds]
        raise WrongModelKindError(f"{name} is a {kind!r} model; this needs a {' or '.join(map(repr, kinds))} model"
                                  + (f" (e.g. the shipped {', '.join(map(repr, shipped))})" if shipped else ""))


def load_model(name_or_path: str | os.PathLike, kinds: Collection[str] | None = None) -> Any:
    """A model from a registered name (e.g. ``"perov-5"``) or a checkpoint path.

    ``kinds`` restricts the accepted checkpoint kinds (e.g. ``("gram-vae",)``); another kind raises
    :class:`WrongModelKindError`. Raises :class:`UnknownModelError` (listing the available names) for a name that is
    neither registered nor a file, and the checkpoint errors of :mod:`atomsmith.training.checkpoint` for damaged or
    foreign files.
    """
    name = str(name_or_path)
    path = resolve_path(name)
    kind = ckpt.read_header(path)["kind"]
    require_kind(name, kind, kinds)
    if kind not in MODEL_CLASSES:
        raise ckpt.CheckpointMismatchError(
            f"{path} holds a {kind!r} checkpoint; load_model can open: {', '.join(sorted(MODEL_CLASSES))}")
    model = model_class(kind).load(path)
    if name in _registry() and getattr(model, "domain", "absent") is None and "domain" in info(name):
        # shipped predictors trained before checkpoints recorded their training domain: the registry has it
        from atomsmith.predictors.applicability import TrainingDomain

        model = model.replace(domain=TrainingDomain.from_dict(info(name)["domain"]))
    return model


def resolve_gram_vae(name_or_path: str | os.PathLike = "gram-vae"):  # -> atomsmith.generators.gram_vae.GramVAE
    """A Gram VAE from a checkpoint path or a registered name (default: the shipped ``gram-vae``).

    Raises:
      ValueError: neither an existing file nor a registered name, or a registered model of another kind.
      atomsmith.training.checkpoint.CheckpointError: a damaged or foreign checkpoint file.
    """
    return load_model(name_or_path, kinds=("gram-vae",))


def resolve_eq_vae(name_or_path: str | os.PathLike = "eq-vae"):  # -> atomsmith.generators.eq_vae.EqVAE
    """An equivariant VAE from a checkpoint path or a registered name (default: the shipped ``eq-vae``).

    Raises:
      ValueError: neither an existing file nor a registered name, or a registered model of another kind.
      atomsmith.training.checkpoint.CheckpointError: a damaged or foreign checkpoint file.
    """
    return load_model(name_or_path, kinds=("eq-vae",))
