"""CDVAE's structure and composition fingerprints, computed in parallel and cached for reference sets.

* **Structure fingerprint** (61 numbers): matminer ``CrystalNNFingerprint.from_preset("ops")`` of every site,
  averaged over the sites (what CDVAE computes by hand; the same as matminer's ``SiteStatsFingerprint`` with
  ``stats=("mean",)``).
* **Composition fingerprint** (132 numbers): matminer ``ElementProperty.from_preset("magpie")`` of the
  composition.
* **Normalisation** (:class:`CompScaler`): CDVAE standardises composition fingerprints with *fixed* means and
  standard deviations shipped in its code (``CompScalerMeans`` / ``CompScalerStds``, the same for every
  dataset) and replaces NaN features by 0 afterwards; :meth:`CompScaler.cdvae` is that scaler and is the
  default. :meth:`CompScaler.fit` fits one on a reference set instead (not comparable with published numbers).
  Structure fingerprints are not normalised (as in CDVAE).

As in CDVAE, a structure whose site fingerprints raise gets no fingerprints at all (``ok`` False), which also
makes the sample invalid. Deviations:

* Samples whose geometry could not be built (:class:`~atomsmith.metrics.samples.BrokenSample`) and cells with
  volume < 0.1 Å^3 are not featurised (CDVAE tried CrystalNN on the latter; its neighbour search grows as
  1/volume and becomes prohibitively slow on near-singular cells). They get no fingerprints, like a CDVAE
  sample whose featurisation failed. A composition fingerprint that fails (CDVAE would crash) also counts as a
  failure.
* matminer's element tables and pymatgen's CrystalNN are whatever versions are installed (CDVAE used
  2021 releases); small numerical differences in the fingerprints are possible.

Fingerprints are computed in a process pool (see :mod:`atomsmith.metrics._parallel`). Reference-set
fingerprints are cached in ``$ATOMSMITH_CACHE_DIR`` (default ``~/.cache/atomsmith``) under ``metrics/``,
keyed by a SHA-256 of the structures' arrays and the library versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from atomsmith.core.files import atomic_write
from atomsmith.metrics._parallel import parallel_map
from atomsmith.structures.crystal import Crystal

#: Length of the CrystalNN "ops" site fingerprint.
STRUCTURE_FP_DIM = 61
#: Length of the Magpie composition fingerprint.
COMPOSITION_FP_DIM = 132
#: Cells smaller than this (Å^3) are not featurised (CDVAE's "unrealistically small lattice").
MIN_FEATURIZE_VOLUME = 0.1
#: Bump when the fingerprint definition changes, to invalidate caches.
FINGERPRINT_VERSION = "cdvae-crystalnn-ops-mean+magpie/1"

_FEATURIZERS: dict[str, Any] = {}


class FingerprintError(RuntimeError):
    """A fingerprint could not be computed for a structure."""


def _featurizer(kind: str) -> Any:
    if kind not in _FEATURIZERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "structure":
                from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

                _FEATURIZERS[kind] = CrystalNNFingerprint.from_preset("ops")
            else:
                from matminer.featurizers.composition.composite import ElementProperty

                _FEATURIZERS[kind] = ElementProperty.from_preset("magpie")
    return _FEATURIZERS[kind]


def structure_fingerprint(crystal: Crystal) -> np.ndarray:
    """Mean CrystalNN "ops" site fingerprint, ``[61]``; raises :class:`FingerprintError` if CrystalNN fails."""
    if crystal.volume < MIN_FEATURIZE_VOLUME:
        raise FingerprintError(f"cell volume {crystal.volume:.3g} Å^3 < {MIN_FEATURIZE_VOLUME}; not featurised")
    featurizer = _featurizer("structure")
    structure = crystal.to_pymatgen()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [featurizer.featurize(structure, i) for i in range(len(structure))]
    except Exception as exc:  # noqa: BLE001 - CDVAE counts any failure as "no fingerprint"
        raise FingerprintError(f"CrystalNN fingerprint failed: {type(exc).__name__}: {exc}") from exc
    return np.asarray(sites, np.float64).mean(axis=0)


def composition_fingerprint(numbers: Sequence[int] | np.ndarray) -> np.ndarray:
    """Magpie ``ElementProperty`` fingerprint ``[132]`` of the composition of atomic numbers ``numbers``.

    Features can be NaN for elements missing from the Magpie tables (they become 0 after :class:`CompScaler`).
    """
    from pymatgen.core import Composition

    numbers = np.asarray(numbers, np.int64)
    if numbers.size == 0:
        raise FingerprintError("empty composition")
    values, counts = np.unique(numbers, return_counts=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition({int(z): int(c) for z, c in zip(values, counts)})
            return np.asarray(_featurizer("composition").featurize(comp), np.float64)
    except Exception as exc:  # noqa: BLE001
        raise FingerprintError(f"Magpie fingerprint failed: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- normalisation
@dataclasses.dataclass(frozen=True)
class CompScaler:
    """Standardisation ``(x - means) / stds`` of composition fingerprints, NaN -> ``replace_nan`` afterwards."""

    means: np.ndarray
    stds: np.ndarray
    replace_nan: float = 0.0

    @classmethod
    def cdvae(cls) -> CompScaler:
        """CDVAE's fixed scaler (``cdvae/common/constants.py``), used for every dataset in published tables."""
        from atomsmith.metrics import _cdvae_compscaler as constants

        return cls(np.asarray(constants.MEANS, np.float64), np.asarray(constants.STDS, np.float64))

    @classmethod
    def fit(cls, fingerprints: np.ndarray) -> CompScaler:
        """Fit on ``[n, 132]`` fingerprints like CDVAE's ``StandardScaler.fit`` (nanmean/nanstd, 0 std -> 1)."""
        x = np.asarray(fingerprints, np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(x, axis=0)
            stds = np.nanstd(x, axis=0)
        means = np.where(np.isnan(means), 0.0, means)
        stds = np.where(np.isnan(stds) | (stds == 0), 1.0, stds)
        return cls(means, stds)

    def transform(self, fingerprints: np.ndarray) -> np.ndarray:
        x = np.asarray(fingerprints, np.float64)
        out = (x - self.means) / self.stds
        return np.where(np.isnan(out), self.replace_nan, out)


# ---------------------------------------------------------------------------------------------- batches
@dataclasses.dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a set of samples.

    Attributes:
      structure: ``[n, 61]`` mean CrystalNN fingerprints (NaN rows where ``ok`` is False).
      composition: ``[n, 132]`` raw (unnormalised) Magpie fingerprints (NaN rows where ``ok`` is False).
      ok: ``[n]`` bool, both fingerprints exist (CDVAE: ``struct_fp`` and ``comp_fp`` are not None).
    """

    structure: np.ndarray
    composition: np.ndarray
    ok: np.ndarray

    def __len__(self) -> int:
        return int(self.ok.shape[0])

    def select(self, index: Any) -> Fingerprints:
        return Fingerprints(self.structure[index], self.composition[index], self.ok[index])


def _payload(sample: Any) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    if isinstance(sample, Crystal):
        return np.asarray(sample.lattice), np.asarray(sample.frac_coords), np.asarray(sample.numbers)
    return None, None, np.asarray(sample.numbers)


def _fingerprint_one(payload: tuple[np.ndarray | None, np.ndarray | None, np.ndarray]) -> tuple[Any, Any]:
    lattice, frac, numbers = payload
    if lattice is None:
        return None, None
    try:
        crystal = Crystal(lattice, frac, numbers)
        return structure_fingerprint(crystal), composition_fingerprint(numbers)
    except (FingerprintError, ValueError):
        return None, None


def _fingerprint_chunk(payloads: list) -> list[tuple[Any, Any]]:
    return [_fingerprint_one(p) for p in payloads]


def compute_fingerprints(samples: Sequence[Any], n_workers: int | None = None,
                         progress: str | None = None) -> Fingerprints:
    """Fingerprints of ``samples`` (Crystals or BrokenSamples), in a process pool of ``n_workers``."""
    results = parallel_map(_fingerprint_chunk, [_payload(s) for s in samples], n_workers, progress=progress)
    n = len(results)
    struct = np.full((n, STRUCTURE_FP_DIM), np.nan)
    comp = np.full((n, COMPOSITION_FP_DIM), np.nan)
    ok = np.zeros(n, bool)
    for k, (s, c) in enumerate(results):
        if s is not None and c is not None:
            struct[k], comp[k], ok[k] = s, c, True
    return Fingerprints(struct, comp, ok)


# ---------------------------------------------------------------------------------------------- caching
def cache_dir() -> Path:
    """``$ATOMSMITH_CACHE_DIR`` or ``~/.cache/atomsmith``."""
    return Path(os.environ.get("ATOMSMITH_CACHE_DIR") or Path.home() / ".cache" / "atomsmith")


def content_hash(crystals: Sequence[Crystal]) -> str:
    """SHA-256 over every crystal's lattice, fractional coordinates and atomic numbers, plus library versions."""
    import matminer
    import pymatgen.core

    digest = hashlib.sha256()
    digest.update(f"{FINGERPRINT_VERSION}|matminer {matminer.__version__}|pymatgen "
                  f"{getattr(pymatgen.core, '__version__', '?')}|n={len(crystals)}".encode())
    for c in crystals:
        for array in (c.lattice, c.frac_coords, c.numbers):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cached_fingerprints(crystals: Sequence[Crystal], n_workers: int | None = None,
                        directory: str | os.PathLike | None = None, progress: str | None = None) -> Fingerprints:
    """:func:`compute_fingerprints` of a reference set, loaded from / saved to the cache (``.npz``)."""
    directory = Path(directory) if directory is not None else cache_dir() / "metrics"
    path = directory / f"fingerprints-{content_hash(crystals)[:32]}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                fps = Fingerprints(data["structure"], data["composition"], data["ok"])
            if len(fps) == len(crystals):
                return fps
        except (OSError, KeyError, ValueError):
            pass  # corrupt cache entry: recompute and overwrite
    fps = compute_fingerprints(crystals, n_workers, progress=progress)
    with atomic_write(path, mode="wb", overwrite=True) as handle:  # a corrupt entry is replaced
        np.savez(handle, structure=fps.structure, composition=fps.composition, ok=fps.ok)
    return fps
