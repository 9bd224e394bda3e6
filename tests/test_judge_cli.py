"""``atomsmith judge`` without CHGNet: the one-line errors (missing extra, existing output, missing input) and the
help text. The CHGNet runs are in tests/test_judge_chgnet.py."""

from __future__ import annotations

from typer.testing import CliRunner

from atomsmith.cli.main import app
from atomsmith.judging import extra as extra_module

from tests.helpers.structures import GOOD_CIF


def _one_line_error(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_extra_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(extra_module, "find_spec", lambda name: None)
    cif = tmp_path / "BaTiO3.cif"
    cif.write_text(GOOD_CIF)
    result = CliRunner().invoke(app, ["judge", str(cif), "--quiet"])
    assert result.exit_code == 2
    assert "atomsmith[judge]" in _one_line_error(result)


def test_existing_output_needs_force_and_missing_input_is_reported(tmp_path):
    cif = tmp_path / "BaTiO3.cif"
    cif.write_text(GOOD_CIF)
    out = tmp_path / "judged.json"
    out.write_text("{}")
    result = CliRunner().invoke(app, ["judge", str(cif), "--out", str(out)])
    assert result.exit_code == 2 and "--force" in _one_line_error(result)
    assert out.read_text() == "{}"
    result = CliRunner().invoke(app, ["judge", str(tmp_path / "nothing.extxyz")])
    assert result.exit_code == 2 and "nothing.extxyz" in _one_line_error(result)
    result = CliRunner().invoke(app, ["judge", str(cif), "--fmax", "0"])
    assert result.exit_code == 2 and "--fmax" in _one_line_error(result)


def test_help_lists_the_command_and_its_options():
    runner = CliRunner()
    assert "judge" in runner.invoke(app, ["--help"]).output
    text = runner.invoke(app, ["judge", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--reference", "--fmax", "--steps", "--phonons", "--supercell", "--mesh",
                   "--imaginary-threshold", "--force", "atomsmith[judge]"):
        assert option in text, option
