"""``atomsmith assemble``: registered, documented, clear errors for bad input (the end-to-end run is exercised by
experiments/mcts and the benchmark; it compiles a full search, too slow for a unit test here)."""

from __future__ import annotations

from typer.testing import CliRunner

from atomsmith.cli.main import app


def test_assemble_is_registered_with_its_options():
    result = CliRunner().invoke(app, ["assemble", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--task", "--simulations", "--out", "--seed"):
        assert option in result.output


def test_unknown_task_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["assemble", "--task", "no-such-task", "--out", str(tmp_path / "x.extxyz")])
    assert result.exit_code != 0
    assert "unknown assembly task" in result.output
    assert not (tmp_path / "x.extxyz").exists()
