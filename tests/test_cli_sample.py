"""``atomsmith sample``: output formats, refusing to overwrite, structure prediction, clear errors (tiny model)."""

from __future__ import annotations

import gzip

import jax
import pytest
from typer.testing import CliRunner

from atomsmith.cli.main import app
from atomsmith.generators.diffusion import DiffusionConfig, DiffusionModel
from atomsmith.generators.diffusion.training import init_params
from atomsmith.structures import io

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    config = DiffusionConfig.tiny()
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    DiffusionModel(config, init_params(config, jax.random.PRNGKey(0))).save(path)
    return path


def _run(*args):
    return runner.invoke(app, ["sample", *map(str, args)])


def test_writes_extxyz_and_refuses_to_overwrite(tiny_checkpoint, tmp_path):
    out = tmp_path / "s.extxyz"
    result = _run("-n", 3, "--model", tiny_checkpoint, "--out", out, "--steps", 2, "--no-progress")
    assert result.exit_code == 0, result.output
    crystals = io.read(out, min_distance=None)
    assert len(crystals) == 3
    assert "structures/s" in result.output and "structurally valid" in result.output
    before = out.read_bytes()
    again = _run("-n", 3, "--model", tiny_checkpoint, "--out", out, "--steps", 2, "--seed", 5, "--no-progress")
    assert again.exit_code != 0 and "--force" in again.output
    assert out.read_bytes() == before
    forced = _run("-n", 3, "--model", tiny_checkpoint, "--out", out, "--steps", 2, "--seed", 5, "--force",
                  "--no-progress")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes() != before


def test_cif_and_poscar_directories_and_gzip(tiny_checkpoint, tmp_path):
    for fmt, suffix in (("cif", ".cif"), ("poscar", ".vasp")):
        out = tmp_path / f"dir_{fmt}"
        result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--format", fmt, "--steps", 1,
                      "--sampler", "ode", "--no-progress")
        assert result.exit_code == 0, result.output
        files = sorted(out.glob(f"*{suffix}"))
        assert len(files) == 2
        assert io.read_one(files[0], min_distance=None).n_atoms in (3, 5)
    out = tmp_path / "s.extxyz.gz"
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--steps", 1, "--sampler", "ode",
                  "--no-progress")
    assert result.exit_code == 0, result.output
    assert gzip.decompress(out.read_bytes()).decode().count("Lattice=") == 2


def test_structure_prediction_keeps_the_composition(tiny_checkpoint, tmp_path):
    out = tmp_path / "csp.extxyz"
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--composition", "SrTiO3", "--steps", 1,
                  "--sampler", "ode", "--no-progress")
    assert result.exit_code == 0, result.output
    for crystal in io.read(out, min_distance=None):
        assert sorted(crystal.numbers.tolist()) == [8, 8, 8, 22, 38]


def test_clear_errors(tiny_checkpoint, tmp_path):
    result = _run("-n", 2, "--model", "no-such-model", "--out", tmp_path / "x.extxyz")
    assert result.exit_code != 0 and "perov-5" in result.output  # lists the available models
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", tmp_path / "x.extxyz", "--composition", "UO2",
                  "--steps", 1)
    assert result.exit_code != 0 and "vocabulary" in result.output
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", tmp_path / "x.unknown")
    assert result.exit_code != 0 and "format" in result.output
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", tmp_path / "POSCAR")
    assert result.exit_code != 0 and "one structure" in result.output
    assert not list(tmp_path.glob("x.*"))


@pytest.fixture(scope="module")
def tiny_predictor(tmp_path_factory):
    from atomsmith.nn.encoder import EncoderConfig
    from atomsmith.predictors.model import PredictorConfig, init_predictor

    config = PredictorConfig.for_target("heat_ref", encoder=EncoderConfig.tiny(cutoff=4.0))
    path = tmp_path_factory.mktemp("predictor") / "heat.ckpt"
    init_predictor(config, jax.random.PRNGKey(1)).save(path)
    return path


def test_guided_sampling_with_targets_and_ranges(tiny_checkpoint, tiny_predictor, tmp_path):
    out = tmp_path / "guided.extxyz"
    result = _run("-n", 3, "--model", tiny_checkpoint, "--steps", 3, "--no-progress", "--out", out,
                  "--target", "heat_ref=0.5", "--predictor", tiny_predictor, "--guidance-scale", 1.0)
    assert result.exit_code == 0, result.output
    crystals = io.read(out)
    assert len(crystals) == 3 and all("guidance_objective" in c.properties for c in crystals)
    assert "heat_ref" in result.output  # summary row with the guide's values
    result = _run("-n", 2, "--model", tiny_checkpoint, "--steps", 2, "--no-progress", "--out", tmp_path / "r.extxyz",
                  "--range", "heat_ref=:0.7", "--predictor", tiny_predictor)
    assert result.exit_code == 0, result.output


