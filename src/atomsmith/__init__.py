"""atomsmith: generative inverse design of crystalline and amorphous materials, built on JAX.

The public surface is small and explicit; submodules hold the rest::

    import atomsmith
    crystals = atomsmith.sample("perov-5", 8, target={"heat_ref": 0.6})   # guided by the shipped predictor
    atomsmith.predict("perov-5-heat-ref", crystals)                        # eV, one value per structure
    atomsmith.write("guided.extxyz", crystals)

Verbs (:mod:`atomsmith.api`): ``load_model``, ``sample``, ``infill``, ``interpolate``, ``assemble``, ``predict``,
``evaluate``, ``judge`` (CHGNet relaxation and phonons; needs the optional ``atomsmith[judge]`` extra); data:
``Crystal``, ``read``, ``write``, ``load_dataset``; guidance objectives (lower is better) from
:mod:`atomsmith.guidance`: ``PropertyTarget``, ``PropertyRange``, ``PropertyExtremum``, ``TensorMatch``,
``MinDistance``, ``SWEnergyTarget``, ``AnisotropyTarget``.

Names are imported lazily so that ``import atomsmith`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Crystal": "atomsmith.structures.crystal",
    "read": "atomsmith.structures.io",
    "read_one": "atomsmith.structures.io",
    "write": "atomsmith.structures.io",
    "neighbor_list": "atomsmith.graphs.neighbors",
    "batch_graphs": "atomsmith.graphs.batching",
    "GraphBatch": "atomsmith.graphs.batching",
    "local_environments": "atomsmith.graphs.environments",
    "Encoder": "atomsmith.nn.encoder",
    "EncoderConfig": "atomsmith.nn.encoder",
    "load_model": "atomsmith.pretrained",
    "sample": "atomsmith.api",
    "infill": "atomsmith.api",
    "interpolate": "atomsmith.api",
    "assemble": "atomsmith.api",
    "predict": "atomsmith.api",
    "evaluate": "atomsmith.api",
    "judge": "atomsmith.api",
    "PropertyTarget": "atomsmith.guidance",
    "PropertyRange": "atomsmith.guidance",
    "PropertyExtremum": "atomsmith.guidance",
    "TensorMatch": "atomsmith.guidance",
    "MinDistance": "atomsmith.guidance",
    "SWEnergyTarget": "atomsmith.guidance",
    "AnisotropyTarget": "atomsmith.guidance",
}
_RENAMED = {"load_dataset": ("atomsmith.datasets", "load")}

__all__ = sorted([*_EXPORTS, *_RENAMED, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'atomsmith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
