"""CrystalNN / Magpie fingerprints: shapes, invariances, CDVAE's scaler, failures and the reference cache."""

import numpy as np
import pytest

from atomsmith.metrics import fingerprints as fp
from atomsmith.metrics.samples import BrokenSample
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a=4.0, species=("Ba", "Ti", "O", "O", "O"), shift=0.0):
    frac = np.array(PEROVSKITE_FRAC, float)
    frac[1, 2] += shift  # off-centre the B cation
    return Crystal.from_symbols(np.eye(3) * a, frac, list(species))


def rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_shapes_and_cdvae_definition():
    c = perovskite(shift=0.05)
    s = fp.structure_fingerprint(c)
    assert s.shape == (fp.STRUCTURE_FP_DIM,) and np.all(np.isfinite(s))
    # Independent reference: matminer's SiteStatsFingerprint with the mean statistic.
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
    from matminer.featurizers.structure.sites import SiteStatsFingerprint

    ssf = SiteStatsFingerprint(CrystalNNFingerprint.from_preset("ops"), stats=("mean",))
    np.testing.assert_allclose(s, ssf.featurize(c.to_pymatgen()), atol=1e-12)
    comp = fp.composition_fingerprint(c.numbers)
    assert comp.shape == (fp.COMPOSITION_FP_DIM,)


def test_structure_fingerprint_invariances():
    c = perovskite(a=4.1, shift=0.04)
    ref = fp.structure_fingerprint(c)
    for other in (c.rotated(rotation(3)), c.permuted([4, 2, 0, 3, 1]),
                  c.replace(frac_coords=c.frac_coords + [0.13, -0.4, 0.77]), c.supercell((2, 1, 1))):
        np.testing.assert_allclose(fp.structure_fingerprint(other), ref, atol=1e-6)
    assert np.linalg.norm(fp.structure_fingerprint(perovskite(shift=0.2)) - ref) > 1e-3


def test_composition_fingerprint_depends_on_fractions_only():
    a = fp.composition_fingerprint([56, 22, 8, 8, 8])
    b = fp.composition_fingerprint([8, 56, 8, 22, 8] * 2)
    np.testing.assert_allclose(a, b, equal_nan=True)
    assert not np.allclose(a, fp.composition_fingerprint([38, 22, 8, 8, 8]))


def test_cdvae_scaler():
    scaler = fp.CompScaler.cdvae()
    assert scaler.means.shape == scaler.stds.shape == (132,)
    x = np.vstack([scaler.means, scaler.means + scaler.stds])
    x[0, 5] = np.nan
    out = scaler.transform(x)
    assert out[0, 5] == 0.0 and np.allclose(np.delete(out[0], 5), 0) and np.allclose(out[1], 1)
    fitted = fp.CompScaler.fit(np.array([[1.0, 2.0, np.nan], [3.0, 2.0, np.nan]]))
    np.testing.assert_allclose(fitted.means, [2.0, 2.0, 0.0])
    np.testing.assert_allclose(fitted.stds, [1.0, 1.0, 1.0])  # zero and NaN std -> 1, as CDVAE


def test_failures_give_no_fingerprints():
    tiny = Crystal.from_symbols(np.eye(3) * 0.4, [[0, 0, 0]], ["C"])
    broken = BrokenSample(np.array([56, 22, 8, 8, 8]), "singular cell")
    with pytest.raises(fp.FingerprintError):
        fp.structure_fingerprint(tiny)
    out = fp.compute_fingerprints([perovskite(), broken, tiny], n_workers=1)
    np.testing.assert_array_equal(out.ok, [True, False, False])
    assert np.all(np.isnan(out.structure[1:])) and np.all(np.isfinite(out.structure[0]))


def test_reference_cache_roundtrip(tmp_path, monkeypatch):
    crystals = [perovskite(), perovskite(a=4.2, species=("Sr", "Ti", "O", "O", "O"))]
    first = fp.cached_fingerprints(crystals, n_workers=1, directory=tmp_path)
    assert len(list(tmp_path.glob("fingerprints-*.npz"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(fp, "compute_fingerprints", boom)
    second = fp.cached_fingerprints(crystals, n_workers=1, directory=tmp_path)
    np.testing.assert_array_equal(first.structure, second.structure)
    np.testing.assert_array_equal(first.ok, second.ok)
    # Different content, different key.
    assert fp.content_hash(crystals) != fp.content_hash(crystals[:1])
    monkeypatch.setenv("ATOMSMITH_CACHE_DIR", str(tmp_path / "c"))
    assert fp.cache_dir() == tmp_path / "c"


def test_process_pool_matches_serial():
    crystals = [perovskite(shift=s) for s in (0.0, 0.03, 0.06)] + [BrokenSample(np.array([6]), "x")]
    serial = fp.compute_fingerprints(crystals, n_workers=1)
    pooled = fp.parallel_map(fp._fingerprint_chunk, [fp._payload(c) for c in crystals], n_workers=2, chunk_size=2)
    for (s, c), k in zip(pooled, range(len(crystals))):
        if serial.ok[k]:
            np.testing.assert_allclose(s, serial.structure[k])
            np.testing.assert_allclose(c, serial.composition[k], equal_nan=True)
        else:
            assert s is None and c is None
