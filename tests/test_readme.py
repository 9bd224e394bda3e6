"""The README's tour is executed exactly as written: every ``atomsmith ...`` line of its bash blocks (in order, in
one scratch directory holding a copy of ``examples/``) and every python block.

The two install-and-run lines at the top are not run here (CI runs the test line itself; the first one installs
into a fresh virtualenv); the sampling command they end with is the tour's first kind of command.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atomsmith.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def blocks(language: str) -> list[str]:
    """Contents of the README's fenced blocks of ``language`` (``""``: unlabelled, i.e. shown output), in order."""
    found, current, lang = [], None, None
    for line in README.read_text(encoding="utf-8").splitlines():
        if current is None and line.startswith("```"):
            current, lang = [], line[3:].strip()
        elif current is not None and line.strip() == "```":
            if lang == language:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def commands() -> list[str]:
    lines = [line.strip() for block in blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line.startswith("atomsmith ")]


def documented_skips() -> list[str]:
    """Lines of the README's output blocks that report skipped rows (they must be reproduced)."""
    return [line.strip() for block in blocks("") for line in block.splitlines() if line.startswith("skipped ")]


def test_readme_starts_with_the_two_fresh_machine_commands():
    first, second = [block.strip() for block in blocks("bash")[:2]]
    assert first.startswith("python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/atomsmith sample")
    assert second == ('python3 -m venv .venv-test && .venv-test/bin/pip install -q ".[test]" && '
                      ".venv-test/bin/python -m pytest -q -p no:cacheprovider")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci


@pytest.mark.skipif(not (ROOT / "examples").is_dir(), reason="needs the repository checkout (examples/)")
def test_readme_tour_runs_as_written(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables and messages at the terminal width
    runner = CliRunner()
    outputs = {}
    tour = commands()
    assert len(tour) >= 8, tour
    for line in tour:
        args = shlex.split(line)[1:]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{line}\n{result.output}\n{result.exception!r}"
        if "--out" in args:
            out = Path(args[args.index("--out") + 1])
            assert out.exists() and out.stat().st_size > 0, line
        outputs[line] = result.output
    text = "\n".join(outputs.values())
    for skipped in documented_skips():  # rows reported as in the README, line numbers included
        assert skipped.split(": ")[0] in text, skipped
    kinds = {shlex.split(line)[1] for line in tour}
    assert {"sample", "infill", "interpolate", "assemble", "predict", "evaluate", "train"} <= kinds


def test_readme_python_runs_as_written(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    for code in blocks("python"):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102 - the README is ours
    assert Path("guided.extxyz").exists()
