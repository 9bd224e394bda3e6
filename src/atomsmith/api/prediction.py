"""``atomsmith.predict``: a trained property predictor on structures.

With the shipped predictor::

    atomsmith.predict("perov-5-heat-ref", "samples.extxyz")     # [n] eV, one value per structure

Structures come as one crystal, a sequence of them or a file:

    >>> import numpy as np
    >>> from atomsmith import Crystal
    >>> from atomsmith.api.prediction import as_crystals
    >>> si = Crystal(np.eye(3) * 5.43, np.zeros((1, 3)), np.array([14]))
    >>> len(as_crystals(si)), len(as_crystals([si, si]))
    (1, 2)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

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


def _predictor(model: ModelLike) -> Any:
    from atomsmith.predictors.model import CHECKPOINT_KIND

    if hasattr(model, "predict") and hasattr(model, "config"):
        return model
    return resolve_model(model, kinds=(CHECKPOINT_KIND,))[0]


def applicability(model: ModelLike, structures: StructuresLike) -> list[list[str]]:
    """Per structure, every way it lies far outside the predictor's training data (elements, atom count, volume per
    atom, density, cell length; :func:`atomsmith.predictors.applicability.check_structure`). An empty list: inside,
    or the predictor has no recorded training domain."""
    from atomsmith.predictors.applicability import check_structure

    domain = getattr(_predictor(model), "domain", None)
    return [check_structure(c, domain) for c in as_crystals(structures)]


def predict(model: ModelLike, structures: StructuresLike, *, batch_size: int = 32,
            warn: bool = True) -> list[np.ndarray]:
    """The predictor's output for each structure.

    Args:
      model: a predictor (shipped name such as ``"perov-5-heat-ref"``, checkpoint path or loaded model).
      structures: a Crystal, a sequence of them, or a file.
      warn: issue an :class:`~atomsmith.predictors.applicability.OutOfDomainWarning` for each structure far outside
        the predictor's training data (see :func:`applicability`); the value is returned all the same.

    Returns:
      One array per structure: ``()`` for scalars (units of the target, e.g. eV), ``[3, 3]`` for rank-2 tensors,
      ``[n_atoms, ...]`` for per-atom targets (e.g. Born charges, e).
    """
    import warnings

    from atomsmith.predictors.applicability import OutOfDomainWarning, check_structure

    predictor = _predictor(model)
    crystals = as_crystals(structures)
    if warn:
        for k, crystal in enumerate(crystals):
            problems = check_structure(crystal, getattr(predictor, "domain", None))
            if problems:
                warnings.warn(OutOfDomainWarning(f"structure {k} ({crystal.formula}) is far outside the predictor's "
                                                 f"training data: {'; '.join(problems)}"), stacklevel=2)
    return predictor.predict(crystals, batch_size=batch_size)
