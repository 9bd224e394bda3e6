"""Evaluation metrics: CDVAE's benchmark suite for generated crystals (validity, coverage, property
distributions, uniqueness / novelty, structure-prediction matching).

Importing this package is cheap: matminer, SMACT and pymatgen's matcher are imported only when a metric runs.
"""

from atomsmith.metrics.coverage import COV_CUTOFFS, coverage, cutoffs_for
from atomsmith.metrics.distributions import density_wdist, num_elements_wdist, property_wdist, wasserstein
from atomsmith.metrics.evaluate import evaluate, load_reference
from atomsmith.metrics.fingerprints import (
    CompScaler,
    Fingerprints,
    composition_fingerprint,
    compute_fingerprints,
    structure_fingerprint,
)
from atomsmith.metrics.matching import csp_match, novelty, rms_dist, uniqueness
from atomsmith.metrics.samples import BrokenSample, load_samples
from atomsmith.metrics.validity import smact_validity, structure_validity

__all__ = [
    "COV_CUTOFFS",
    "BrokenSample",
    "CompScaler",
    "Fingerprints",
    "composition_fingerprint",
    "compute_fingerprints",
    "coverage",
    "csp_match",
    "cutoffs_for",
    "density_wdist",
    "evaluate",
    "load_reference",
    "load_samples",
    "novelty",
    "num_elements_wdist",
    "property_wdist",
    "rms_dist",
    "smact_validity",
    "structure_fingerprint",
    "structure_validity",
    "uniqueness",
    "wasserstein",
]
