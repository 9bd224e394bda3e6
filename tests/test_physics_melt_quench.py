"""Melt-quench protocol, the cached a-Si set, the shipped set and the ``atomsmith data make-asi`` command (tiny,
fast settings: 64 atoms, a few hundred MD steps)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from atomsmith.metrics.amorphous import amorphous_statistics
from atomsmith.physics import asi_set
from atomsmith.physics.melt_quench import MeltQuenchConfig, diamond_start, melt_quench, random_start

TINY = MeltQuenchConfig(n_atoms=64, melt_ps=0.4, hot_quench_rate=1e16, hold_ps=0.2, quench_rate=1e16,
                        anneal_ps=0.4, dt=2.0, friction=0.05, relax_steps=3000)


@pytest.fixture(scope="module")
def tiny_cell():
    return melt_quench(TINY, seed=3, index=1)


def test_config_validation():
    with pytest.raises(ValueError, match="start"):
        MeltQuenchConfig(start="lattice")
    with pytest.raises(ValueError, match="8 k"):
        MeltQuenchConfig(n_atoms=100, start="diamond")
    with pytest.raises(ValueError, match="t_melt >= t_hold >= t_final"):
        MeltQuenchConfig(t_melt=200.0)
    with pytest.raises(ValueError, match="t_melt >= t_hold >= t_final"):
        MeltQuenchConfig(t_hold=4000.0)
    with pytest.raises(ValueError, match="rates"):
        MeltQuenchConfig(hot_quench_rate=0.0)
    with pytest.raises(ValueError, match="density"):
        MeltQuenchConfig(density=20.0)
    # 3500 -> 1100 K at 1e15 K/s (2.4 ps), 10 ps hold, 1100 -> 300 K at 1e14 K/s (8 ps)
    config = MeltQuenchConfig(quench_rate=1e14, hot_quench_rate=1e15, hold_ps=10.0)
    assert config.quench_ps == pytest.approx(20.4)
    assert config.steps() == {"melt": 1500, "quench_hot": 1200, "hold": 5000, "quench": 4000, "anneal": 500}
    linear = MeltQuenchConfig(quench_rate=1e14, hot_quench_rate=1e14, hold_ps=0.0)
    assert linear.mean_quench_rate == pytest.approx(1e14)
    assert MeltQuenchConfig(n_atoms=512, density=2.29).box_length == pytest.approx(21.847, abs=0.001)


def test_starts():
    rng = np.random.default_rng(0)
    box = TINY.box_length
    pos = random_start(rng, 64, box, 2.0)
    d = pos[:, None] - pos[None]
    d -= box * np.round(d / box)
    dist = np.linalg.norm(d, axis=-1) + 10 * np.eye(64)
    assert dist.min() >= 2.0
    assert diamond_start(rng, 64, box).shape == (64, 3)
    with pytest.raises(RuntimeError, match="could not place"):
        random_start(rng, 64, 5.0, 2.0, max_tries=50)


def test_melt_quench_cell(tiny_cell):
    c = tiny_cell
    p = c.properties
    assert c.n_atoms == 64 and c.density == pytest.approx(2.29, rel=1e-4)
    assert p["relax_converged"] and p["max_force"] <= 1.1e-3
    assert -4.3 < p["energy_per_atom"] < -3.8  # above diamond (-4.3366), a bound solid
    assert p["t_melt_mean"] > 2500  # it melted
    assert abs(p["t_anneal_mean"] - 300) < 150  # and was cooled
    assert np.all((c.frac_coords >= 0) & (c.frac_coords < 1))
    c.check_distances(1.9)
    stats = amorphous_statistics(c)
    assert 3.5 < stats.coordination_mean < 5.0


def test_melt_quench_is_reproducible(tiny_cell):
    again = melt_quench(TINY, seed=3, index=1)
    np.testing.assert_allclose(again.frac_coords, tiny_cell.frac_coords, atol=1e-6)
    other = melt_quench(TINY, seed=3, index=2)
    assert not np.allclose(other.frac_coords, tiny_cell.frac_coords)


def test_interrupted_cell_resumes_from_its_checkpoint(tmp_path, tiny_cell):
    checkpoint = tmp_path / "cell.partial.npz"

    class Killed(Exception):
        pass

    def kill_after_checkpoint(message):
        if "checkpoint at step 500" in message:
            raise Killed  # as if the process died right after writing the checkpoint

    with pytest.raises(Killed):
        melt_quench(TINY, seed=3, index=1, progress=kill_after_checkpoint, checkpoint=checkpoint,
                    checkpoint_every_s=0.0)
    assert checkpoint.exists()
    messages = []
    other = melt_quench(TINY, seed=3, index=2, progress=messages.append, checkpoint=checkpoint,
                        checkpoint_every_s=1e9)
    assert any("ignoring" in m for m in messages) and not checkpoint.exists()  # another cell's checkpoint
    assert not np.allclose(other.frac_coords, tiny_cell.frac_coords)
    with pytest.raises(Killed):
        melt_quench(TINY, seed=3, index=1, progress=kill_after_checkpoint, checkpoint=checkpoint,
                    checkpoint_every_s=0.0)
    messages = []
    resumed = melt_quench(TINY, seed=3, index=1, progress=messages.append, checkpoint=checkpoint)
    assert any("resumed" in m and "step 500" in m for m in messages)
    np.testing.assert_allclose(resumed.frac_coords, tiny_cell.frac_coords, atol=1e-6)  # same as uninterrupted
    assert resumed.properties["energy"] == pytest.approx(tiny_cell.properties["energy"], abs=1e-4)
    assert not checkpoint.exists()
    checkpoint.write_bytes(b"not a checkpoint")  # unreadable: ignored
    again = melt_quench(TINY, seed=3, index=1, checkpoint=checkpoint)
    np.testing.assert_allclose(again.frac_coords, tiny_cell.frac_coords, atol=1e-6)


def test_set_is_cached(tmp_path, tiny_cell):
    messages = []
    first = asi_set.make_asi_set(TINY, 1, seed=3, cache_dir=tmp_path, progress=messages.append)
    path = asi_set.cell_path(tmp_path, TINY, 3, 0)
    assert path.exists()
    second = asi_set.make_asi_set(TINY, 1, seed=3, cache_dir=tmp_path, progress=messages.append)
    assert "cached" in messages[-1]
    np.testing.assert_allclose(second[0].frac_coords, first[0].frac_coords, atol=1e-9)
    assert second[0].properties["energy"] == pytest.approx(first[0].properties["energy"])
    assert asi_set.protocol_key(TINY) != asi_set.protocol_key(MeltQuenchConfig(n_atoms=64))
    with pytest.raises(ValueError):
        asi_set.make_asi_set(TINY, 0)


def test_set_split_over_processes_makes_the_same_cells(tmp_path, tiny_cell):
    # cell index 1 of seed 3 is tiny_cell; asked for alone (first=1) it is made under its own index and cached there
    (alone,) = asi_set.make_asi_set(TINY, 1, seed=3, cache_dir=tmp_path, first=1)
    np.testing.assert_allclose(alone.frac_coords, tiny_cell.frac_coords, atol=1e-6)
    assert asi_set.cell_path(tmp_path, TINY, 3, 1).exists() and not asi_set.cell_path(tmp_path, TINY, 3, 0).exists()
    with pytest.raises(ValueError, match="first"):
        asi_set.make_asi_set(TINY, 1, first=-1)


def test_make_asi_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from atomsmith.cli import make_asi

    app = typer.Typer()
    make_asi.register(app)
    args = ["data", "make-asi", "--n-atoms", "64", "--n-cells", "1", "--out", str(tmp_path / "out"), "--seed", "3",
            "--melt-ps", "0.4", "--hot-quench-rate", "1e16", "--hold-ps", "0.2", "--quench-rate", "1e16",
            "--anneal-ps", "0.4", "--friction", "0.05",
            "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out").glob("*.extxyz"))
    assert [f.name for f in files] == ["a_si_n64_seed3_000.extxyz"]
    summary = json.loads((tmp_path / "out" / "a_si_summary.json").read_text())
    assert summary["statistics"]["n_atoms"] == 64
    again = CliRunner().invoke(app, args)  # existing output is refused before any MD, as a usage error
    assert again.exit_code == 2 and "exists; pass --force" in again.output, again.output
    assert "protocol" not in again.output  # nothing was started
    bad = CliRunner().invoke(app, args[:2] + ["--out", str(tmp_path), "--start", "nope"])
    assert bad.exit_code == 2 and "start" in bad.output


def test_shipped_set():
    files = asi_set.shipped_files()
    if not files:
        pytest.fail("the a-Si set is not shipped in atomsmith/datasets/files/a_si")
    cells = asi_set.load_shipped()
    sizes = sorted({c.n_atoms for c in cells})
    assert 64 in sizes and 216 in sizes
    from atomsmith.physics.melt_quench import preset
    from atomsmith.physics.stillinger_weber import parameter_set

    shipped = preset(asi_set.SHIPPED_PRESET)
    assert shipped.params == parameter_set(asi_set.SHIPPED_POTENTIAL)
    for c in cells:
        assert c.density == pytest.approx(shipped.density, rel=1e-4)
        assert c.properties["relax_converged"]
        assert f"({asi_set.SHIPPED_POTENTIAL} parameters)" in c.properties["protocol"]
    stats = amorphous_statistics(asi_set.load_shipped(216))
    assert 3.9 < stats.coordination_mean < 4.1 and stats.fourfold_fraction > 0.9
    assert 108 < stats.angle_mean < 111
    with pytest.raises(FileNotFoundError):
        asi_set.load_shipped(n_atoms=7)


def test_command_defaults_match_config():
    import inspect

    from atomsmith.cli import make_asi
    from atomsmith.physics.stillinger_weber import PARAMETER_SETS, parameter_set

    defaults = MeltQuenchConfig()
    options = {name: p.default.default for name, p in inspect.signature(make_asi.make_asi).parameters.items()
               if name != "ctx"}
    for field in ("density", "start", "t_melt", "melt_ps", "hot_quench_rate", "t_hold", "hold_ps", "quench_rate",
                  "t_final", "anneal_ps", "dt", "friction", "fmax", "relax_cell"):
        assert options[field] == getattr(defaults, field), field
    assert options["pressure"] == defaults.pressure_gpa
    assert make_asi.parse_anneals(options["anneal"]) == defaults.anneals
    assert parameter_set(options["potential"]) == defaults.params
    assert make_asi.POTENTIALS == tuple(PARAMETER_SETS)


def test_presets():
    from atomsmith.cli import make_asi
    from atomsmith.physics.melt_quench import PRESETS, preset
    from atomsmith.physics.stillinger_weber import VINK

    assert make_asi.PRESET_NAMES == tuple(PRESETS)
    assert preset("sw-fast", n_atoms=64) == MeltQuenchConfig(n_atoms=64)
    vink = preset("vink-1e12", n_atoms=216)
    assert (vink.n_atoms, vink.params, vink.density, vink.quench_rate, vink.anneals) == (216, VINK, 2.25, 1e12,
                                                                                        ((1500.0, 100.0),))
    assert vink.n_steps == 912_500
    with pytest.raises(ValueError, match="unknown melt-quench preset"):
        preset("fast")
    # make-asi: without a preset the options are the config; with one, only the typed options change it
    options = {name: p.default.default for name, p in inspect.signature(make_asi.make_asi).parameters.items()
               if name in make_asi.PROTOCOL_OPTIONS}
    assert make_asi.protocol_config(None, 64, options, set()) == MeltQuenchConfig(n_atoms=64)
    assert make_asi.protocol_config("vink-1e12", 64, options, set()) == preset("vink-1e12", n_atoms=64)
    changed = make_asi.protocol_config("vink-1e12", 64, {**options, "quench_rate": 1e13, "anneal": ["1400:5"]},
                                       {"quench_rate", "anneal"})
    assert changed == preset("vink-1e12", n_atoms=64, quench_rate=1e13, anneals=((1400.0, 5.0),))


def test_anneal_plateaus_schedule():
    from atomsmith.physics.melt_quench import _schedule

    # 3000 K melt 1 ps; 3000 -> 2000 K at 1e15 K/s (1 ps); no hold; 2000 -> 300 K at 1e13 K/s with 5 ps at 1000 K
    # and 2 ps at 600 K: ramps of 100 + 40 + 30 ps
    config = MeltQuenchConfig(n_atoms=64, t_melt=3000.0, melt_ps=1.0, t_hold=2000.0, hold_ps=0.0,
                              hot_quench_rate=1e15, quench_rate=1e13, anneals=[(1000, 5), (600, 2)], anneal_ps=1.0)
    assert config.anneals == ((1000.0, 5.0), (600.0, 2.0))
    assert [(n, a, b, k) for n, a, b, k in config.segments()] == [
        ("melt", 3000.0, 3000.0, 500), ("quench_hot", 3000.0, 2000.0, 500), ("hold", 2000.0, 2000.0, 0),
        ("quench_1", 2000.0, 1000.0, 50000), ("anneal_1", 1000.0, 1000.0, 2500), ("quench_2", 1000.0, 600.0, 20000),
        ("anneal_2", 600.0, 600.0, 1000), ("quench_3", 600.0, 300.0, 15000), ("anneal", 300.0, 300.0, 500)]
    assert config.steps() == {"melt": 500, "quench_hot": 500, "hold": 0, "quench": 85000, "anneal_mid": 3500,
                              "anneal": 500}
    assert config.n_steps == 90000 and config.total_ps == pytest.approx(180.0)
    assert config.quench_ps == pytest.approx(178.0)
    schedule = _schedule(config)
    assert len(schedule) == config.n_steps
    np.testing.assert_allclose(schedule[1000 + 50000:1000 + 52500], 1000.0)  # the first plateau
    assert schedule[1000 + 49999] == pytest.approx(1000.0) and schedule[1000] == pytest.approx(1999.98, abs=0.01)
    assert np.all(np.diff(schedule) <= 1e-3)  # never heats
    assert "2 ps at 600 K" in config.describe() and "vink" not in config.describe()
    # without plateaus the schedule is the earlier one: one ramp, rounded as a whole
    plain = MeltQuenchConfig(n_atoms=64)
    assert [s[0] for s in plain.segments()] == ["melt", "quench_hot", "hold", "quench_1", "anneal"]
    assert "anneal_mid" not in plain.steps()
    for bad in ([(1200.0, 1.0)], [(500.0, 1.0), (800.0, 1.0)], [(800.0, -1.0)]):
        with pytest.raises(ValueError, match="anneals"):
            MeltQuenchConfig(anneals=bad)
    with pytest.raises(ValueError, match="relax_cell"):
        MeltQuenchConfig(pressure_gpa=1.0)


def test_protocol_keys_of_earlier_protocols_are_unchanged():
    # the key of the default 64-atom protocol recorded in experiments/a_si_data/results.json (rate_study_64, made
    # before the plateau / potential / cell-relaxation options existed): its cached cells stay valid
    from atomsmith.physics.stillinger_weber import VINK

    assert asi_set.protocol_key(MeltQuenchConfig(n_atoms=64)) == "aa6a994237901059"
    keys = {asi_set.protocol_key(MeltQuenchConfig(n_atoms=64, **change)) for change in
            ({}, {"params": VINK}, {"anneals": ((800.0, 1.0),)}, {"relax_cell": True})}
    assert len(keys) == 4


def test_vink_slow_protocol_with_plateau_and_cell_relaxation():
    from atomsmith.physics.stillinger_weber import VINK

    config = dataclasses.replace(TINY, params=VINK, anneals=((900.0, 0.2),), relax_cell=True)
    cell = melt_quench(config, seed=3, index=1)
    p = cell.properties
    assert "vink parameters" in p["protocol"] and "relaxed to 0.0 GPa" in p["protocol"]
    assert p["relax_converged"] and abs(p["pressure_gpa"]) < 0.05  # zero pressure after the cell relaxation
    assert abs(cell.density - 2.29) > 1e-3  # the cell did change
    assert abs(p["t_anneal_mid_mean"] - 900) < 200
    assert p["md_steps"] == config.n_steps and 0 < p["md_seconds"] < p["seconds"]
    assert -3.3 < p["energy_per_atom"] < -2.8  # above Vink diamond (-2 eps = -3.297), a bound solid
    cell.check_distances(1.9)


def test_make_asi_command_builds_the_protocol(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from atomsmith.cli import make_asi
    from atomsmith.physics.stillinger_weber import VINK
    from atomsmith.structures.crystal import Crystal

    seen = {}

    def fake_set(config, n_cells, seed, **kwargs):  # no MD: the command's part is building the config
        seen["config"] = config
        basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
        return [Crystal(np.eye(3) * 5.431, basis, [14] * 8)] * n_cells

    monkeypatch.setattr(asi_set, "make_asi_set", fake_set)
    app = typer.Typer()
    make_asi.register(app)
    base = ["data", "make-asi", "--n-cells", "1", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, base + ["--potential", "vink", "--quench-rate", "1e12", "--anneal", "1000:100",
                                             "--anneal", "700:50", "--relax-cell"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.params == VINK and config.quench_rate == 1e12 and config.relax_cell
    assert config.anneals == ((1000.0, 100.0), (700.0, 50.0))
    summary = json.loads((tmp_path / "o" / "a_si_summary.json").read_text())
    assert summary["a_si_targets"]["coordination_mean"]["ok"]  # diamond: 4.0
    assert not summary["a_si_targets"]["density_mean"]["ok"]  # 2.33 g/cm^3
    for bad, message in ((["--potential", "tersoff"], "unknown SW parameter set"),
                         (["--anneal", "1000"], "TEMPERATURE:PS"), (["--anneal", "5000:1"], "anneals")):
        out = CliRunner().invoke(app, base + ["--force"] + bad)
        assert out.exit_code == 2 and message in out.output, out.output
    assert all(flag in CliRunner().invoke(app, ["data", "make-asi", "--help"]).output
               for flag in ("--potential", "--anneal", "--relax-cell"))


def test_make_asi_refuses_unwritable_output_before_any_md(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from atomsmith.cli import make_asi

    monkeypatch.setattr(asi_set, "make_asi_set", lambda *a, **k: pytest.fail("the melt-quench started"))
    app = typer.Typer()
    make_asi.register(app)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (a_file, a_file / "below", Path("/proc/atomsmith_out")):
        result = CliRunner().invoke(app, ["data", "make-asi", "--n-cells", "1", "--out", str(out)])
        assert result.exit_code == 2, (out, result.output)
        assert result.output.count("error:") == 1 and "--out" in result.output, result.output
