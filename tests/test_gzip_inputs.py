"""Gzip-compressed structure files (``*.extxyz.gz``, ``*.cif.gz``): io round trips, the sample loader (which keeps
overlapping atoms) and ``atomsmith evaluate`` reading a gzipped sample file directly."""

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith.metrics.samples import load_samples
from atomsmith.structures import errors, io
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a=4.0, a_site="Ba", shift=0.0):
    frac = np.array(PEROVSKITE_FRAC)
    frac[1, 2] += shift
    return Crystal.from_symbols(np.eye(3) * a, frac, [a_site, "Ti", "O", "O", "O"])


def test_format_is_told_by_the_suffix_before_gz():
    assert io.detect_format("samples.extxyz.gz") == "extxyz"
    assert io.detect_format("a/b/Structure.CIF.GZ") == "cif"
    assert io.detect_format("POSCAR.gz") == "poscar"
    with pytest.raises(errors.MalformedFileError):
        io.detect_format("samples.gz")


@pytest.mark.parametrize("name", ["s.extxyz.gz", "s.cif.gz"])
def test_io_round_trip_through_gzip(tmp_path, name):
    crystals = [perovskite(3.9, "Sr"), perovskite(4.1, "Ba", 0.03)]
    path = io.write(tmp_path / name, crystals)
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # really gzip, not plain text with a .gz name
    plain = tmp_path / name[:-3]
    io.write(plain, crystals)
    assert gzip.decompress(raw).decode() == plain.read_text()
    back = io.read(path)
    assert len(back) == 2
    for a, b in zip(back, crystals):
        assert np.array_equal(a.numbers, b.numbers)
        assert np.allclose(a.lattice @ a.lattice.T, b.lattice @ b.lattice.T, atol=1e-6)
        assert np.allclose(a.positions @ a.lattice.T @ np.linalg.inv(a.lattice @ a.lattice.T),
                           a.frac_coords, atol=1e-6)
    assert io.write(tmp_path / "again.extxyz.gz", crystals).read_bytes() == io.write(
        tmp_path / "again2.extxyz.gz", crystals).read_bytes()  # deterministic (no time stamp)


def test_sample_loader_reads_gzip_files_and_directories(tmp_path):
    overlap = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0.01, 0, 0], [0.5, 0.5, 0.5]], [11, 17, 17])
    path = tmp_path / "samples.extxyz.gz"
    path.write_bytes(gzip.compress(io.to_extxyz([perovskite(), overlap]).encode()))
    loaded = load_samples(path)
    assert len(loaded) == 2 and all(isinstance(c, Crystal) for c in loaded)
    assert loaded[1].close_pairs(0.5)  # the overlap is kept (counted invalid later), not rejected
    with pytest.raises(errors.OverlappingAtomsError):
        io.read(path)  # the strict reader still checks distances
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "a.cif.gz").write_bytes(gzip.compress(io.to_cif(perovskite(3.8, "Ca")).encode()))
    io.write(directory / "b.extxyz", [perovskite(4.2, "K")])
    loaded = load_samples(directory)
    assert [int(c.numbers[0]) for c in loaded] == [20, 19]
    bad = tmp_path / "bad.extxyz.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(errors.MalformedFileError):
        load_samples(bad)
    with pytest.raises(errors.MalformedFileError):
        io.read(bad)


def test_evaluate_cli_reads_gzipped_samples(tmp_path, monkeypatch):
    from atomsmith.cli.main import app

    monkeypatch.setenv("ATOMSMITH_CACHE_DIR", str(tmp_path / "cache"))
    reference = [perovskite(3.95, "Ba"), perovskite(3.9, "Sr"), perovskite(3.85, "Ca", 0.03)]
    charged = Crystal.from_symbols(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]], ["Li", "F", "F"])
    samples = reference[:2] + [charged]
    io.write(tmp_path / "ref.cif", reference)
    results = []
    for name in ("samples.extxyz", "samples.extxyz.gz"):
        io.write(tmp_path / name, samples)
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(app, ["evaluate", str(tmp_path / name), "--reference", str(tmp_path / "ref.cif"),
                                          "--dataset", "perov_5", "--train", "none", "--workers", "1", "--quiet",
                                          "--no-uniqueness", "--out", str(out)])
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        data.pop("timing_s"), data.pop("samples")
        results.append(data)
    assert results[0] == results[1]
    assert results[1]["n_samples"] == 3 and results[1]["comp_valid"] == pytest.approx(2 / 3)
