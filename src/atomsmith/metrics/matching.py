"""Structure matching: CSP match rate / RMSE, uniqueness and novelty (pymatgen ``StructureMatcher``).

**CSP match rate and RMSE** follow DiffCSP's ``scripts/compute_metrics.py`` (which extends CDVAE's ``RecEval``):
``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)``, and a prediction matches its ground truth when
``get_rms_dist`` returns a value (an exception counts as no match). The RMSE is pymatgen's RMS displacement
normalised by ``(V / n_sites)^(1/3)``, averaged over the matched structures only.

* One sample per test structure (CDVAE ``RecEval``): only pairs where *both* the prediction and the ground truth
  are valid (:mod:`atomsmith.metrics.validity` plus fingerprints, CDVAE's ``Crystal.valid``) are matched; match
  rate = matched pairs / all pairs.
* k samples per test structure (DiffCSP ``RecEvalBatch``): every *valid* prediction is matched against its
  ground truth (whose validity is not checked, as in DiffCSP); a test structure counts as matched if any of its
  k predictions matches, with the smallest RMSE; match rate = matched test structures / all test structures.

**Uniqueness and novelty** are not CDVAE metrics; we follow the common practice of later papers (FlowMM,
MatterGen): pymatgen's default ``StructureMatcher()`` (ltol 0.2, stol 0.3, angle_tol 5), on the valid samples.
Uniqueness = number of distinct structures among them / their number (greedy grouping, like pymatgen's
``group_structures``); novelty = fraction of them that match no training structure. Structures are reduced
(primitive, Niggli) once and only compared within groups of equal reduced formula and equal number of sites in
the reduced cell, the only pairs the matcher can match (``attempt_supercell`` is off), so the results equal
brute-force matching.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from atomsmith.metrics._parallel import parallel_map
from atomsmith.structures.crystal import Crystal

#: CDVAE / DiffCSP CSP matcher tolerances.
CSP_MATCHER = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}
#: pymatgen's default tolerances, used for uniqueness and novelty.
DEFAULT_MATCHER = {"stol": 0.3, "ltol": 0.2, "angle_tol": 5.0}

Payload = tuple[np.ndarray, np.ndarray, np.ndarray]


def _payload(crystal: Crystal) -> Payload:
    return np.asarray(crystal.lattice), np.asarray(crystal.frac_coords), np.asarray(crystal.numbers)


def _structure(payload: Payload):
    from pymatgen.core import Lattice, Structure

    lattice, frac, numbers = payload
    return Structure(Lattice(lattice), [int(z) for z in numbers], frac)


def _matcher(tolerances: dict[str, float]):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**tolerances)


# ---------------------------------------------------------------------------------------------- CSP
def _rms_chunk(items: list[tuple[Payload, Payload, dict]]) -> list[float | None]:
    out = []
    matcher = None
    for pred, gt, tolerances in items:
        matcher = matcher or _matcher(tolerances)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = matcher.get_rms_dist(_structure(pred), _structure(gt))
            out.append(None if result is None else float(result[0]))
        except Exception:  # noqa: BLE001 - CDVAE: any matcher failure is "no match"
            out.append(None)
    return out


def rms_dist(pred: Crystal, gt: Crystal, tolerances: dict[str, float] | None = None) -> float | None:
    """Normalised RMS displacement between two structures, or None if they do not match (CSP tolerances)."""
    return _rms_chunk([(_payload(pred), _payload(gt), tolerances or CSP_MATCHER)])[0]


TIGHT_RMS = 0.1
"""RMS (normalised by (V/N)^(1/3), as StructureMatcher reports it) below which a CSP match counts as tight."""


def csp_match(preds: Sequence[Any], gts: Sequence[Any], gt_index: Sequence[int] | np.ndarray,
              pred_valid: Sequence[bool] | np.ndarray, gt_valid: Sequence[bool] | np.ndarray | None = None,
              n_workers: int | None = None, tolerances: dict[str, float] | None = None,
              progress: str | None = None) -> dict[str, Any]:
    """Match rate and mean RMSE of structure-prediction samples against their ground truths.

    Args:
      preds: ``[m]`` predicted samples (Crystal, or anything for invalid ones, which are never matched).
      gts: ``[n]`` ground-truth Crystals.
      gt_index: ``[m]`` int, the ground truth each prediction belongs to.
      pred_valid: ``[m]`` bool, CDVAE validity of each prediction.
      gt_valid: ``[n]`` bool; when every ground truth has exactly one prediction it must also be valid (CDVAE
        ``RecEval``); ignored with several predictions per ground truth (DiffCSP ``RecEvalBatch``).
    Returns:
      ``match_rate`` (fraction of ground truths matched), ``rms_dist`` (mean over matched ones; NaN if none),
      ``tight_match_rate`` (fraction of ground truths matched with RMS < ``TIGHT_RMS`` = 0.1, i.e. the right
      arrangement rather than a loose StructureMatcher hit), ``rms_median`` (median over matched ones),
      ``n_matched``, ``n_targets``, ``samples_per_target`` (max predictions per ground truth) and
      ``rms_per_target`` (``[n]`` list, None where unmatched).
    """
    gt_index = np.asarray(gt_index, np.int64)
    pred_valid = np.asarray(pred_valid, bool)
    n = len(gts)
    if gt_index.shape != (len(preds),) or pred_valid.shape != (len(preds),):
        raise ValueError(f"gt_index and pred_valid need one entry per prediction ({len(preds)})")
    if np.any((gt_index < 0) | (gt_index >= n)):
        raise ValueError(f"gt_index must be in [0, {n}); got range [{gt_index.min()}, {gt_index.max()}]")
    counts = np.bincount(gt_index, minlength=n)
    single = bool(np.all(counts == 1))
    usable = pred_valid.copy()
    if single and gt_valid is not None:
        usable &= np.asarray(gt_valid, bool)[gt_index]
    todo = np.flatnonzero(usable)
    tolerances = tolerances or CSP_MATCHER
    rms = parallel_map(_rms_chunk, [(_payload(preds[i]), _payload(gts[gt_index[i]]), tolerances) for i in todo],
                       n_workers, chunk_size=16, progress=progress)
    best: list[float | None] = [None] * n
    for i, r in zip(todo, rms):
        g = int(gt_index[i])
        if r is not None and (best[g] is None or r < best[g]):
            best[g] = r
    matched = [r for r in best if r is not None]
    return {
        "match_rate": len(matched) / n if n else float("nan"),
        "rms_dist": float(np.mean(matched)) if matched else float("nan"),
        "tight_match_rate": sum(r < TIGHT_RMS for r in matched) / n if n else float("nan"),
        "rms_median": float(np.median(matched)) if matched else float("nan"),
        "n_matched": len(matched),
        "n_targets": n,
        "samples_per_target": int(counts.max()) if n else 0,
        "rms_per_target": best,
    }


# ---------------------------------------------------------------------------------------------- reduction
def _reduce_chunk(items: list[Payload]) -> list[tuple[str, Payload]]:
    """(reduced formula, reduced primitive Niggli cell) of each structure."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    out = []
    for payload in items:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = _structure(payload)
            r = StructureMatcher._get_reduced_structure(s, primitive_cell=True, niggli=True)
        out.append((r.composition.reduced_formula,
                    (np.array(r.lattice.matrix), np.array(r.frac_coords), np.array(r.atomic_numbers))))
    return out


