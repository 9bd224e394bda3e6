"""Training on your own data: a CSV of CIFs with property columns, or a folder of extxyz files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith import datasets
from atomsmith.cli.main import app
from atomsmith.datasets.user_data import BadDataError, load_user_data
from atomsmith.structures import errors
from atomsmith.structures.crystal import Crystal
from atomsmith.structures.io import read, to_cif, write


def _write_csv(path, rows, columns=("material_id", "cif", "gap")):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(columns))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def cells():
    return datasets.load("perov_5", "val", limit=8)


@pytest.fixture()
def own_csv(tmp_path, cells):
    """8 rows; rows 1, 3 and 5 are bad (non-numeric target, truncated CIF, empty target)."""
    rows = [{"material_id": f"m{i}", "cif": to_cif(c), "gap": f"{0.1 * i:.2f}"} for i, c in enumerate(cells)]
    rows[1]["gap"] = "n/a"
    rows[3]["cif"] = rows[3]["cif"][: len(rows[3]["cif"]) // 3]
    rows[5]["gap"] = ""
    path = tmp_path / "own.csv"
    _write_csv(path, rows)
    return path


def _row_lines(path):
    """1-based line where each data row starts (the CIF column spans many lines)."""
    lines, line = [], 2
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for _ in reader:
            lines.append(line)
            line = reader.line_num + 1
    return lines


def test_skip_reports_bad_rows_with_their_lines(own_csv, cells):
    data = load_user_data(own_csv, ["gap"], on_bad="skip")
    lines = _row_lines(own_csv)
    assert [p.where for p in data.problems] == [f"own.csv line {lines[k]}" for k in (1, 3, 5)]
    assert "not a number" in data.problems[0].message and "not finite" in data.problems[2].message
    kept = [0, 2, 4, 6, 7]
    assert [c.properties["material_id"] for c in data.crystals] == [f"m{k}" for k in kept]
    assert [c.properties["gap"] for c in data.crystals] == pytest.approx([0.1 * k for k in kept])
    for crystal, k in zip(data.crystals, kept):
        assert np.allclose(crystal.lattice, cells[k].lattice, atol=1e-4)


def test_fail_lists_every_bad_row(own_csv):
    with pytest.raises(BadDataError) as info:
        load_user_data(own_csv, ["gap"])
    lines = _row_lines(own_csv)
    message = str(info.value)
    assert "3 bad entries" in message
    assert all(f"line {lines[k]}" in message for k in (1, 3, 5))


def test_missing_column_and_missing_file(own_csv, tmp_path):
    with pytest.raises(errors.MalformedFileError, match="band_gap"):
        load_user_data(own_csv, ["band_gap"])
    with pytest.raises(FileNotFoundError):
        load_user_data(tmp_path / "nothing.csv", ["gap"])


def test_overlapping_atoms_rejected(tmp_path, cells):
    squeezed = Crystal(cells[0].lattice * 0.15, cells[0].frac_coords, cells[0].numbers)
    _write_csv(tmp_path / "o.csv", [{"material_id": "a", "cif": to_cif(squeezed), "gap": "1"},
                                    {"material_id": "b", "cif": to_cif(cells[1]), "gap": "2"}])
    data = load_user_data(tmp_path / "o.csv", ["gap"], on_bad="skip")
    assert len(data.crystals) == 1 and "close" in data.problems[0].message.lower()


def test_folder_of_extxyz(tmp_path, cells):
    folder = tmp_path / "structures"
    folder.mkdir()
    write(folder / "a.extxyz", [c.with_properties(gap=0.5 + k) for k, c in enumerate(cells[:3])])
    write(folder / "b.extxyz", cells[3])  # no target
    (folder / "c.cif").write_text("data_broken\n_cell_length_a 4\n")
    (folder / "notes.txt").write_text("ignored")
    data = load_user_data(folder, ["gap"], on_bad="skip")
    assert [c.properties["gap"] for c in data.crystals] == pytest.approx([0.5, 1.5, 2.5])
    assert [p.where for p in data.problems] == ["b.extxyz", "c.cif"]
    assert read(folder / "a.extxyz")[0].n_atoms == data.crystals[0].n_atoms


def test_cli_train_predictor_on_own_csv(own_csv, tmp_path):
    runner = CliRunner()
    out = tmp_path / "gap.ckpt"
    args = ["train", "predictor", "--data", str(own_csv), "--target", "gap", "--out", str(out), "--steps", "4",
            "--batch-size", "2", "--eval-every", "2", "--irreps", "4x0e+2x1o", "--layers", "1", "--width", "8",
            "--no-progress"]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 2 and not out.exists()
    text = " ".join(failed.output.replace("│", " ").split())  # rich wraps the error panel
    assert "3 bad entries" in text and "--on-bad" in text
    result = runner.invoke(app, [*args, "--on-bad", "skip"])
    assert result.exit_code == 0, result.output
    assert result.output.count("skipped own.csv line") == 3
    from atomsmith.predictors import load_predictor

    predictor, _ = load_predictor(out)
    values = predictor.predict(list(load_user_data(own_csv, ["gap"], on_bad="skip").crystals))
    assert np.all(np.isfinite(np.asarray(values, float)))
