"""Applicability of predictors (issue 22.4): structures and guidance targets far outside a predictor's training data
are flagged (a warning per structure, a JSON column), never silently answered.

The out-of-domain structures are made here, after the issue's reproductions: a 1-atom Pu cell, a 400 Å cell with 2
atoms, a 576-atom cell (the size of the faujasite zeolite) and a hydrogen-bearing cell; the shipped
perov-5-heat-ref predictor knows 5-atom perovskites only.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith import pretrained
from atomsmith.predictors.applicability import (
    OutOfDomainWarning,
    TrainingDomain,
    check_request,
    check_structure,
)
from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal


def _perovskite(a: float = 4.0, numbers=(56, 22, 8, 8, 8)) -> Crystal:
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Crystal(np.eye(3) * a, frac, list(numbers))


def _grid_cell(a: float, shape=(8, 8, 9)) -> Crystal:
    """A cubic cell of side ``a`` Å with one atom per grid point (1 Si : 2 O), e.g. 576 atoms in a 24.3 Å cell."""
    grid = np.stack(np.meshgrid(*[np.arange(k) / k for k in shape], indexing="ij"), -1).reshape(-1, 3)
    return Crystal(np.eye(3) * a, grid, [14 if k % 3 == 0 else 8 for k in range(len(grid))])


OUTSIDE = {
    "pu_1_atom": Crystal(np.eye(3) * 3.1, [[0, 0, 0]], [94]),
    "cell_400": Crystal(np.eye(3) * 400.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [56, 22]),
    "atoms_576": _grid_cell(24.3),
    "organic_h": _perovskite(4.0, (56, 22, 8, 8, 1)),
}


@pytest.fixture(scope="module")
def domain():
    cells = [_perovskite(a, z) for a in (3.8, 4.0, 4.2) for z in ((56, 22, 8, 8, 8), (38, 22, 8, 8, 8))]
    return TrainingDomain.from_crystals(cells, [0.1 * k for k in range(len(cells))])


def test_domain_of_the_training_set(domain):
    assert domain.elements == (8, 22, 38, 56)
    assert domain.n_atoms == (5, 5) and domain.n_structures == 6
    assert domain.volume_per_atom == pytest.approx((3.8 ** 3 / 5, 4.2 ** 3 / 5))
    assert domain.max_length == pytest.approx(4.2)
    assert domain.target == pytest.approx((0.0, 0.5))
    assert TrainingDomain.from_dict(json.loads(json.dumps(domain.to_dict()))) == domain


def test_training_structures_and_near_ones_pass(domain):
    assert check_structure(_perovskite(4.1), domain) == []
    assert check_structure(_perovskite(4.0).supercell((2, 1, 1)), domain) == []  # 10 atoms: within 2x
    assert check_structure(_perovskite(4.0), None) == []  # no recorded domain: nothing to say


@pytest.mark.parametrize("name, needle", [("pu_1_atom", "Pu not in the training data"),
                                          ("cell_400", "Å^3 per atom"), ("atoms_576", "576 atoms"),
                                          ("organic_h", "element H")])
def test_structures_far_outside_are_flagged(domain, name, needle):
    problems = check_structure(OUTSIDE[name], domain)
    assert any(needle in p for p in problems), problems


def test_atom_count_density_and_length_checks(domain):
    big = _perovskite(4.0).supercell((4, 4, 4))  # 320 atoms
    assert any("320 atoms" in p for p in check_structure(big, domain))
    dense = _perovskite(2.5)
    assert any("density" in p for p in check_structure(dense, domain))
    long = Crystal(np.diag([12.0, 3.0, 3.0]), [[0, 0, 0], [0.2, 0.5, 0.5], [0.4, 0, 0.5], [0.6, 0.5, 0],
                                                [0.8, 0, 0]], [56, 22, 8, 8, 8])
    assert any("lattice vector" in p for p in check_structure(long, domain))


def test_guidance_requests_outside_the_target_range(domain):
    assert check_request("heat_ref", 0.3, 0.3, domain) == []
    assert check_request("heat_ref", -1.0, 0.05, domain) == []  # overlaps
    assert check_request("heat_ref", 0.2, np.inf, domain) == []
    [message] = check_request("heat_ref", 5.0, 5.0, domain)
    assert "target heat_ref=5" in message and "0 to 0.5" in message
    [message] = check_request("heat_ref", -np.inf, -2.0, domain)
    assert "range heat_ref=:-2" in message
    assert check_request("heat_ref", 5.0, 5.0, TrainingDomain((8,), (1, 1), (1, 2), (1, 2), 3.0)) == []


# ---------------------------------------------------------------------------------------------- shipped model
@pytest.fixture(scope="module")
def shipped():
    return pretrained.load_model("perov-5-heat-ref")


def test_the_shipped_predictor_knows_its_domain(shipped):
    domain = shipped.domain
    assert domain is not None and domain.n_atoms == (5, 5) and domain.n_structures == 11356
    assert 94 not in domain.elements and 1 not in domain.elements
    assert check_structure(_perovskite(4.0), domain) == []
    for name, crystal in OUTSIDE.items():
        assert check_structure(crystal, domain), name


def test_predict_api_warns_per_structure_and_still_answers(shipped):
    from atomsmith.api.prediction import applicability, predict

    crystals = [_perovskite(4.0), OUTSIDE["pu_1_atom"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = predict(shipped, crystals)
    flagged = [w for w in caught if issubclass(w.category, OutOfDomainWarning)]
    assert len(values) == 2 and np.all(np.isfinite(np.asarray(values, float)))
    assert len(flagged) == 1 and "structure 1 (Pu)" in str(flagged[0].message)
    assert applicability(shipped, crystals)[0] == [] and applicability(shipped, crystals)[1]


def test_predict_cli_warns_and_writes_the_column(tmp_path):
    from atomsmith.cli.main import app

    paths = []
    for name, crystal in [("inside", _perovskite(4.0)), *OUTSIDE.items()]:
        paths.append(io.write(tmp_path / f"{name}.extxyz", crystal))
    out = tmp_path / "predictions.json"
    result = CliRunner().invoke(app, ["predict", "--model", "perov-5-heat-ref", *map(str, paths), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == len(OUTSIDE), result.stderr
    assert all("perov-5-heat-ref" in line for line in warned)
    records = json.loads(out.read_text())
    assert records[0]["domain_warnings"] == []
    assert all(r["domain_warnings"] for r in records[1:])
    assert all(np.isfinite(r["value"]) for r in records)


def test_guidance_plan_warns_for_a_target_outside_the_predictor(shipped):
    from atomsmith.api.sampling import parse_requests, plan_guidance

    class Generator:  # plan_guidance only reads the model's conditioning properties and dataset
        config = None
        metadata: dict = {}

    inside = plan_guidance(Generator(), "perov-5", parse_requests("heat_ref=0.5"))
    assert inside.warnings == ()
    far = plan_guidance(Generator(), "perov-5", parse_requests("heat_ref=40"))
    assert len(far.warnings) == 1 and "heat_ref=40" in far.warnings[0]


def test_a_trained_predictor_saves_and_loads_its_domain(tmp_path, domain):
    import jax

    from atomsmith.nn.encoder import EncoderConfig
    from atomsmith.predictors.model import PredictorConfig, init_predictor, load_predictor

    config = PredictorConfig.for_target("heat_ref", encoder=EncoderConfig(irreps_hidden="4x0e+2x1o", n_layers=1))
    predictor = init_predictor(config, jax.random.PRNGKey(0)).replace(domain=domain)
    predictor.save(tmp_path / "p.ckpt")
    loaded, metadata = load_predictor(tmp_path / "p.ckpt")
    assert loaded.domain == domain and metadata["domain"] == domain.to_dict()
    assert pretrained.load_model(tmp_path / "p.ckpt").domain == domain


def test_predict_cli_scores_an_overlapping_sample_and_flags_it(tmp_path):
    """A generator's structurally invalid sample (two atoms 0.3 Å apart) in a file with a valid one: both are
    predicted, the overlapping one is warned about by index and flagged in the JSON; the valid one is not."""
    from atomsmith.cli.main import app

    good = _perovskite(4.0)
    frac = np.array(good.frac_coords)
    frac[4] = frac[3] + np.array([0.3 / 4.0, 0.0, 0.0])  # atom 4 0.3 Å from atom 3
    bad = Crystal(good.lattice, frac, good.numbers)
    path = io.write(tmp_path / "samples.extxyz", [good, bad])
    out = tmp_path / "predictions.json"
    result = CliRunner().invoke(app, ["predict", "--model", "perov-5-heat-ref", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "samples.extxyz[1]" in warned[0] and "0.300 Å apart" in warned[0], result.stderr
    records = json.loads(out.read_text())
    assert records[0]["domain_warnings"] == [] and "0.300 Å apart" in records[1]["domain_warnings"][0]
    assert all(np.isfinite(r["value"]) for r in records)