def _reduced(crystals: Sequence[Crystal], n_workers: int | None, progress: str | None) -> list[tuple[tuple, Payload]]:
    """Bucket key ``(reduced formula, n_sites)`` and reduced payload for each crystal."""
    reduced = parallel_map(_reduce_chunk, [_payload(c) for c in crystals], n_workers, chunk_size=64,
                           progress=progress)
    return [((formula, int(p[2].shape[0])), p) for formula, p in reduced]


def _fit(matcher, a, b) -> bool:
    try:
        return bool(matcher.fit(a, b, skip_structure_reduction=True))
    except Exception:  # noqa: BLE001 - a matcher crash is "not the same structure"
        return False


def _group_chunk(items: list[tuple[list[Payload], dict]]) -> list[int]:
    """Number of distinct structures in each bucket (greedy grouping in order, like ``group_structures``)."""
    out = []
    for payloads, tolerances in items:
        matcher = _matcher(tolerances)
        structures = [_structure(p) for p in payloads]
        representatives: list = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in structures:
                if not any(_fit(matcher, r, s) for r in representatives):
                    representatives.append(s)
        out.append(len(representatives))
    return out


def _novel_chunk(items: list[tuple[Payload, list[Payload], dict]]) -> list[bool]:
    out = []
    for sample, references, tolerances in items:
        matcher = _matcher(tolerances)
        s = _structure(sample)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(not any(_fit(matcher, _structure(r), s) for r in references))
    return out


def uniqueness(crystals: Sequence[Crystal], n_workers: int | None = None, tolerances: dict[str, float] | None = None,
               progress: str | None = None) -> dict[str, float]:
    """Fraction of distinct structures among ``crystals``: ``uniqueness``, ``n_unique``, ``n``."""
    if not crystals:
        return {"uniqueness": float("nan"), "n_unique": 0, "n": 0}
    buckets: dict[tuple, list[Payload]] = defaultdict(list)
    for key, payload in _reduced(crystals, n_workers, progress):
        buckets[key].append(payload)
    tolerances = tolerances or DEFAULT_MATCHER
    counts = parallel_map(_group_chunk, [(b, tolerances) for b in buckets.values()], n_workers, chunk_size=4,
                          progress=progress)
    n_unique = int(sum(counts))
    return {"uniqueness": n_unique / len(crystals), "n_unique": n_unique, "n": len(crystals)}


class TrainingIndex:
    """Reduced training structures bucketed by (reduced formula, n_sites), for novelty queries."""

    def __init__(self, crystals: Sequence[Crystal], n_workers: int | None = None, progress: str | None = None):
        self.buckets: dict[tuple, list[Payload]] = defaultdict(list)
        for key, payload in _reduced(crystals, n_workers, progress):
            self.buckets[key].append(payload)
        self.size = len(crystals)


def novelty(crystals: Sequence[Crystal], training: TrainingIndex | Sequence[Crystal], n_workers: int | None = None,
            tolerances: dict[str, float] | None = None, progress: str | None = None) -> dict[str, Any]:
    """Fraction of ``crystals`` that match no training structure: ``novelty``, ``n_novel``, ``n``, ``novel``."""
    if not isinstance(training, TrainingIndex):
        training = TrainingIndex(training, n_workers)
    if not crystals:
        return {"novelty": float("nan"), "n_novel": 0, "n": 0, "novel": []}
    tolerances = tolerances or DEFAULT_MATCHER
    items = [(payload, training.buckets.get(key, []), tolerances)
             for key, payload in _reduced(crystals, n_workers, progress)]
    novel = parallel_map(_novel_chunk, items, n_workers, chunk_size=8, progress=progress)
    n_novel = int(sum(novel))
    return {"novelty": n_novel / len(crystals), "n_novel": n_novel, "n": len(crystals), "novel": list(novel)}
