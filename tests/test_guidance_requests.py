"""Property requests (``name=value``, ``name=low:high``) -> shared objectives."""

from __future__ import annotations

import math

import pytest

from atomsmith.guidance import PropertyRange, PropertyTarget, WeightedSum
from atomsmith.guidance.requests import PropertyRequest, UnknownPropertyError, build_objective
from atomsmith.pretrained.predictors import resolve_predictors, shipped_predictors


def test_parse_targets_and_ranges():
    r = PropertyRequest.parse("heat_ref=0.5")
    assert r.is_target and r.low == r.high == 0.5 and r.scale == 0.1
    r = PropertyRequest.parse("heat_ref = 0.3:0.7", scale=0.2)
    assert (r.low, r.high, r.scale, r.is_target) == (0.3, 0.7, 0.2, False)
    assert PropertyRequest.parse("band_gap=:1").low == -math.inf
    assert PropertyRequest.parse("band_gap=1:").high == math.inf
    for bad in ("heat_ref", "=0.5", "heat_ref=", "heat_ref=a", "heat_ref=0.7:0.3", "heat_ref=:"):
        with pytest.raises(ValueError):
            PropertyRequest.parse(bad)
    with pytest.raises(ValueError):
        PropertyRequest.parse("heat_ref=1", scale=0.0)


def test_objectives_and_the_shipped_predictor_lookup():
    assert shipped_predictors("perov_5") == {"heat_ref": "perov-5-heat-ref"}
    assert shipped_predictors("carbon_24_unique") == {}
    requests = [PropertyRequest.parse("heat_ref=0.5")]
    predictors = resolve_predictors(requests, dataset="perov_5")
    assert isinstance(build_objective(requests, predictors), PropertyTarget)
    both = build_objective([PropertyRequest.parse("heat_ref=0.5"), PropertyRequest.parse("heat_ref=0:1")],
                           predictors)
    assert isinstance(both, WeightedSum) and isinstance(both.terms[1], PropertyRange)
    with pytest.raises(UnknownPropertyError, match="heat_ref"):
        resolve_predictors([PropertyRequest.parse("band_gap=1")], dataset="perov_5")
    with pytest.raises(ValueError):
        build_objective([], predictors)
