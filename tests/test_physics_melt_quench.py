"""Melt-quench protocol, the cached a-Si set, the shipped set and the ``atomsmith data make-asi`` command (tiny,
fast settings: 64 atoms, a few hundred MD steps)."""

from __future__ import annotations

import json

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
    again = CliRunner().invoke(app, args)  # existing output is not overwritten silently
    assert again.exit_code == 1
    bad = CliRunner().invoke(app, args[:2] + ["--out", str(tmp_path), "--start", "nope"])
    assert bad.exit_code == 2 and "start" in bad.output


def test_shipped_set():
    files = asi_set.shipped_files()
    if not files:
        pytest.fail("the a-Si set is not shipped in atomsmith/datasets/files/a_si")
    cells = asi_set.load_shipped()
    sizes = sorted({c.n_atoms for c in cells})
    assert 64 in sizes and 216 in sizes
    for c in cells:
        assert c.density == pytest.approx(2.29, rel=1e-4)
        assert c.properties["relax_converged"]
    stats = amorphous_statistics(asi_set.load_shipped(64))
    assert 3.9 < stats.coordination_mean < 4.6
    assert 100 < stats.angle_mean < 112
    with pytest.raises(FileNotFoundError):
        asi_set.load_shipped(n_atoms=7)


def test_command_defaults_match_config():
    import inspect

    from atomsmith.cli import make_asi

    defaults = MeltQuenchConfig()
    options = {name: p.default.default for name, p in inspect.signature(make_asi.make_asi).parameters.items()}
    for field in ("density", "start", "t_melt", "melt_ps", "hot_quench_rate", "t_hold", "hold_ps", "quench_rate",
                  "t_final", "anneal_ps", "dt", "friction", "fmax"):
        assert options[field] == getattr(defaults, field), field
