"""Which class opens which checkpoint kind: a table of ``"module:Class"`` names, imported only when a checkpoint of
that kind is loaded (so that the registry imports no model code up front, and the models never import the
registry).

Every class named here exposes ``kind`` (its checkpoint kind) and ``load(path)``.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["MODEL_CLASSES", "model_class"]

#: checkpoint kind -> ``"module:Class"`` whose ``load(path)`` opens it.
MODEL_CLASSES: dict[str, str] = {
    "diffusion": "atomsmith.generators.diffusion.model:DiffusionModel",
    "train-state:diffusion": "atomsmith.generators.diffusion.model:DiffusionModel",  # best EMA parameters
    "gram-vae": "atomsmith.generators.gram_vae.model:GramVAE",
    "eq-vae": "atomsmith.generators.eq_vae.model:EqVAE",
    "predictor": "atomsmith.predictors.model:Predictor",
}


def model_class(kind: str) -> type:
    """The class that loads checkpoints of ``kind`` (``KeyError`` for a kind not in :data:`MODEL_CLASSES`)."""
    module, _, name = MODEL_CLASSES[kind].partition(":")
    return getattr(import_module(module), name)
