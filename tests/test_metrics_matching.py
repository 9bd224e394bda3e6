"""StructureMatcher-based metrics: CSP match rate / RMSE, uniqueness, novelty."""

import numpy as np
import pytest

from atomsmith.metrics import matching
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a=4.0, species=("Ba", "Ti", "O", "O", "O")):
    return Crystal.from_symbols(np.eye(3) * a, PEROVSKITE_FRAC, list(species))


def rocksalt(a=5.6):
    frac = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    frac = frac + [[x + 0.5, y, z] for x, y, z in frac]
    return Crystal.from_symbols(np.eye(3) * a, np.array(frac) % 1, ["Ba"] * 4 + ["Ti"] * 4)


def perturbed(c, scale, seed=0):
    rng = np.random.default_rng(seed)
    return c.replace(frac_coords=c.frac_coords + rng.normal(scale=scale, size=c.frac_coords.shape))


def rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_structure_matches_itself_with_zero_rmse():
    c = perovskite()
    assert matching.rms_dist(c, c) == pytest.approx(0.0, abs=1e-8)
    moved = c.rotated(rotation(1)).permuted([3, 1, 4, 0, 2]).replace(frac_coords=c.frac_coords[[3, 1, 4, 0, 2]] + 0.3)
    assert matching.rms_dist(moved, c) == pytest.approx(0.0, abs=1e-6)


def test_perturbed_copy_matches_within_tolerance():
    c = perovskite()
    r = matching.rms_dist(perturbed(c, 0.01), c)
    assert r is not None and 1e-4 < r < 0.1
    assert matching.rms_dist(rocksalt(), perovskite(species=("Ba", "Ti", "Ba", "Ti", "Ti"))) is None


def test_csp_one_sample_per_target_requires_both_valid():
    gts = [perovskite(4.0), perovskite(4.2, ("Sr", "Ti", "O", "O", "O"))]
    preds = [perturbed(gts[0], 0.01), gts[1]]
    out = matching.csp_match(preds, gts, [0, 1], [True, True], [True, True], n_workers=1)
    assert out["match_rate"] == 1.0 and out["n_matched"] == 2 and out["samples_per_target"] == 1
    assert out["rms_dist"] == pytest.approx(np.mean([out["rms_per_target"][0], 0.0]))
    assert out["tight_match_rate"] == 1.0 and out["rms_median"] == pytest.approx(out["rms_dist"])
    # A loose match (RMS above 0.1 but within stol) counts as matched, not as tight.
    loose = matching.csp_match([perturbed(gts[0], 0.06, seed=5), gts[1]], gts, [0, 1], [True, True], None, n_workers=1)
    assert loose["match_rate"] == 1.0 and loose["rms_per_target"][0] > matching.TIGHT_RMS
    assert loose["tight_match_rate"] == 0.5
    # An invalid ground truth (CDVAE RecEval) or an invalid prediction is never matched.
    assert matching.csp_match(preds, gts, [0, 1], [True, True], [True, False], n_workers=1)["match_rate"] == 0.5
    assert matching.csp_match(preds, gts, [0, 1], [False, True], None, n_workers=1)["match_rate"] == 0.5


def test_csp_k_samples_takes_best_valid_prediction():
    gts = [perovskite(4.0), perovskite(4.2, ("Sr", "Ti", "O", "O", "O"))]
    preds = [perturbed(gts[0], 0.02), rocksalt(), gts[0], perturbed(gts[1], 0.01, seed=3)]
    gt_index = [0, 1, 0, 1]  # two rounds over the ground truths
    out = matching.csp_match(preds, gts, gt_index, [True, True, True, True], [False, False], n_workers=1)
    # Ground-truth validity is ignored with k > 1 (DiffCSP RecEvalBatch); the best RMSE per target is kept.
    assert out["match_rate"] == 1.0 and out["samples_per_target"] == 2
    assert out["rms_per_target"][0] == pytest.approx(0.0, abs=1e-8)
    out = matching.csp_match(preds, gts, gt_index, [True, True, False, False], None, n_workers=1)
    assert out["match_rate"] == 0.5 and out["rms_per_target"][0] > 1e-4
    with pytest.raises(ValueError):
        matching.csp_match(preds, gts, [0, 1, 2, 0], [True] * 4, None)


def test_uniqueness():
    a, b = perovskite(4.0), perovskite(4.0, ("Sr", "Ti", "O", "O", "O"))
    out = matching.uniqueness([a, a.rotated(rotation(2)), b, a.supercell((1, 1, 2))], n_workers=1)
    assert out["n_unique"] == 2 and out["uniqueness"] == pytest.approx(0.5)


def test_novelty_of_training_structures_is_zero():
    train = [perovskite(4.0), perovskite(4.1, ("Sr", "Ti", "O", "O", "O")), rocksalt()]
    assert matching.novelty(train, train, n_workers=1)["novelty"] == 0.0
    index = matching.TrainingIndex(train, n_workers=1)
    new = [perovskite(4.0, ("Ca", "Ti", "O", "O", "O")), perturbed(train[0], 0.002)]
    out = matching.novelty(new, index, n_workers=1)
    assert out["novel"] == [True, False] and out["novelty"] == 0.5
