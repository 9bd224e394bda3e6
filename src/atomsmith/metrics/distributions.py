"""Wasserstein distances between property distributions of samples and a reference set (CDVAE's d_rho, d_#el,
d_prop), and CDVAE's subsampling of valid samples.

CDVAE (``GenEval``) draws ``n_samples = 1000`` of the *valid* generated crystals at random without replacement
and compares their distribution with that of the *whole* reference (test) split with
``scipy.stats.wasserstein_distance`` (the 1D earth mover's distance):

* density in g/cm^3 (pymatgen ``Structure.density``, i.e. pymatgen's atomic masses),
* number of distinct elements per structure,
* a property predicted by a model for both sets (CDVAE: its own property GNN; here any callable).

Deviations: CDVAE's draw is unseeded (``np.random.choice``); ours uses ``numpy.random.default_rng(seed)``, so
numbers are reproducible but a given seed does not pick the same crystals as any CDVAE run. When fewer than
``n_samples`` samples are valid CDVAE raises; we use all valid samples and say so in the result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from atomsmith.structures.crystal import Crystal

#: CDVAE's number of valid samples drawn for the distribution metrics.
CDVAE_N_SUBSAMPLE = 1000

#: A property predictor: crystals -> ``[n]`` predicted values (e.g. formation energy in eV/atom).
PropertyFn = Callable[[Sequence[Crystal]], np.ndarray]


@functools.lru_cache(maxsize=None)
def _mass(z: int) -> float:
    from pymatgen.core import Element

    return float(Element.from_Z(z).atomic_mass)


@functools.lru_cache(maxsize=1)
def _amu_per_a3_in_g_per_cm3() -> float:
    """1 amu / Å^3 in g/cm^3 (~1.6605), with pymatgen's value of the atomic mass unit."""
    from pymatgen.core.units import Length, Mass

    return float(Mass(1.0, "amu").to("g") / Length(1.0, "ang").to("cm") ** 3)


def density(crystal: Crystal) -> float:
    """Mass density in g/cm^3 with pymatgen's atomic masses and units (CDVAE's ``structure.density``)."""
    mass = sum(_mass(int(z)) for z in crystal.numbers)
    return mass * _amu_per_a3_in_g_per_cm3() / crystal.volume


def n_elements(crystal: Crystal) -> int:
    """Number of distinct elements."""
    return int(np.unique(crystal.numbers).size)


def wasserstein(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """1D Wasserstein-1 distance between the empirical distributions of ``a`` and ``b``."""
    from scipy.stats import wasserstein_distance

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need non-empty sets for a Wasserstein distance, got sizes {a.size} and {b.size}")
    return float(wasserstein_distance(a, b))


def subsample_indices(valid: np.ndarray, n_samples: int = CDVAE_N_SUBSAMPLE, seed: int = 0) -> np.ndarray:
    """Indices of ``min(n_samples, n_valid)`` valid samples drawn without replacement (CDVAE's ``valid_samples``).

    Args:
      valid: ``[n]`` bool, which samples are valid.
    Returns:
      ``[k]`` int indices into the sample list, in draw order.
    """
    valid_idx = np.flatnonzero(np.asarray(valid, bool))
    k = min(int(n_samples), valid_idx.size)
    if k == valid_idx.size:
        return valid_idx
    rng = np.random.default_rng(seed)
    return valid_idx[rng.choice(valid_idx.size, k, replace=False)]


def density_wdist(samples: Sequence[Crystal], reference: Sequence[Crystal]) -> float:
    """CDVAE ``wdist_density``: Wasserstein distance of densities (g/cm^3)."""
    return wasserstein([density(c) for c in samples], [density(c) for c in reference])


def num_elements_wdist(samples: Sequence[Crystal], reference: Sequence[Crystal]) -> float:
    """CDVAE ``wdist_num_elems``: Wasserstein distance of the number of distinct elements."""
    return wasserstein([n_elements(c) for c in samples], [n_elements(c) for c in reference])


def property_wdist(samples: Sequence[Crystal], reference: Sequence[Crystal], predict: PropertyFn) -> float:
    """CDVAE ``wdist_prop``: Wasserstein distance of the property ``predict`` assigns to each set."""
    pred = np.asarray(predict(list(samples)), np.float64).reshape(-1)
    ref = np.asarray(predict(list(reference)), np.float64).reshape(-1)
    if pred.size != len(samples) or ref.size != len(reference):
        raise ValueError(f"property predictor returned {pred.size} / {ref.size} values for "
                         f"{len(samples)} / {len(reference)} structures; it must return one value per structure")
    return wasserstein(pred, ref)
