"""``atomsmith.predict``: a trained property predictor on structures.

    >>> import atomsmith
    >>> atomsmith.predict("perov-5-heat-ref", "samples.extxyz")     # [n] eV, one value per structure
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from atomsmith.api.sampling import ModelLike, resolve_model
from atomsmith.structures.crystal import Crystal

StructuresLike = Crystal | Sequence[Crystal] | str | os.PathLike


def as_crystals(structures: StructuresLike) -> list[Crystal]:
    """A list of crystals from one crystal, a sequence of them, or a structure file (every structure in it)."""
    if isinstance(structures, Crystal):
        return [structures]
    if isinstance(structures, (str, os.PathLike)):
        from atomsmith.structures.io import read

        return read(structures)
    return list(structures)


def predict(model: ModelLike, structures: StructuresLike, *, batch_size: int = 32) -> list[np.ndarray]:
    """The predictor's output for each structure.

    Args:
      model: a predictor (shipped name such as ``"perov-5-heat-ref"``, checkpoint path or loaded model).
      structures: a Crystal, a sequence of them, or a file.

    Returns:
      One array per structure: ``()`` for scalars (units of the target, e.g. eV), ``[3, 3]`` for rank-2 tensors,
      ``[n_atoms, ...]`` for per-atom targets (e.g. Born charges, e).
    """
    from atomsmith.predictors.model import CHECKPOINT_KIND

    predictor = model if hasattr(model, "predict") and hasattr(model, "config") else \
        resolve_model(model, kinds=(CHECKPOINT_KIND,))[0]
    return predictor.predict(as_crystals(structures), batch_size=batch_size)
