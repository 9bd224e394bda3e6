"""Dataset registry and loaders: published counts and hashes, property values, cache hits and rebuilds, limit=,
bad CSV rows, the BaTiO3 tarball and mp_20's offline / checksum failures, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import io as _io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from atomsmith import datasets
from atomsmith.datasets import cache as dcache
from atomsmith.datasets import csv_reader, download, loader
from atomsmith.datasets.paths import PACKAGE_FILES, sha256_file
from atomsmith.structures import errors

SHIPPED_COUNTS = {
    ("perov_5", "train"): 11356, ("perov_5", "val"): 3787, ("perov_5", "test"): 3785,
    ("carbon_24", "val"): 2032, ("carbon_24", "test"): 2030,
    ("carbon_24_unique", "train"): 2550, ("carbon_24_unique", "val"): 850, ("carbon_24_unique", "test"): 850,
}
BTO_LOCAL = datasets.info("bto_400K").is_local
needs_bto = pytest.mark.skipif(
    not BTO_LOCAL, reason="bto_400K (GPL-3.0, not shipped) not found: set ATOMSMITH_DATA_DIR to a directory holding "
                          "bto_400K/BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz (default ../shared/data)")


@pytest.fixture()
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ATOMSMITH_CACHE_DIR", str(root))
    return root


# ------------------------------------------------------------------------------------------- registry
def test_registry_names_and_published_counts():
    assert datasets.available() == ["perov_5", "carbon_24", "carbon_24_unique", "bto_400K", "mp_20"]
    for (name, split), count in SHIPPED_COUNTS.items():
        assert datasets.REGISTRY[name].splits[split].n_structures == count
    assert {s: f.n_structures for s, f in datasets.REGISTRY["mp_20"].splits.items()} == \
        {"train": 27136, "val": 9047, "test": 9046}
    assert datasets.REGISTRY["bto_400K"].splits["all"].n_structures == 50


@pytest.mark.parametrize("name,split", list(SHIPPED_COUNTS))
def test_shipped_file_rows_and_sha256(name, split):
    spec = datasets.REGISTRY[name]
    path = PACKAGE_FILES / name / spec.splits[split].filename
    assert sha256_file(path) == spec.splits[split].sha256
    layout = csv_reader.CsvLayout(property_columns=spec.property_columns)
    rows = list(csv_reader.iter_rows(path, layout))  # counts rows without parsing CIFs
    assert len(rows) == SHIPPED_COUNTS[name, split]
    assert len({r.material_id for r in rows}) == len(rows)


def test_shipped_files_have_attribution():
    readme = (PACKAGE_FILES / "README.md").read_text()
    for (name, split) in SHIPPED_COUNTS:
        assert datasets.REGISTRY[name].splits[split].sha256 in readme
    assert "MIT License" in readme and "Tian Xie" in readme and "Rui Jiao" in readme
    assert not list(PACKAGE_FILES.glob("**/*BTO*")), "the GPL BaTiO3 data must not be shipped"


def test_unknown_names_and_splits():
    with pytest.raises(datasets.UnknownDatasetError, match="known datasets: perov_5"):
        datasets.load("perov5", "train")
    with pytest.raises(datasets.SplitUnavailableError, match="could not be obtained.*carbon_24_unique"):
        datasets.load("carbon_24", "train")
    with pytest.raises(datasets.SplitUnavailableError, match="no published split.*random_split"):
        datasets.load("bto_400K", "train")
    with pytest.raises(datasets.SplitUnavailableError, match="available splits: train, val, test"):
        datasets.load("perov_5", "valid")


# ------------------------------------------------------------------------------------------- values
def test_perov_5_first_rows(cache_root):
    crystals = datasets.load("perov_5", "train", limit=3)
    assert len(crystals) == 3
    first = crystals[0]
    # Row 0 of perov_5/train.csv: material_id 6334, TlCoN2O, a = 4.24596403 Å cubic.
    assert first.properties["material_id"] == "6334"
    assert first.properties["heat_ref"] == pytest.approx(2.6248636002164694, abs=0)
    assert first.properties["heat_all"] == 2.72
    assert first.properties["dir_gap"] == 0.0 and first.properties["ind_gap"] == 0.0
    assert first.properties["spacegroup_number"] == 99 and isinstance(first.properties["spacegroup_number"], int)
    assert first.symbols == ["Co", "Tl", "N", "N", "O"]  # file order
    np.testing.assert_allclose(first.lattice_parameters, [4.24596403] * 3 + [90.0] * 3, atol=1e-8)
    np.testing.assert_allclose(first.frac_coords[0], [0.00265771, 0.0, 0.0], atol=1e-12)
    assert not list(cache_root.glob("**/*.npz")), "limit= must not write a cache"


def test_carbon_24_first_row(cache_root):
    (first,) = datasets.load("carbon_24", "val", limit=1)
    assert first.properties == {"energy_per_atom": -154.223695, "material_id": "C-148264-7891-51"}
    assert first.n_atoms == 8 and set(first.symbols) == {"C"}
    # CIF row C1 is at (-0.05100441, -0.20340566, 0.07354088): kept unwrapped, as in the file
    np.testing.assert_allclose(first.frac_coords[1], [-0.05100441, -0.20340566, 0.07354088], atol=1e-12)


# ---------------------------------------------------------------------------------- full parse and cache
def test_full_parse_cache_hit_and_corrupt_rebuild(cache_root, monkeypatch):
    # The one full-file parse in the suite: carbon_24_unique test (850 rows), in 2 worker processes.
    packed = datasets.load_packed("carbon_24_unique", "test", workers=2)
    assert len(packed) == 850
    ids = packed.properties["material_id"].tolist()
    assert ids == [f"c24u-{i:04d}" for i in range(3400, 4250)]
    assert packed.n_atoms.min() >= 6 and packed.n_atoms.max() <= 24 and set(packed.numbers.tolist()) == {6}
    (cache_file,) = cache_root.glob("datasets/carbon_24_unique/test-*.npz")

    # The parallel parse equals an in-process parse of the same rows (limit= path, no cache involved).
    serial = datasets.read_csv(PACKAGE_FILES / "carbon_24_unique" / "test.csv.gz", limit=40, workers=1)
    head = packed.head(40)
    np.testing.assert_array_equal(head.lattices, serial.lattices)
    np.testing.assert_array_equal(head.frac_coords, serial.frac_coords)
    np.testing.assert_array_equal(head.numbers, serial.numbers)

    # Cache hit: parsing is now forbidden, loading still works and gives the same arrays.
    calls = []

    def parse_forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("parsed although a valid cache exists")

    monkeypatch.setattr(loader, "_parse", parse_forbidden)
    again = datasets.load("carbon_24_unique", "test")
    assert len(again) == 850 and again[5].properties["material_id"] == "c24u-3405"
    np.testing.assert_array_equal(again[5].frac_coords, packed.head(6).to_crystals()[5].frac_coords)
    assert len(datasets.load("carbon_24_unique", "test", limit=7)) == 7  # limit= reads the cache too
    assert not calls

    stats = datasets.statistics("carbon_24_unique", "test")
    assert stats["n_structures"] == 850 and stats["elements"] == {"C": 850}
    assert datasets.info("carbon_24_unique").cached["test"] == cache_file

    # Corrupt the cache (flip bytes in the middle): detected, warned, rebuilt from the source.
    data = bytearray(cache_file.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    cache_file.write_bytes(bytes(data))
    monkeypatch.setattr(loader, "_parse", lambda *args, **kwargs: calls.append(args) or packed)
    with pytest.warns(UserWarning, match="corrupt and will be rebuilt"):
        rebuilt = datasets.load_packed("carbon_24_unique", "test")
    assert len(calls) == 1 and len(rebuilt) == 850
    assert dcache.load(cache_file, {"source_sha256": sha256_file(PACKAGE_FILES / "carbon_24_unique" / "test.csv.gz")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datasets.load_packed("carbon_24_unique", "test")  # valid again: no warning, no parse
    assert len(calls) == 1


def _small_pack():
    crystals = datasets.load("perov_5", "val", limit=4)
    return datasets.PackedCrystals.from_crystals(crystals)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "wrong_source"])
def test_cache_corruption_is_detected(tmp_path, damage):
    packed = _small_pack()
    path = dcache.save(tmp_path / "c.npz", packed, {"source_sha256": "abc"})
    loaded = dcache.load(path, {"source_sha256": "abc"})
    np.testing.assert_array_equal(loaded.frac_coords, packed.frac_coords)
    assert loaded.properties["material_id"].tolist() == packed.properties["material_id"].tolist()
    data = path.read_bytes()
    expected = {"source_sha256": "abc"}
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "flip":
        k = data.index(b"frac_coords") + 200  # inside the coordinate array
        path.write_bytes(data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        expected = {"source_sha256": "def"}
    with pytest.raises(dcache.CacheCorruptError):
        dcache.load(path, expected)
    assert dcache.load(tmp_path / "missing.npz", expected) is None


def test_packed_round_trip_and_validation():
    packed = _small_pack()
    crystals = packed.to_crystals()
    again = datasets.PackedCrystals.from_crystals(crystals)
    for key, value in packed.to_arrays().items():
        np.testing.assert_array_equal(again.to_arrays()[key], value)
    with pytest.raises(ValueError, match="frac_coords has shape"):
        datasets.PackedCrystals(packed.n_atoms, packed.lattices, packed.frac_coords[:-1], packed.numbers[:-1])


# ------------------------------------------------------------------------------------------- CSV rows
def _write_csv(path: Path, n_rows: int, edit=None) -> Path:
    """The header and first ``n_rows`` rows of perov_5/val, optionally edited, as a gzip CSV."""
    import csv

    with gzip.open(PACKAGE_FILES / "perov_5" / "val.csv.gz", "rt", newline="") as handle:
        reader = csv.reader(handle)
        rows = [next(reader) for _ in range(n_rows + 1)]
    if edit:
        edit(rows)
    buffer = _io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(gzip.compress(buffer.getvalue().encode()))
    return path


PEROV_LAYOUT = csv_reader.CsvLayout(property_columns=datasets.REGISTRY["perov_5"].property_columns,
                                    integer_properties={"spacegroup_number"})


def test_malformed_csv_rows(tmp_path):
    header = _write_csv(tmp_path / "h.csv.gz", 0)
    columns = next(csv_reader.csv.reader(gzip.open(header, "rt")))
    heat = columns.index("heat_ref")
    cif = columns.index("cif")

    def set_field(row, col, value):
        def edit(rows):
            rows[row + 1][col] = value
        return edit

    bad_number = _write_csv(tmp_path / "bad_number.csv.gz", 8, set_field(5, heat, "n/a"))
    with pytest.raises(datasets.MalformedRowError,
                       match=r"row 5 \(line \d+, material_id \d+\): property 'heat_ref' is 'n/a'"):
        datasets.read_csv(bad_number, PEROV_LAYOUT)
    # limit= stops before the bad row: the rest of the file is never parsed.
    assert len(datasets.read_csv(bad_number, PEROV_LAYOUT, limit=5)) == 5

    short = _write_csv(tmp_path / "short.csv.gz", 3, lambda rows: rows[2].__delitem__(slice(4, None)))
    with pytest.raises(datasets.MalformedRowError, match=r"row 1 .*only 4 of \d+ fields"):
        datasets.read_csv(short, PEROV_LAYOUT)

    long = _write_csv(tmp_path / "long.csv.gz", 3, lambda rows: rows[3].append("extra"))
    with pytest.raises(datasets.MalformedRowError, match=r"row 2 .*fields, but the header has"):
        datasets.read_csv(long, PEROV_LAYOUT)

    empty_cif = _write_csv(tmp_path / "empty.csv.gz", 3, set_field(0, cif, " "))
    with pytest.raises(datasets.MalformedRowError, match=r"row 0 .*'cif' column is empty"):
        datasets.read_csv(empty_cif, PEROV_LAYOUT)

    def bad_element(rows):
        rows[3][cif] = rows[3][cif].replace("\n  O  O", "\n  Qq  Qq")

    unknown = _write_csv(tmp_path / "unknown.csv.gz", 3, bad_element)
    with pytest.raises(errors.UnknownElementError, match=r"row 2 \(line \d+, material_id \d+\).*'Qq'"):
        datasets.read_csv(unknown, PEROV_LAYOUT)

    with pytest.raises(errors.MalformedFileError, match=r"lacks column\(s\) \['energy_per_atom'\]"):
        datasets.read_csv(header, csv_reader.CsvLayout(property_columns={"energy_per_atom": "e"}))


# ------------------------------------------------------------------------------------------- BaTiO3
@needs_bto
def test_bto_400K_tensors(cache_root):
    crystals = datasets.load("bto_400K", "all", limit=3)
    assert len(crystals) == 3
    first = crystals[0]
    assert first.n_atoms == 135 and first.formula == "Ba27Ti27O81"
    assert first.properties["material_id"] == "structure_00000"
    assert first.site_properties["born_charges"].shape == (135, 3, 3)
    assert first.site_properties["raman_tensors"].shape == (135, 3, 3, 3)
    assert np.shape(first.properties["dielectric"]) == (3, 3)
    assert np.shape(first.properties["nlo_susceptibility"]) == (3, 3, 3)
    # Independent read of the tarball members.
    tarball = datasets.locate("bto_400K", "all")
    with tarfile.open(tarball) as tar:
        def member(suffix):
            name = next(n for n in tar.getnames() if n.endswith(suffix))
            return np.load(_io.BytesIO(tar.extractfile(name).read()))
        np.testing.assert_array_equal(first.site_properties["born_charges"], member("born_charges/00000.npy"))
        np.testing.assert_array_equal(first.site_properties["raman_tensors"], member("raman_tensors/00000.npy"))
        np.testing.assert_array_equal(first.properties["dielectric"], member("dielectric/00000.npy"))
        np.testing.assert_array_equal(crystals[2].properties["nlo_susceptibility"],
                                      member("nlo_susceptibilities/00002.npy"))
    # Physics: the acoustic sum rule (sum of Born charges = 0) and signs by species (cations +, O -).
    z = first.site_properties["born_charges"]
    np.testing.assert_allclose(z.sum(axis=0), 0.0, atol=1e-8)
    trace = np.trace(z, axis1=1, axis2=2) / 3
    symbols = np.array(first.symbols)
    assert np.all(trace[symbols == "Ba"] > 2) and np.all(trace[symbols == "Ti"] > 4)
    assert np.all(trace[symbols == "O"] < 0)
    # Cubic cell of 3 x 4.0 Å, axis-aligned (the frame of the tensors).
    np.testing.assert_allclose(first.lattice, np.eye(3) * 12.0001732407972312, atol=1e-12)


def test_bto_missing_and_wrong_file(tmp_path):
    with pytest.raises(datasets.DataNotFoundError) as info:
        datasets.load("bto_400K", "all", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "bto_400K" / "BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz") in message
    assert "ATOMSMITH_DATA_DIR" in message and "GPL-3.0" in message
    (tmp_path / "bto_400K").mkdir()
    (tmp_path / "bto_400K" / "BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz").write_bytes(b"not the tarball")
    with pytest.raises(datasets.ChecksumMismatchError, match="expected e20a79d1"):
        datasets.load("bto_400K", "all", data_dir=tmp_path)


def test_random_split_is_deterministic():
    train, test = datasets.split_indices(50, test_fraction=0.2, seed=0)
    assert len(train) == 40 and len(test) == 10
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(50))
    again = datasets.split_indices(50, test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(datasets.split_indices(50, 0.2, seed=1)[1], test)
    # Pinned: the split depends only on (n, fraction, seed), via sha256 of "seed:index".
    keys = sorted(range(50), key=lambda i: hashlib.sha256(f"0:{i}".encode()).digest())
    assert test.tolist() == sorted(keys[:10])
    items = [f"s{i}" for i in range(50)]
    tr, te = datasets.random_split(items, 0.2, 0)
    assert te == [items[i] for i in test] and len(tr) == 40


# ------------------------------------------------------------------------------------------- mp_20
def test_mp_20_offline(tmp_path, monkeypatch, cache_root):
    monkeypatch.setenv("ATOMSMITH_OFFLINE", "1")
    with pytest.raises(datasets.DownloadError) as info:
        datasets.load("mp_20", "val", data_dir=tmp_path)
    message = str(info.value)
    assert "place it at" in message and str(tmp_path / "mp_20" / "val.csv") in message
    assert "68e101e777c168429d84feb5bf1c5432f1a1b625884f72499c54c4d68e7ee73a" in message
    assert "raw.githubusercontent.com/jiaor17/DiffCSP" in message


def test_mp_20_network_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("ATOMSMITH_OFFLINE", raising=False)

    def no_network(url, timeout=None):
        raise download.urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    with pytest.raises(datasets.DownloadError, match="name resolution(.|\n)*place it at"):
        datasets.load("mp_20", "test", data_dir=tmp_path)
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.part"))


def test_mp_20_checksum_mismatch_of_local_file(tmp_path):
    (tmp_path / "mp_20").mkdir()
    (tmp_path / "mp_20" / "val.csv").write_text("material_id,cif\nmp-1,not really\n")
    with pytest.raises(datasets.ChecksumMismatchError, match="val.csv: sha256 is .* expected 68e101e7"):
        datasets.load("mp_20", "val", data_dir=tmp_path)


def test_download_verifies_sha256(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("material_id,cif\n")
    good = datasets.SplitFile("x.csv", sha256_file(source), 0, urls=(source.as_uri(),))
    dest = download.download("demo", good, tmp_path / "out" / "x.csv", [])
    assert dest.read_bytes() == source.read_bytes()
    bad = datasets.SplitFile("y.csv", "0" * 64, 0, urls=(source.as_uri(),))
    with pytest.raises(datasets.ChecksumMismatchError, match="discarded"):
        download.download("demo", bad, tmp_path / "out" / "y.csv", [])
    assert not (tmp_path / "out" / "y.csv").exists() and not list((tmp_path / "out").glob("*.part"))


# ------------------------------------------------------------------------------------------- CLI
def test_cli_data_list_and_info(cache_root):
    from typer.testing import CliRunner

    from atomsmith.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in datasets.available():
        assert name in result.output
    assert "11,356" in result.output and "shipped" in result.output and "GPL-3.0" in result.output
    result = runner.invoke(app, ["data", "info", "perov_5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "heat_ref" in result.output and "42c3888740e27a4c" in result.output and "not parsed yet" in result.output
    result = runner.invoke(app, ["data", "info", "perov5"])
    assert result.exit_code == 2 and "unknown dataset" in result.output


def test_parallel_parse_reports_row_errors(tmp_path, monkeypatch):
    """Errors raised in worker processes come back with their type and the row that caused them."""
    heat = PEROV_LAYOUT_COLUMNS().index("heat_ref")

    def edit(rows):
        rows[7][heat] = "oops"  # data row 6

    path = _write_csv(tmp_path / "bad.csv.gz", 8, edit)
    monkeypatch.setattr(csv_reader, "POOL_THRESHOLD", 2)
    with pytest.raises(datasets.MalformedRowError, match=r"row 6 .*'heat_ref' is 'oops'"):
        datasets.read_csv(path, PEROV_LAYOUT, workers=2)


def PEROV_LAYOUT_COLUMNS() -> list[str]:
    import csv

    with gzip.open(PACKAGE_FILES / "perov_5" / "val.csv.gz", "rt", newline="") as handle:
        return next(csv.reader(handle))
