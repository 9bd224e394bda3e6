"""Best-so-far curves over evaluation counts and their summary over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from atomsmith.assembly.curves import best_at, curve_from_returns, evaluations_to_reach, summarise


def test_curve_from_returns_is_running_max():
    curve = curve_from_returns([-3.0, -1.0, -2.0, -0.5])
    assert curve == [(1, -3.0), (2, -1.0), (3, -1.0), (4, -0.5)]
    assert curve_from_returns([]) == []
    with pytest.raises(ValueError):
        curve_from_returns([[1.0, 2.0]])


def test_best_at_respects_budgets_and_unspent_evaluations():
    curve = [(0, -np.inf), (15, -2.0), (30, -1.0), (45, -0.2)]
    got = best_at(curve, [10, 15, 29, 30, 45, 46])
    assert got[0] == -np.inf  # nothing finished within 10 evaluations
    np.testing.assert_array_equal(got[1:5], [-2.0, -2.0, -1.0, -0.2])
    assert np.isnan(got[5])  # the run never spent 46 evaluations
    with pytest.raises(ValueError):
        best_at([(5, 0.0), (3, 1.0)], [4])


def test_evaluations_to_reach():
    curve = [(15, -2.0), (30, -1.0), (45, -0.2)]
    assert evaluations_to_reach(curve, -1.0) == 30
    assert evaluations_to_reach(curve, -1.5) == 30
    assert evaluations_to_reach(curve, 0.0) is None


def test_summarise_over_seeds():
    a = curve_from_returns([-2.0, -1.0, -1.0, 0.0])
    b = curve_from_returns([-4.0, -3.0])
    s = summarise([a, b], [1, 2, 4])
    assert s["n"] == [2, 2, 1]
    np.testing.assert_allclose(s["mean"], [-3.0, -2.0, 0.0])
    np.testing.assert_allclose(s["std"], [1.0, 1.0, 0.0])
    assert np.isnan(s["per_seed"][1][2])
