"""One call for the CDVAE benchmark metrics of a set of samples: :func:`evaluate`.

Generation (``task="generation"``, CDVAE ``GenEval``), with ``reference`` the test split:

==================  =====================================================================================
key                 definition (which samples count)
==================  =====================================================================================
comp_valid          fraction of *all* samples passing :func:`~atomsmith.metrics.validity.smact_validity`
struct_valid        fraction of all samples passing :func:`~atomsmith.metrics.validity.structure_validity`
                    (samples whose cell could not be built count as invalid)
valid               fraction with both, and with fingerprints (CDVAE's ``Crystal.valid``)
cov_recall/...      :func:`~atomsmith.metrics.coverage.coverage` over *all* samples vs the whole reference
wdist_density       Wasserstein distance of densities: ``n_subsample`` (1000) random *valid* samples vs the
                    whole reference
wdist_num_elems     same for the number of distinct elements
wdist_prop          same for a property predicted by ``property_fn`` (None when not given)
uniqueness          over all valid samples (:func:`~atomsmith.metrics.matching.uniqueness`)
novelty             over all valid samples against ``train`` (None when not given)
==================  =====================================================================================

Structure prediction (``task="csp"``, CDVAE ``RecEval`` / DiffCSP ``RecEvalBatch``): ``reference`` holds the
ground truths and each sample is paired with one of them (``gt_index``; by default a ``gt_index`` property on
every sample, else sample ``j`` belongs to ground truth ``j mod n``, i.e. k rounds over the test set, or with
``pairing="consecutive"`` to ground truth ``j // k``), giving
``match_rate`` and ``rms_dist`` (:func:`~atomsmith.metrics.matching.csp_match`) plus the validity fractions.

Two consequences of following CDVAE's code exactly that are easy to miss: coverage uses *every* sample (the
1000-sample draw is only for the Wasserstein distances), and with one sample per structure the CSP match rate
cannot exceed the fraction of compositionally valid ground truths (99.0 % for the first 300 perov_5 test
structures matched against themselves). Real data sets the ceiling for generation: all 3787 perov_5 val
structures against the test split give comp. validity 98.73 %, COV-R 98.63 %, COV-P 98.55 %,
d_rho 0.165 g/cm^3, d_#el 0.025.

Deviations from CDVAE are listed in the docstrings of the modules that compute each metric; in short: seeded
subsampling, no exception with fewer than 1000 valid samples (all are used and ``subsample_size`` says so),
SMACT 2014 oxidation states re-implemented for SMACT >= 3, cells < 0.1 Å^3 are not fingerprinted, and
uniqueness / novelty (not CDVAE metrics) use pymatgen's default matcher.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from atomsmith.metrics import distributions, matching, validity
from atomsmith.metrics.coverage import coverage as coverage_metrics
from atomsmith.metrics.coverage import cutoffs_for
from atomsmith.metrics.fingerprints import CompScaler, cached_fingerprints, compute_fingerprints
from atomsmith.metrics.samples import BrokenSample, Sample, load_samples
from atomsmith.structures.crystal import Crystal

TASKS = ("generation", "csp")


def parse_dataset_spec(spec: str) -> tuple[str, str] | None:
    """``"perov_5:test"`` -> ``("perov_5", "test")``; None if ``spec`` is not of that form or is an existing path."""
    if os.path.exists(spec) or ":" not in spec:
        return None
    name, _, split = spec.partition(":")
    if not name or not split or "/" in name or os.sep in name:
        return None
    return name, split


def load_reference(spec: str, limit: int | None = None) -> list[Crystal]:
    """Reference structures from ``NAME:SPLIT`` (``atomsmith.datasets.load``) or from a structure file/directory."""
    parsed = parse_dataset_spec(spec)
    if parsed is None:
        samples = load_samples(spec)
        broken = [s for s in samples if not isinstance(s, Crystal)]
        if broken:
            raise ValueError(f"{spec}: {len(broken)} reference structures could not be built, e.g. "
                             f"{broken[0].source}: {broken[0].reason}")
        return samples[:limit] if limit is not None else samples
    try:
        from atomsmith.datasets import load
    except ImportError as exc:
        raise RuntimeError("atomsmith.datasets.load is not available in this installation; pass the reference "
                           "structures as a file or directory instead of NAME:SPLIT") from exc
    return list(load(parsed[0], parsed[1], limit=limit))


def _as_samples(samples: Sequence[Sample] | str | os.PathLike) -> list[Sample]:
    if isinstance(samples, (str, os.PathLike)):
        return load_samples(samples)
    out = list(samples)
    bad = [type(s).__name__ for s in out if not isinstance(s, (Crystal, BrokenSample))]
    if bad:
        raise TypeError(f"samples must be Crystal or BrokenSample objects, got {sorted(set(bad))}")
    return out


def _as_reference(reference: Sequence[Crystal] | str) -> tuple[list[Crystal], str | None]:
    if isinstance(reference, str):
        parsed = parse_dataset_spec(reference)
        return load_reference(reference), (parsed[0] if parsed else None)
    out = list(reference)
    if not all(isinstance(c, Crystal) for c in out):
        raise TypeError("reference must be a list of Crystal objects or a 'NAME:SPLIT' / path string")
    return out, None


def _validity(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    comp = np.array([validity.smact_validity(s.numbers) for s in samples], bool)
    struct = np.array([isinstance(s, Crystal) and validity.structure_validity(s) for s in samples], bool)
    return comp, struct


#: How CSP samples are paired with ground truths when no ``gt_index`` is given.
PAIRINGS = ("rounds", "consecutive")


def default_gt_index(samples: Sequence[Sample], n_gt: int, pairing: str = "rounds") -> np.ndarray:
    """Ground truth of each CSP sample: a ``gt_index`` property on every sample if present, else by position.

    With ``k * n_gt`` samples, ``pairing="rounds"`` pairs sample ``j`` with ground truth ``j mod n_gt`` (k passes
    over the test set, DiffCSP's layout) and ``"consecutive"`` with ``j // k`` (k samples per structure in a row).
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    props = [s.properties.get("gt_index") if isinstance(s, Crystal) else None for s in samples]
    if props and all(p is not None for p in props):
        return np.asarray(props, np.int64)
    if n_gt == 0 or len(samples) % n_gt:
        raise ValueError(f"{len(samples)} samples cannot be paired with {n_gt} ground truths: give gt_index, a "
                         "'gt_index' property on every sample, or k * n_ground_truth samples")
    j = np.arange(len(samples))
    return j % n_gt if pairing == "rounds" else j // (len(samples) // n_gt)


def evaluate(samples: Sequence[Sample] | str | os.PathLike, reference: Sequence[Crystal] | str, *,
             task: str = "generation", dataset: str | None = None,
             cutoffs: tuple[float, float] | None = None, train: Sequence[Crystal] | str | None = None,
             property_fn: distributions.PropertyFn | None = None, gt_index: Sequence[int] | None = None,
             pairing: str = "rounds",
             n_subsample: int = distributions.CDVAE_N_SUBSAMPLE, seed: int = 0, n_workers: int | None = None,
             comp_scaler: str | CompScaler = "cdvae", uniqueness: bool = True,
             cache: bool = True, cache_dir: str | os.PathLike | None = None,
             progress: bool = False) -> dict[str, Any]:
    """CDVAE benchmark metrics of ``samples`` against ``reference`` (see the module docstring for definitions).

    Args:
      samples: Crystals / BrokenSamples, or a path for :func:`~atomsmith.metrics.samples.load_samples`.
      reference: reference (test) Crystals or a ``"NAME:SPLIT"`` dataset spec or a path.
      task: ``"generation"`` or ``"csp"``.
      dataset: dataset name for the coverage cutoffs (taken from a ``NAME:SPLIT`` reference by default).
      cutoffs: ``(struct_cutoff, comp_cutoff)`` overriding the dataset's.
      train: training structures (or ``"NAME:SPLIT"``) for novelty; None skips novelty.
      property_fn: predictor ``crystals -> [n]`` for ``wdist_prop``; None skips it.
      gt_index: CSP only, ``[n_samples]`` ground truth of each sample (default: :func:`default_gt_index`).
      pairing: CSP only, ``"rounds"`` or ``"consecutive"`` (see :func:`default_gt_index`).
      n_subsample: valid samples drawn for the distribution metrics (CDVAE: 1000).
      seed: seed of that draw.
      n_workers: processes for fingerprints and matching (default: all CPUs).
      comp_scaler: ``"cdvae"`` (fixed constants, comparable with papers), ``"reference"`` (fit on the reference)
        or a :class:`CompScaler`.
      uniqueness: compute uniqueness (generation only).
      cache: cache the reference fingerprints (``$ATOMSMITH_CACHE_DIR/metrics``).
      progress: show progress bars.
    Returns:
      A flat JSON-serialisable dict of metrics (fractions in [0, 1], distances in their units) plus bookkeeping
      (``n_samples``, ``n_broken``, ``subsample_size``, ``cutoffs``, ``timing_s`` ...).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    samples = _as_samples(samples)
    ref, ref_name = _as_reference(reference)
    if not samples:
        raise ValueError("no samples to evaluate")
    if not ref:
        raise ValueError("empty reference set")
    timing["load"] = time.perf_counter() - t0

    bar = (lambda text: text) if progress else (lambda text: None)
    t = time.perf_counter()
    ref_fps = (cached_fingerprints(ref, n_workers, cache_dir and os.path.join(cache_dir, "metrics"), bar("reference"))
               if cache else compute_fingerprints(ref, n_workers, bar("reference")))
    timing["reference_fingerprints"] = time.perf_counter() - t
    t = time.perf_counter()
    fps = compute_fingerprints(samples, n_workers, bar("fingerprints"))
    comp_valid, struct_valid = _validity(samples)
    valid = comp_valid & struct_valid & fps.ok
    timing["sample_fingerprints_validity"] = time.perf_counter() - t

    result: dict[str, Any] = {
        "task": task,
        "n_samples": len(samples),
        "n_broken": int(sum(isinstance(s, BrokenSample) for s in samples)),
        "n_reference": len(ref),
        "comp_valid": float(comp_valid.mean()),
        "struct_valid": float(struct_valid.mean()),
        "valid": float(valid.mean()),
        "n_valid": int(valid.sum()),
    }

    if task == "csp":
        t = time.perf_counter()
        if gt_index is not None:
            index = np.asarray(gt_index, np.int64)
        else:
            index = default_gt_index(samples, len(ref), pairing)
        ref_comp_valid, ref_struct_valid = _validity(ref)
        ref_valid = ref_comp_valid & ref_struct_valid & ref_fps.ok
        csp = matching.csp_match(samples, ref, index, valid, ref_valid, n_workers, progress=bar("matching"))
        result.update({k: v for k, v in csp.items() if k != "rms_per_target"})
        timing["matching"] = time.perf_counter() - t
        timing["total"] = time.perf_counter() - t0
        result["timing_s"] = timing
        return result

    # ------------------------------------------------------------------ generation
    name = dataset or ref_name
    if cutoffs is None:
        if name is None:
            raise ValueError("coverage cutoffs unknown: pass dataset= (e.g. 'perov_5') or cutoffs=(struct, comp)")
        cutoffs = cutoffs_for(name)
    if isinstance(comp_scaler, CompScaler):
        scaler, scaler_name = comp_scaler, "custom"
    elif comp_scaler == "cdvae":
        scaler, scaler_name = CompScaler.cdvae(), "cdvae"
    elif comp_scaler == "reference":
        scaler, scaler_name = CompScaler.fit(ref_fps.composition[ref_fps.ok]), "reference"
    else:
        raise ValueError(f"comp_scaler must be 'cdvae', 'reference' or a CompScaler, got {comp_scaler!r}")

    t = time.perf_counter()
    result.update(coverage_metrics(fps, ref_fps, cutoffs[0], cutoffs[1], scaler))
    timing["coverage"] = time.perf_counter() - t

    t = time.perf_counter()
    chosen = distributions.subsample_indices(valid, n_subsample, seed)
    subsample = [samples[i] for i in chosen]
    result["subsample_size"] = int(chosen.size)
    if chosen.size:
        result["wdist_density"] = distributions.density_wdist(subsample, ref)
        result["wdist_num_elems"] = distributions.num_elements_wdist(subsample, ref)
        result["wdist_prop"] = (distributions.property_wdist(subsample, ref, property_fn)
                                if property_fn is not None else None)
    else:
        result["wdist_density"] = result["wdist_num_elems"] = result["wdist_prop"] = None
    timing["distributions"] = time.perf_counter() - t

    valid_crystals = [samples[i] for i in np.flatnonzero(valid)]
    result["uniqueness"] = result["novelty"] = None
    if uniqueness and valid_crystals:
        t = time.perf_counter()
        result["uniqueness"] = matching.uniqueness(valid_crystals, n_workers, progress=bar("uniqueness"))["uniqueness"]
        timing["uniqueness"] = time.perf_counter() - t
    if train is not None and valid_crystals:
        t = time.perf_counter()
        train_crystals = load_reference(train) if isinstance(train, str) else list(train)
        result["novelty"] = matching.novelty(valid_crystals, train_crystals, n_workers,
                                             progress=bar("novelty"))["novelty"]
        result["n_train"] = len(train_crystals)
        timing["novelty"] = time.perf_counter() - t

    result.update({
        "dataset": name,
        "cutoffs": {"struct": cutoffs[0], "comp": cutoffs[1]},
        "comp_scaler": scaler_name,
        "n_reference_without_fingerprints": int((~ref_fps.ok).sum()),
        "seed": seed,
    })
    timing["total"] = time.perf_counter() - t0
    result["timing_s"] = timing
    return result


def json_safe(value: Any) -> Any:
    """A metrics result made JSON-safe (recursively): NaN/inf -> None, numpy scalars -> Python scalars."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
