"""Outputs are never half-written: a failure while writing leaves no partial file and no temporary file behind,
and an existing file that was being replaced keeps its old content. Checked on ``atomic_write`` itself, on the
structure writers, on checkpoints, and through the CLI (``interpolate``, ``evaluate --out``) with the disk failing
mid-write."""

from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith.cli.main import app
from atomsmith.structures import errors, io
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

REAL_FSYNC = os.fsync
CRYSTALS = [Crystal(np.eye(3) * (4.0 + k), [[0, 0, 0], [0.5, 0.5, 0.5]], [56, 22]) for k in range(3)]


def _only(directory, *names) -> None:
    """The directory holds exactly these names (no partial output, no ``.NAME.*.tmp`` left over)."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


class DiskFull(OSError):
    pass


def _fail_fsync(monkeypatch) -> None:
    def fsync(fd):
        raise DiskFull(28, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", fsync)


def test_atomic_write_failure_in_the_body(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_write(target) as handle:
        handle.write("half of it")
        raise RuntimeError("crash mid-write")
    _only(tmp_path)
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_write(target, overwrite=True) as handle:
        handle.write("new and half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    _only(tmp_path, "out.txt")


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_atomic_write_failure_of_the_disk(tmp_path, monkeypatch, where):
    if where == "fsync":
        _fail_fsync(monkeypatch)
    else:
        monkeypatch.setattr(io.os, "replace", lambda src, dst: (_ for _ in ()).throw(DiskFull(5, "I/O error")))
    (tmp_path / "keep.extxyz").write_text("old")
    for name, overwrite in [("new.extxyz", False), ("keep.extxyz", True)]:
        with pytest.raises(DiskFull):
            io.write(tmp_path / name, CRYSTALS, overwrite=overwrite)
    assert (tmp_path / "keep.extxyz").read_text() == "old"
    _only(tmp_path, "keep.extxyz")


@pytest.mark.parametrize("name", ["s.cif", "s.extxyz.gz", "POSCAR"])
def test_checkpoint_and_structure_writers_leave_nothing_on_failure(tmp_path, monkeypatch, name):
    _fail_fsync(monkeypatch)
    with pytest.raises(DiskFull):
        io.write(tmp_path / name, CRYSTALS[0])
    with pytest.raises(DiskFull):
        ckpt.save(tmp_path / "m.ckpt", {"w": np.zeros(3)}, kind="x")
    _only(tmp_path)


def test_serialization_errors_happen_before_any_file_is_opened(tmp_path):
    bad = Crystal(np.eye(3) * 4.0, [[0, 0, 0]], [14], properties={"stress": "high"})
    with pytest.raises(errors.ShapeError):
        io.write(tmp_path / "s.extxyz", [CRYSTALS[0], bad])
    with pytest.raises(errors.ShapeError):
        io.write_directory(tmp_path / "dir", [CRYSTALS[0], CRYSTALS[1], bad], format="extxyz")
    _only(tmp_path)


def test_write_directory_removes_what_it_wrote_when_it_fails(tmp_path, monkeypatch):
    """A failure at the third file used to leave sample_00000 and sample_00001 behind, a partial set."""
    real = io.atomic_write
    calls = {"n": 0}

    def failing_third(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise DiskFull(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io, "atomic_write", failing_third)
    out = tmp_path / "cifs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DiskFull):
        io.write_directory(out, CRYSTALS, format="cif")
    _only(out, "notes.txt")
    monkeypatch.setattr(io, "atomic_write", real)
    paths = io.write_directory(out, CRYSTALS, format="cif")
    assert [p.name for p in paths] == ["sample_00000.cif", "sample_00001.cif", "sample_00002.cif"]
    with pytest.raises(FileExistsError):
        io.write_directory(out, CRYSTALS, format="cif")


def test_cli_outputs_are_not_left_half_written(tmp_path, monkeypatch):
    """``interpolate`` (structures through io.write) and ``evaluate --out`` (JSON through atomic_write) with the
    disk failing at the final flush: the command fails and no output or temporary file is left."""
    cif = tmp_path / "in" / "a.cif"
    cif.parent.mkdir()
    io.write(cif, CRYSTALS[0])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _fail_fsync(monkeypatch)
    runner = CliRunner()
    result = runner.invoke(app, ["interpolate", str(cif), str(cif), "--steps", "3", "--out",
                                 str(out_dir / "path.extxyz")])
    assert result.exit_code != 0 and isinstance(result.exception, DiskFull), result.output
    result = runner.invoke(app, ["evaluate", str(cif), "--reference", str(cif), "--train", "none", "--no-uniqueness",
                                 "--no-cache", "--workers", "1", "-q", "--dataset", "perov_5", "--out",
                                 str(out_dir / "metrics.json")])
    assert result.exit_code != 0 and isinstance(result.exception, DiskFull), result.output
    _only(out_dir)
    monkeypatch.setattr(io.os, "fsync", REAL_FSYNC)
    result = runner.invoke(app, ["interpolate", str(cif), str(cif), "--steps", "3", "--out",
                                 str(out_dir / "path.extxyz")])
    assert result.exit_code == 0, result.output
    assert len(io.read(out_dir / "path.extxyz", min_distance=None)) == 3