def test_guidance_errors_list_the_available_properties(tiny_checkpoint, tiny_predictor, tmp_path):
    out = tmp_path / "x.extxyz"
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--target", "band_gap=1.0",
                  "--predictor", tiny_predictor)
    assert result.exit_code != 0 and "band_gap" in result.output and "heat_ref" in result.output
    result = _run("-n", 2, "--model", "carbon-24", "--out", out, "--target", "heat_ref=0.5")
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code != 0 and "available properties: none" in text
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--target", "heat_ref=low",
                  "--predictor", tiny_predictor)
    assert result.exit_code != 0 and "cannot parse" in result.output
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--range", "heat_ref=0.5",
                  "--predictor", tiny_predictor)
    assert result.exit_code != 0 and "LOW:HIGH" in result.output
    result = _run("-n", 2, "--model", tiny_checkpoint, "--out", out, "--predictor", tiny_predictor)
    assert result.exit_code != 0
    assert not out.exists()


def test_crystal_infilling_cli(tiny_checkpoint, tmp_path):
    import numpy as np

    from atomsmith.structures.crystal import Crystal

    partial = tmp_path / "partial.cif"
    io.write(partial, [Crystal(np.eye(3) * 3.9, [[0, 0, 0], [0.5, 0.5, 0.5]], [38, 22])], format="cif")
    out = tmp_path / "done.extxyz"
    args = ["infill", "--model", str(tiny_checkpoint), "--fixed", str(partial), "-n", "3", "--steps", "3",
            "--no-progress", "--out", str(out)]
    result = runner.invoke(app, [*args, "--n-free", "2", "--free-species", "O2"])
    assert result.exit_code == 0, result.output
    done = io.read(out, min_distance=None)
    assert len(done) == 3 and all(list(c.numbers) == [38, 22, 8, 8] for c in done)
    np.testing.assert_allclose(done[0].frac_coords[:2], [[0, 0, 0], [0.5, 0.5, 0.5]], atol=1e-6)
    result = runner.invoke(app, [*args, "--n-free", "1"])
    assert result.exit_code != 0 and "--force" in result.output  # never overwrites
    result = runner.invoke(app, [*args[:-1], str(tmp_path / "b.extxyz")])
    assert result.exit_code != 0 and "--n-free" in result.output
    result = runner.invoke(app, [*args[:-1], str(tmp_path / "c.extxyz"), "--n-free", "1", "--free-species", "U"])
    assert result.exit_code != 0 and "vocabulary" in result.output
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a oops\n")
    result = runner.invoke(app, ["infill", "--model", str(tiny_checkpoint), "--fixed", str(bad), "--n-free", "1",
                                 "--out", str(tmp_path / "d.extxyz")])
    assert result.exit_code != 0 and "bad.cif" in result.output


def test_classifier_free_guidance_from_the_cli(tiny_checkpoint, tmp_path):
    config = DiffusionConfig.tiny().with_properties(["heat_ref"], [1.0], [0.5])
    path = tmp_path / "cfg.ckpt"
    params = jax.tree_util.tree_map(lambda x: x + 0.01, init_params(config, jax.random.PRNGKey(0)))
    DiffusionModel(config, params).save(path)
    out = tmp_path / "cfg.extxyz"
    result = _run("-n", 2, "--model", path, "--steps", 2, "--no-progress", "--out", out, "--target", "heat_ref=0.5",
                  "--cfg-scale", 2.0)
    assert result.exit_code == 0, result.output
    assert all("guidance_objective" not in c.properties for c in io.read(out))  # CFG, not gradient guidance
    result = _run("-n", 2, "--model", tiny_checkpoint, "--steps", 2, "--out", tmp_path / "y.extxyz", "--target",
                  "heat_ref=0.5", "--guidance-mode", "classifier-free")
    assert result.exit_code != 0 and "classifier-free" in result.output


def test_amorphous_mode_cell_and_relax_options(tmp_path):
    import numpy as np

    config = DiffusionConfig.tiny(elements=(14,))
    path = tmp_path / "si.ckpt"
    DiffusionModel(config, init_params(config, jax.random.PRNGKey(0))).save(path)
    out = tmp_path / "si.extxyz"
    result = _run("-n", 2, "--model", path, "--steps", 2, "--no-progress", "--out", out, "--composition", "Si8",
                  "--cell", "5.43", "--relax", "--relax-steps", 50)
    assert result.exit_code == 0, result.output
    cells = io.read(out, min_distance=None)
    assert all(c.n_atoms == 8 and np.allclose(c.lattice, np.eye(3) * 5.43) for c in cells)
    assert all("sw_energy_per_atom" in c.properties for c in cells)
    assert "vink parameters" in result.output  # the shipped a-Si's potential by default
    result = _run("-n", 1, "--model", path, "--steps", 2, "--no-progress", "--out", tmp_path / "o.extxyz",
                  "--composition", "Si8", "--cell", "5.43", "--relax", "--potential", "tersoff")
    assert result.exit_code != 0 and "unknown potential 'tersoff'" in result.output
    result = _run("-n", 2, "--model", path, "--out", tmp_path / "x.extxyz", "--cell", "1,2")
    assert result.exit_code != 0 and "--cell" in result.output
