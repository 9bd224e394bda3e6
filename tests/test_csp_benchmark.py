"""The perov_5 structure-prediction benchmark script (experiments/diffusion/csp_perov5.py): fixed subsets, the
layout of k samples per composition, DiffCSP's scoring rules, and one batched sampler call on a tiny model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

from atomsmith.generators.diffusion import DiffusionConfig, DiffusionModel
from atomsmith.generators.diffusion.training import init_params
from atomsmith.structures.crystal import Crystal

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "diffusion" / "csp_perov5.py"
PEROVSKITE_FRAC = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def csp():
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} is not part of this checkout")
    spec = importlib.util.spec_from_file_location("csp_perov5", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def perovskite(a, symbols=("Sr", "Ti", "O", "O", "O"), shift=0.0):
    frac = PEROVSKITE_FRAC.copy()
    frac[1] += shift
    return Crystal.from_symbols(np.eye(3) * a, frac, list(symbols))


def test_subset_is_fixed_sorted_and_distinct(csp):
    a = csp.select_subset(3785, 50, 0)
    assert np.array_equal(a, csp.select_subset(3785, 50, 0))
    assert not np.array_equal(a, csp.select_subset(3785, 50, 1))
    assert len(set(a.tolist())) == 50 and np.all(np.diff(a) > 0) and a.max() < 3785
    assert np.array_equal(csp.select_subset(10, None, 0), np.arange(10))
    assert np.array_equal(csp.select_subset(10, 99, 0), np.arange(10))
    with pytest.raises(ValueError):
        csp.select_subset(10, 0, 0)


def test_requests_repeat_each_composition_k_times(csp):
    gts = [perovskite(3.9), perovskite(4.0, ("Ba", "Zr", "O", "O", "N"))]
    comps, gt_index = csp.csp_requests(gts, 3)
    assert gt_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert comps[0] == (38, 22, 8, 8, 8) and comps[5] == (56, 40, 8, 8, 7)
    with pytest.raises(ValueError):
        csp.csp_requests(gts, 0)


def test_scoring_follows_diffcsp(csp):
    gts = [perovskite(3.9), perovskite(4.0, ("Ba", "Ti", "O", "O", "O")), perovskite(4.1, ("Ca", "Ti", "O", "O", "O"))]
    near = perovskite(3.95, shift=0.02)  # same structure, slightly strained and displaced: matches gt 0
    far = Crystal(np.diag([3.9, 3.9, 7.8]), PEROVSKITE_FRAC * [1, 1, 0.5], gts[0].numbers)  # c doubled: no match
    overlap = Crystal(np.eye(3) * 4.0, np.r_[PEROVSKITE_FRAC[:4], [[0.51, 0.5, 0.0]]], gts[1].numbers)  # invalid
    # k = 1: matched = 1 of 3 test cells (the overlapping prediction is invalid and never matched)
    one = csp.score([near, overlap, far], gts,
                    np.array([0, 1, 2]), n_workers=1)
    assert one["n_matched"] == 1 and one["match_rate"] == pytest.approx(1 / 3)
    assert 0 < one["rms_dist"] < 0.1
    # k = 2: any of a cell's predictions may match; RMSE of the best one
    exact = perovskite(3.9)
    two = csp.score([far, near, exact, overlap], gts[:2], np.array([0, 0, 1, 1]), n_workers=1)
    assert two["samples_per_target"] == 2 and two["n_matched"] == 1 and two["match_rate"] == pytest.approx(0.5)
    assert two["rms_dist"] == pytest.approx(one["rms_dist"])
    best = csp.score([near, exact], gts[:1], np.array([0, 0]), n_workers=1)
    assert best["match_rate"] == 1.0 and best["rms_dist"] < 1e-6


def test_predict_samples_all_compositions_in_one_batched_call(csp):
    config = DiffusionConfig.tiny()  # vocabulary O, Ti, Sr
    model = DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))
    gts = [perovskite(3.9), Crystal.from_symbols(np.eye(3) * 3.0, PEROVSKITE_FRAC[:3], ["Sr", "O", "O"])]
    preds, gt_index, stats = csp.predict(model, gts, 3, seed=0, steps=2, batch_size=8)
    assert len(preds) == 6 and gt_index.tolist() == [0, 0, 0, 1, 1, 1]
    for p, g in zip(preds, gt_index):
        assert p.properties["gt_index"] == g
        assert p.numbers.tolist() == gts[g].numbers.tolist()  # the composition is kept, in site order
        assert np.isfinite(p.lattice).all() and np.isfinite(p.frac_coords).all()
    again, _, _ = csp.predict(model, gts, 3, seed=0, steps=2, batch_size=8)
    assert all(np.allclose(a.frac_coords, b.frac_coords) for a, b in zip(preds, again))
    assert "overflow" in stats
