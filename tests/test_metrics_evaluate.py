"""evaluate() on tiny sets (how invalid samples count), CSP pairing, the CLI, and a small real-data check."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from atomsmith.metrics.evaluate import evaluate, parse_dataset_spec
from atomsmith.metrics.samples import BrokenSample
from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a=4.0, a_site="Ba", shift=0.0):
    frac = np.array(PEROVSKITE_FRAC)
    frac[1, 2] += shift
    return Crystal.from_symbols(np.eye(3) * a, frac, [a_site, "Ti", "O", "O", "O"])


REFERENCE = [perovskite(3.95, "Ba"), perovskite(3.9, "Sr"), perovskite(3.85, "Ca", 0.03)]


def invalid_samples():
    overlap = Crystal.from_symbols(np.eye(3) * 4.0, [[0, 0, 0], [0.02, 0, 0], [0.5, 0.5, 0.5]], ["Na", "Cl", "Cl"])
    charged = Crystal.from_symbols(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]], ["Li", "F", "F"])
    broken = BrokenSample(np.array([56, 22, 8, 8, 8]), "singular cell")
    return [overlap, charged, broken]


def test_generation_counts_invalid_samples_like_cdvae():
    samples = REFERENCE + invalid_samples()
    r = evaluate(samples, REFERENCE, dataset="perov_5", train=REFERENCE, n_workers=1, cache=False)
    assert r["n_samples"] == 6 and r["n_broken"] == 1
    # overlap: NaCl2 is comp invalid and struct invalid; LiF2 is structurally fine but cannot be charge neutral;
    # the broken cell is struct-invalid with a valid BaTiO3 composition.
    assert r["comp_valid"] == pytest.approx(4 / 6)
    assert r["struct_valid"] == pytest.approx(4 / 6)
    assert r["valid"] == pytest.approx(3 / 6) and r["n_valid"] == 3
    # Coverage uses all samples: the 3 reference copies are covered; COV-P divides by all 6 samples.
    assert r["cov_recall"] == 1.0 and r["cov_precision"] <= 4 / 6 and r["cov_precision"] >= 3 / 6
    # Distribution metrics on the valid subsample (here all 3 valid samples, which equal the reference).
    assert r["subsample_size"] == 3 and r["wdist_density"] == pytest.approx(0.0, abs=1e-12)
    assert r["wdist_num_elems"] == 0.0 and r["wdist_prop"] is None
    assert r["uniqueness"] == 1.0 and r["novelty"] == 0.0
    assert r["cutoffs"] == {"struct": 0.2, "comp": 4.0} and r["comp_scaler"] == "cdvae"


def test_property_predictor_and_errors():
    volume_per_atom = lambda crystals: np.array([c.volume / c.n_atoms for c in crystals])  # noqa: E731
    r = evaluate([perovskite(4.0)], [perovskite(4.0)], cutoffs=(0.2, 4.0), property_fn=volume_per_atom,
                 uniqueness=False, n_workers=1, cache=False)
    assert r["wdist_prop"] == pytest.approx(0.0) and r["cov_recall"] == 1.0
    with pytest.raises(ValueError, match="cutoffs unknown"):
        evaluate([perovskite()], [perovskite()], n_workers=1, cache=False)
    with pytest.raises(ValueError, match="unknown task"):
        evaluate([perovskite()], [perovskite()], task="recon")


def test_csp_pairs_rounds_over_ground_truths(tmp_path, monkeypatch):
    monkeypatch.setenv("ATOMSMITH_CACHE_DIR", str(tmp_path))  # reference fingerprints computed once
    gts = REFERENCE
    rng = np.random.default_rng(0)
    jitter = [c.replace(frac_coords=c.frac_coords + rng.normal(scale=0.01, size=(5, 3))) for c in gts]
    wrong = [c.replace(lattice=np.diag([6.0, 3.0, 3.0])) for c in gts]  # a 2:1:1 cell: beyond ltol
    r = evaluate(jitter, gts, task="csp", n_workers=1)
    assert r["match_rate"] == 1.0 and 0 < r["rms_dist"] < 0.1 and r["samples_per_target"] == 1
    r = evaluate(wrong + jitter, gts, task="csp", n_workers=1)  # k = 2 rounds
    assert r["match_rate"] == 1.0 and r["samples_per_target"] == 2
    r = evaluate(wrong, gts, task="csp", n_workers=1)
    assert r["match_rate"] == 0.0
    r = evaluate([w for pair in zip(wrong, jitter) for w in pair], gts, task="csp", pairing="consecutive",
                 n_workers=1)
    assert r["match_rate"] == 1.0 and r["samples_per_target"] == 2
    with pytest.raises(ValueError, match="cannot be paired"):
        evaluate(jitter[:2], gts, task="csp", n_workers=1)


def test_dataset_spec_parsing(tmp_path):
    assert parse_dataset_spec("perov_5:test") == ("perov_5", "test")
    assert parse_dataset_spec(str(tmp_path)) is None
    assert parse_dataset_spec("samples.cif") is None


def _app():
    from atomsmith.cli import evaluate as cli

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    cli.register(app)
    return app


def test_cli_writes_json_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.setenv("ATOMSMITH_CACHE_DIR", str(tmp_path / "cache"))
    samples, reference, out = tmp_path / "samples.extxyz", tmp_path / "ref.cif", tmp_path / "metrics.json"
    io.write(samples, REFERENCE[:2] + [perovskite(4.1, "K", 0.02)])
    io.write(reference, REFERENCE)
    args = ["evaluate", str(samples), "--reference", str(reference), "--dataset", "perov_5", "--train",
            str(reference), "--workers", "1", "--out", str(out), "--quiet"]
    runner = CliRunner()
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "COV-R" in result.output and "comp. validity" in result.output
    data = json.loads(out.read_text())
    assert data["n_samples"] == 3 and data["comp_valid"] == 1.0 and data["novelty"] == pytest.approx(1 / 3)
    assert list((tmp_path / "cache" / "metrics").glob("fingerprints-*.npz"))
    before = out.read_text()
    result = runner.invoke(_app(), args)
    assert result.exit_code == 2 and "--force" in result.output and out.read_text() == before
    result = runner.invoke(_app(), args + ["--force", "--seed", "3"])
    assert result.exit_code == 0 and json.loads(out.read_text())["seed"] == 3
    result = runner.invoke(_app(), ["evaluate", str(samples), "--reference", str(reference), "--workers", "1"])
    assert result.exit_code == 2 and "cutoffs unknown" in result.output


def _load_perov(split, limit):
    try:
        from atomsmith.datasets import load
    except ImportError:
        pytest.skip("atomsmith.datasets.load is not available")
    return load("perov_5", split, limit=limit)


@pytest.mark.slow
def test_real_perov5_validation_rows_cover_test_rows():
    val, test = _load_perov("val", 8), _load_perov("test", 8)
    r = evaluate(val, test, dataset="perov_5", train=val, n_workers=1, cache=False)
    assert r["struct_valid"] == 1.0 and r["comp_valid"] > 0.8 and r["novelty"] == 0.0
    r_self = evaluate(test, test, dataset="perov_5", n_workers=1, cache=False)
    assert r_self["cov_recall"] == 1.0 and r_self["cov_precision"] == 1.0
