"""COV-R / COV-P against a brute-force reading of CDVAE's definition, and on real fingerprints."""

import numpy as np
import pytest

from atomsmith.metrics.coverage import coverage, cutoffs_for
from atomsmith.metrics.fingerprints import CompScaler, Fingerprints, compute_fingerprints
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
IDENTITY = CompScaler(np.zeros(3), np.ones(3))


def fps(struct, comp, ok=None):
    struct, comp = np.asarray(struct, float), np.asarray(comp, float)
    ok = np.ones(len(struct), bool) if ok is None else np.asarray(ok, bool)
    return Fingerprints(struct, comp, ok)


def brute_force(gen, ref, ds, dc):
    """Loop-by-loop reading of CDVAE compute_cov (separate minima, all generated in COV-P's denominator)."""
    g = [k for k in range(len(gen)) if gen.ok[k]]
    rec = 0
    for r in range(len(ref)):
        s = min(np.linalg.norm(gen.structure[k] - ref.structure[r]) for k in g)
        c = min(np.linalg.norm(gen.composition[k] - ref.composition[r]) for k in g)
        rec += s <= ds and c <= dc
    prec = 0
    for k in g:
        s = min(np.linalg.norm(gen.structure[k] - ref.structure[r]) for r in range(len(ref)))
        c = min(np.linalg.norm(gen.composition[k] - ref.composition[r]) for r in range(len(ref)))
        prec += s <= ds and c <= dc
    return rec / len(ref), prec / len(gen)


def test_matches_brute_force_on_random_fingerprints():
    rng = np.random.default_rng(0)
    for trial in range(5):
        gen = fps(rng.normal(size=(30, 4)), rng.normal(size=(30, 3)), rng.uniform(size=30) > 0.2)
        ref = fps(rng.normal(size=(20, 4)), rng.normal(size=(20, 3)))
        out = coverage(gen, ref, 1.2, 1.0, IDENTITY)
        rec, prec = brute_force(gen, ref, 1.2, 1.0)
        assert out["cov_recall"] == pytest.approx(rec) and out["cov_precision"] == pytest.approx(prec)
        assert 0 < out["cov_recall"] < 1


def test_failed_samples_count_in_precision_denominator():
    ref = fps([[0.0, 0.0]], [[0.0, 0.0, 0.0]])
    gen = fps([[0.0, 0.0], [9.0, 9.0], [0.0, 0.0]], [[0.0, 0.0, 0.0]] * 3, ok=[True, True, False])
    out = coverage(gen, ref, 0.2, 4.0, IDENTITY)
    assert out["cov_precision"] == pytest.approx(1 / 3)
    assert out["cov_recall"] == 1.0


def test_recall_minima_are_taken_separately_as_in_cdvae():
    # One sample has the right structure, another the right composition: CDVAE's recall counts the reference.
    ref = fps([[0.0]], [[0.0, 0.0, 0.0]])
    gen = fps([[0.0], [5.0]], [[9.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    out = coverage(gen, ref, 0.2, 4.0, IDENTITY)
    assert out["cov_recall"] == 1.0 and out["cov_precision"] == 0.0


def test_real_set_against_itself_is_fully_covered():
    crystals = [Crystal.from_symbols(np.eye(3) * a, PEROVSKITE_FRAC, [x, "Ti", "O", "O", "O"])
                for a, x in ((3.9, "Ba"), (4.0, "Sr"), (4.2, "Ca"))]
    f = compute_fingerprints(crystals, n_workers=1)
    out = coverage(f, f, *cutoffs_for("perov_5"))
    assert out["cov_recall"] == 1.0 and out["cov_precision"] == 1.0
    assert out["amsd_recall"] == 0.0 and out["amcd_precision"] == 0.0


def test_cutoffs():
    assert cutoffs_for("perov_5") == (0.2, 4.0)
    assert cutoffs_for("carbon_24_unique") == (0.2, 4.0)
    assert cutoffs_for("mp_20") == (0.4, 10.0)
    with pytest.raises(KeyError, match="no CDVAE coverage cutoffs"):
        cutoffs_for("my_set")
