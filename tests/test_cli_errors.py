"""The one-line error contract of every command (``atomsmith --help``, README): bad usage or input exits with code
2 and exactly one ``error: ...`` line on stderr naming the problem, before any work starts, with no traceback and
no output left behind.

Cases: command-line mistakes (unknown option, missing option), missing inputs, checkpoints of the wrong kind
wherever a model is loaded, and outputs that cannot be written (a parent that is a file, a directory given as a
file name, a virtual file system), for sample, predict, infill (both kinds), interpolate, assemble, evaluate and
the three train commands. The checks fail fast: no model is run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atomsmith import pretrained
from atomsmith.cli.errors import format_usage_error, one_line
from atomsmith.cli.output import check_output
from tests.helpers.structures import GOOD_CIF

runner = CliRunner()


def _invoke(*args):
    from atomsmith.cli.main import app

    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> str:
    """Exit code 2, one non-empty stderr line starting ``error: `` and holding every needle, no traceback."""
    assert result.exit_code == 2, f"exit code {result.exit_code}: {result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"not one line: {result.stderr!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.output and "╭" not in result.output
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    (root / "good.cif").write_text(GOOD_CIF)
    (root / "a_file").write_text("not a directory")
    (root / "a_dir").mkdir()
    (root / "csv").write_text("material_id,cif,y\n")
    return root


# ---------------------------------------------------------------------------------------------- the formatter
def test_one_line_collapses_foreign_newlines():
    assert one_line("could not parse CIF:\n  Singular matrix\n\n[[1 0 0]\n [0 0 0]]") == \
        "could not parse CIF: Singular matrix [[1 0 0] [0 0 0]]"


def test_format_usage_error_names_the_option():
    import typer

    error = typer.BadParameter("x.extxyz exists;\npass --force", param_hint="--out")
    assert format_usage_error(error) == "error: --out: x.extxyz exists; pass --force"
    assert format_usage_error(typer.BadParameter("bad value")) == "error: bad value"


# ---------------------------------------------------------------------------------------------- command line
@pytest.mark.parametrize("args, needles", [
    (["sample", "--bogus", "1"], ["No such option", "--bogus", "atomsmith sample --help"]),
    (["sample", "-n", "2"], ["Missing option", "--out"]),
    (["train", "predictor", "--steps", "x", "--out", "m.ckpt"], ["--steps", "integer"]),
    (["predict", "--model", "perov-5-heat-ref"], ["Missing argument", "structures", "atomsmith predict --help"]),
    (["nonsense"], ["No such command", "nonsense"]),
])
def test_command_line_mistakes_are_one_line(args, needles):
    assert_one_line_error(_invoke(*args), *needles)


def test_no_arguments_still_shows_the_help():
    result = _invoke()
    assert "Usage" in result.output and "sample" in result.output


# ---------------------------------------------------------------------------------------------- missing inputs
@pytest.mark.parametrize("command", ["predict", "evaluate", "interpolate", "infill"])
def test_missing_input_file_is_one_line(files, tmp_path, command):
    missing = files / "missing.cif"
    args = {"predict": ["predict", "--model", "perov-5-heat-ref", missing],
            "evaluate": ["evaluate", missing, "--reference", files / "good.cif", "--train", "none"],
            "interpolate": ["interpolate", missing, files / "good.cif", "--out", tmp_path / "p.extxyz"],
            "infill": ["infill", missing, "--out", tmp_path / "c.extxyz"]}[command]
    assert_one_line_error(_invoke(*args), "missing.cif")


def test_unknown_model_is_one_line(tmp_path):
    line = assert_one_line_error(_invoke("sample", "-n", 1, "--model", "no-such-model", "--out",
                                         tmp_path / "s.extxyz"), "no-such-model", "perov-5")
    assert "--model" in line


# ---------------------------------------------------------------------------------------------- wrong kinds
def _wrong_kind_cases(files, out):
    predictor = pretrained.path_of("perov-5-heat-ref")
    return {
        "sample predictor path": (["sample", "-n", 2, "--model", predictor, "--out", out],
                                  ["'predictor'", "diffusion"]),
        "sample predictor name": (["sample", "-n", 2, "--model", "perov-5-heat-ref", "--out", out],
                                  ["'predictor'", "diffusion"]),
        "sample --predictor diffusion": (["sample", "-n", 2, "--target", "heat_ref=0.5", "--predictor", "perov-5",
                                          "--out", out], ["perov-5", "'diffusion'", "'predictor'"]),
        "predict diffusion": (["predict", "--model", "perov-5", files / "good.cif"], ["'diffusion'", "'predictor'"]),
        "predict gram-vae": (["predict", "--model", "gram-vae", files / "good.cif"], ["'gram-vae'", "'predictor'"]),
        "infill predictor": (["infill", "--model", predictor, "--fixed", files / "good.cif", "--n-free", 1, "--out",
                              out], ["'predictor'", "diffusion"]),
        "interpolate diffusion": (["interpolate", files / "good.cif", files / "good.cif", "--model", "perov-5",
                                   "--out", out], ["'diffusion'", "gram-vae"]),
    }


@pytest.mark.parametrize("case", ["sample predictor path", "sample predictor name", "sample --predictor diffusion",
                                  "predict diffusion", "predict gram-vae", "infill predictor",
                                  "interpolate diffusion"])
def test_wrong_kind_of_checkpoint_is_refused_by_kind(files, tmp_path, case):
    """Issue 22.1: `sample --model PREDICTOR.ckpt` was an AttributeError traceback after loading."""
    out = tmp_path / "out.extxyz"
    args, needles = _wrong_kind_cases(files, out)[case]
    assert_one_line_error(_invoke(*args), *needles)
    assert not out.exists()


@pytest.mark.parametrize("family, kind", [("predictor", "predictor"), ("diffusion", "diffusion"),
                                          ("gram-vae", "gram-vae")])
def test_train_refuses_a_training_state_of_another_kind(files, tmp_path, family, kind):
    state = tmp_path / "state.ckpt"
    state.write_bytes(pretrained.path_of("perov-5").read_bytes())  # a diffusion *model*, not a training state
    result = _invoke("train", family, "--out", tmp_path / "m.ckpt", "--train-state", state, "--steps", 1,
                     "--no-progress")
    assert_one_line_error(result, "--train-state", "'diffusion'", f"train-state:{kind}")
    assert not (tmp_path / "m.ckpt").exists()


# ---------------------------------------------------------------------------------------------- outputs
def _output_cases(files, out: Path) -> dict[str, list]:
    good = files / "good.cif"
    return {
        "sample": ["sample", "-n", 1, "--steps", 1, "--no-progress", "--out", out],
        "predict": ["predict", "--model", "perov-5-heat-ref", good, "--out", out.with_suffix(".json")],
        "infill-environment": ["infill", good, "--out", out],
        "infill-crystal": ["infill", "--model", "perov-5", "--fixed", good, "--n-free", 1, "--steps", 1, "--out", out],
        "interpolate": ["interpolate", good, good, "--out", out],
        "assemble": ["assemble", "--task", "a-si-8", "--tiny", "--no-progress", "--out", out],
        "evaluate": ["evaluate", good, "--reference", good, "--train", "none", "--out", out.with_suffix(".json")],
        "train predictor": ["train", "predictor", "--steps", 1, "--no-progress", "--out", out.with_suffix(".ckpt")],
        "train diffusion": ["train", "diffusion", "--steps", 1, "--no-progress", "--out", out.with_suffix(".ckpt")],
        "train gram-vae": ["train", "gram-vae", "--steps", 1, "--no-progress", "--out", out.with_suffix(".ckpt")],
    }


COMMANDS = ["sample", "predict", "infill-environment", "infill-crystal", "interpolate", "assemble", "evaluate",
            "train predictor", "train diffusion", "train gram-vae"]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_under_a_file_is_refused_before_work(files, command):
    """Issue 22.2: `--out existing_file/y.extxyz` was a FileExistsError traceback after all the sampling."""
    out = files / "a_file" / "y.extxyz"
    assert_one_line_error(_invoke(*_output_cases(files, out)[command]), "cannot write", "a_file",
                          "is not a directory")


@pytest.mark.parametrize("command", COMMANDS)
def test_output_on_a_virtual_file_system_is_refused_before_work(files, command):
    """Issue 22.2: `--out /proc/y.extxyz` failed on the temporary file after the work was done."""
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc")
    out = Path("/proc/atomsmith_y.extxyz")
    assert_one_line_error(_invoke(*_output_cases(files, out)[command]), "cannot write", "/proc")


@pytest.mark.parametrize("command", ["sample", "interpolate", "assemble", "infill-environment"])
def test_output_naming_a_directory_is_refused(files, command):
    out = files / "a_dir.extxyz"  # a directory whose name has a file suffix (past the format checks)
    out.mkdir(exist_ok=True)
    assert_one_line_error(_invoke(*_output_cases(files, out)[command]), "a_dir.extxyz", "is a directory")


# ---------------------------------------------------------------------------------------------- check_output
def test_check_output_accepts_new_and_nested_outputs(tmp_path):
    check_output(tmp_path / "new.extxyz", force=False)
    check_output(tmp_path / "not" / "yet" / "there.extxyz", force=False)  # parents are created when writing
    check_output(tmp_path / "cifs", force=False, directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no probe left behind


def test_check_output_refusals(tmp_path):
    import typer

    (tmp_path / "old.extxyz").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.cif").write_text("x")
    (tmp_path / "file").write_text("x")
    cases = [(tmp_path / "old.extxyz", False, False, "exists; pass --force"),
             (tmp_path / "full", False, True, "not empty"),
             (tmp_path / "file", True, True, "is a file"),
             (tmp_path / "full", True, False, "is a directory"),
             (tmp_path / "file" / "deeper" / "x.cif", True, False, "is not a directory")]
    for out, force, directory, message in cases:
        with pytest.raises(typer.BadParameter, match=message):
            check_output(out, force, directory=directory)
    check_output(tmp_path / "old.extxyz", force=True)
    check_output(tmp_path / "full", force=True, directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full", "old.extxyz"]


@pytest.mark.skipif(sys.platform != "linux", reason="Linux virtual file systems")
def test_check_output_probes_the_file_system():
    import typer

    with pytest.raises(typer.BadParameter, match="no file can be created in /proc"):
        check_output(Path("/proc/y.extxyz"), force=False)
