"""COV-R / COV-P coverage between generated and reference fingerprints (CDVAE ``eval_utils.compute_cov``).

With ``d_s`` the Euclidean distance between structure fingerprints and ``d_c`` between *normalised* composition
fingerprints (see :mod:`atomsmith.metrics.fingerprints`):

* **COV-R** (recall): fraction of reference structures ``r`` with ``min_g d_s(g, r) <= delta_s`` *and*
  ``min_g d_c(g, r) <= delta_c``. As in CDVAE the two minima are taken separately, so they may come from two
  different generated samples.
* **COV-P** (precision): number of generated samples ``g`` with ``min_r d_s(g, r) <= delta_s`` and
  ``min_r d_c(g, r) <= delta_c``, divided by the number of generated samples *including* those without
  fingerprints.
* AMSD / AMCD: the mean of those minimum structure / composition distances (recall: over reference structures;
  precision: over generated samples with fingerprints).

How samples count, as in CDVAE's ``GenEval.get_coverage``: *all* generated samples enter (not the 1000-sample
subsample used for the distribution metrics, and not only the valid ones); samples whose fingerprints could not
be computed are dropped from the distance matrices but stay in COV-P's denominator. Cutoffs ``(delta_s,
delta_c)`` are CDVAE's per dataset: perov_5 and carbon (0.2, 4), mp_20 (0.4, 10).

Deviation: reference structures without fingerprints (CDVAE would crash on them) are dropped from the
reference and reported by the caller.
"""

from __future__ import annotations

import numpy as np

from atomsmith.metrics.fingerprints import CompScaler, Fingerprints

#: CDVAE's coverage cutoffs (structure, composition) per dataset family.
COV_CUTOFFS: dict[str, tuple[float, float]] = {
    "perov_5": (0.2, 4.0),
    "carbon_24": (0.2, 4.0),
    "carbon_24_unique": (0.2, 4.0),
    "mp_20": (0.4, 10.0),
}


def cutoffs_for(dataset: str) -> tuple[float, float]:
    """CDVAE's ``(struct_cutoff, comp_cutoff)`` for a dataset name (``perov_5``, ``carbon_24[...]``, ``mp_20``)."""
    key = dataset.lower().replace("-", "_")
    if key in COV_CUTOFFS:
        return COV_CUTOFFS[key]
    for prefix, name in (("perov", "perov_5"), ("carbon", "carbon_24"), ("mp_20", "mp_20"), ("mp20", "mp_20")):
        if key.startswith(prefix):
            return COV_CUTOFFS[name]
    raise KeyError(f"no CDVAE coverage cutoffs for dataset {dataset!r}; known: {sorted(COV_CUTOFFS)}. Pass the "
                   "cutoffs explicitly (struct_cutoff, comp_cutoff)")


def _cdist(a: np.ndarray, b: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Row minima ``[len(a)]`` and column minima ``[len(b)]`` of the Euclidean distance matrix, in blocks."""
    from scipy.spatial.distance import cdist

    row_min = np.full(len(a), np.inf)
    col_min = np.full(len(b), np.inf)
    for start in range(0, len(a), block):
        d = cdist(a[start:start + block], b)
        row_min[start:start + block] = d.min(axis=1)
        col_min = np.minimum(col_min, d.min(axis=0))
    return row_min, col_min


def coverage(samples: Fingerprints, reference: Fingerprints, struct_cutoff: float, comp_cutoff: float,
             scaler: CompScaler | None = None) -> dict[str, float]:
    """CDVAE's coverage metrics.

    Args:
      samples: fingerprints of *all* generated samples (rows with ``ok`` False are dropped but counted in COV-P).
      reference: fingerprints of the reference set (rows with ``ok`` False are dropped).
      struct_cutoff, comp_cutoff: ``delta_s`` and ``delta_c``.
      scaler: composition normalisation; default CDVAE's fixed :meth:`CompScaler.cdvae`.
    Returns:
      ``cov_recall``, ``cov_precision`` (fractions in [0, 1]), ``amsd_recall``, ``amsd_precision``,
      ``amcd_recall``, ``amcd_precision``.
    """
    scaler = scaler or CompScaler.cdvae()
    n_generated = len(samples)
    if n_generated == 0:
        raise ValueError("no generated samples")
    gen = samples.select(samples.ok)
    ref = reference.select(reference.ok)
    if len(ref) == 0:
        raise ValueError("no reference structure has fingerprints")
    if len(gen) == 0:
        nan = float("nan")
        return {"cov_recall": 0.0, "cov_precision": 0.0, "amsd_recall": nan, "amsd_precision": nan,
                "amcd_recall": nan, "amcd_precision": nan}
    s_prec, s_rec = _cdist(gen.structure, ref.structure)
    c_prec, c_rec = _cdist(scaler.transform(gen.composition), scaler.transform(ref.composition))
    cov_recall = float(np.mean((s_rec <= struct_cutoff) & (c_rec <= comp_cutoff)))
    cov_precision = float(np.sum((s_prec <= struct_cutoff) & (c_prec <= comp_cutoff)) / n_generated)
    return {
        "cov_recall": cov_recall,
        "cov_precision": cov_precision,
        "amsd_recall": float(np.mean(s_rec)),
        "amsd_precision": float(np.mean(s_prec)),
        "amcd_recall": float(np.mean(c_rec)),
        "amcd_precision": float(np.mean(c_prec)),
    }
