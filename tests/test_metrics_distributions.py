"""Density / number-of-elements / property Wasserstein distances and CDVAE's subsampling."""

import numpy as np
import pytest

from atomsmith.metrics import distributions as dist
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a=4.0, species=("Ba", "Ti", "O", "O", "O")):
    return Crystal.from_symbols(np.eye(3) * a, PEROVSKITE_FRAC, list(species))


def test_density_equals_pymatgen():
    c = perovskite(4.05)
    assert dist.density(c) == pytest.approx(c.to_pymatgen().density, rel=1e-12)


def test_wasserstein_known_values():
    assert dist.wasserstein([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert dist.wasserstein([1.0, 2.0, 3.0], [1.5, 2.5, 3.5]) == pytest.approx(0.5)
    assert dist.wasserstein([0.0], [0.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        dist.wasserstein([], [1.0])


def test_density_and_element_distances():
    ref = [perovskite(a) for a in (3.9, 4.0, 4.1)]
    assert dist.density_wdist(ref, ref) == 0.0
    binary = Crystal.from_symbols(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], ["Na", "Cl"])
    assert dist.num_elements_wdist([binary], ref) == pytest.approx(1.0)  # 2 vs 3 elements


def test_property_distance_with_a_callable():
    ref = [perovskite(a) for a in (3.9, 4.0, 4.1)]
    samples = [perovskite(a + 0.1) for a in (3.9, 4.0, 4.1)]
    a_of = lambda crystals: np.array([c.lattice[0, 0] for c in crystals])  # noqa: E731
    assert dist.property_wdist(samples, ref, a_of) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one value per structure"):
        dist.property_wdist(samples, ref, lambda crystals: np.zeros(1))


def test_subsample_only_valid_and_seeded():
    valid = np.zeros(5000, bool)
    valid[::3] = True
    idx = dist.subsample_indices(valid, 1000, seed=7)
    assert idx.size == 1000 and len(set(idx.tolist())) == 1000 and np.all(valid[idx])
    np.testing.assert_array_equal(idx, dist.subsample_indices(valid, 1000, seed=7))
    assert not np.array_equal(idx, dist.subsample_indices(valid, 1000, seed=8))
    few = dist.subsample_indices(valid[:30], 1000)
    np.testing.assert_array_equal(few, np.flatnonzero(valid[:30]))
