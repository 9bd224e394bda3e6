"""``atomsmith.evaluate``: CDVAE benchmark metrics of generated structures against a reference set.

With a reference dataset (its fingerprints are computed once, then cached)::

    metrics = atomsmith.evaluate("samples.extxyz", "perov_5:test")
    metrics["validity"]["comp_valid"], metrics["coverage"]["cov_recall"]

Novelty needs a training set; it follows the reference unless given (``None`` or ``"none"``: no novelty):

    >>> from atomsmith.api.evaluation import training_set
    >>> training_set("none", "perov_5:test"), training_set("auto", [])
    (None, None)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from atomsmith.structures.crystal import Crystal


def evaluate(samples: Sequence[Crystal] | str | os.PathLike, reference: Sequence[Crystal] | str, *,
             task: str = "generation", train: Sequence[Crystal] | str | None = "auto", n_subsample: int = 1000,
             seed: int = 0, uniqueness: bool = True, progress: bool = False, **options: Any) -> dict[str, Any]:
    """Validity, coverage (COV-R/P), property Wasserstein distances, uniqueness and novelty (``task="generation"``)
    or match rate and RMSE (``task="csp"``), as in CDVAE / DiffCSP.

    Args:
      samples: crystals or a file/directory of them.
      reference: ``"NAME:SPLIT"`` (e.g. ``"perov_5:test"``) or crystals / a file.
      task: ``generation`` or ``csp``.
      train: training set for novelty: crystals, ``"NAME:SPLIT"``, ``"auto"`` (the reference dataset's train
        split) or ``None`` (no novelty).
      n_subsample: valid samples drawn for the distribution metrics (CDVAE: 1000).
      seed: seed of that draw.
      uniqueness: compute uniqueness (StructureMatcher over valid samples; slow for many samples).
      progress: show progress bars.
      options: passed to :func:`atomsmith.metrics.evaluate.evaluate` (``dataset``, ``cutoffs``, ``n_workers``,
        ``pairing``, ``comp_scaler``, ``cache``).

    Returns:
      A JSON-ready dict of metrics (see :func:`atomsmith.metrics.evaluate.evaluate`).
    """
    from atomsmith.metrics.evaluate import evaluate as run, json_safe

    train = training_set(train, reference) if task == "generation" else None
    return json_safe(run(samples, reference, task=task, train=train, n_subsample=n_subsample, seed=seed,
                         uniqueness=uniqueness, progress=progress, **options))


def training_set(train: Sequence[Crystal] | str | None, reference: Sequence[Crystal] | str,
                 warn: Callable[[str], None] | None = None) -> Sequence[Crystal] | None:
    """The training set for novelty: ``train`` itself (crystals or ``None``), ``"none"``, ``"NAME:SPLIT"`` / a path,
    or ``"auto"``: the train split of a ``"NAME:SPLIT"`` reference (``None`` for other references).

    When ``"auto"`` cannot load that split, ``warn`` (if given) is told why and novelty is skipped (``None``);
    without ``warn`` the error is raised.
    """
    from atomsmith.metrics.evaluate import load_reference, parse_dataset_spec

    if not isinstance(train, str):
        return train
    if train.lower() == "none":
        return None
    if train.lower() != "auto":
        return load_reference(train)
    parsed = parse_dataset_spec(reference) if isinstance(reference, str) else None
    if parsed is None:
        return None
    try:
        return load_reference(f"{parsed[0]}:train")
    except Exception as exc:  # noqa: BLE001 - no training split: novelty is skipped, say why
        if warn is None:
            raise
        warn(f"novelty skipped: could not load {parsed[0]}:train ({exc})")
        return None
