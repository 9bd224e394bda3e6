"""CLI fuzzing: every command that reads files, given malformed ones, fails cleanly.

Clean failure: a non-zero exit code (2 = bad input / usage error, reported in one ``error: ...`` line on stderr;
1 = the command's own error report), a message on stderr that names the offending file, no Python traceback,
and no output file (nor a temporary one) left behind.

Bad inputs: an empty file, binary garbage, a truncated CIF, a CIF with the unknown element ``Xx``, overlapping
atoms, a structure under a name with an unknown extension, and damaged checkpoints (a flipped payload byte, a
truncated file, wrong magic bytes, a directory, a structure file given as the model, a missing file).
"""

from __future__ import annotations

import csv
import io as _io

import pytest
from typer.testing import CliRunner

from atomsmith import pretrained
from atomsmith.cli.main import app
from tests.helpers.structures import GOOD_CIF

runner = CliRunner()


#: Malformed structure files: name -> bytes.
BAD_STRUCTURES = {
    "empty.cif": b"",
    "garbage.cif": bytes(range(256)) * 8,
    "garbage.extxyz": bytes(range(255, -1, -1)) * 8,
    "truncated.cif": GOOD_CIF[:-30].encode(),
    "unknown_element.cif": GOOD_CIF.replace("  Ti  Ti1", "  Xx  Xx1").encode(),
    "overlapping.cif": GOOD_CIF.replace("O  O4  1  0.00000000  0.50000000  0.50000000",
                                       "O  O4  1  0.50000000  0.02000000  0.50000000").encode(),
    "structure.txt": GOOD_CIF.encode(),  # a good CIF under a name whose format cannot be told
    "POSCAR": b"",
}
#: Damaged checkpoints, made from a shipped one: name -> function of its bytes.
BAD_CHECKPOINTS = {
    "flipped.ckpt": lambda data: data[:-50] + bytes([data[-50] ^ 0x10]) + data[-49:],  # payload byte
    "truncated.ckpt": lambda data: data[: len(data) // 2],
    "magic.ckpt": lambda data: b"XTOMSMITH" + data[9:],
    "structure.cif": lambda data: GOOD_CIF.encode(),
}
CHECKPOINT_CASES = [*BAD_CHECKPOINTS, "directory.ckpt", "missing.ckpt"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    for name, data in BAD_STRUCTURES.items():
        (root / name).write_bytes(data)
    (root / "good.cif").write_text(GOOD_CIF)
    (root / "directory.ckpt").mkdir()
    return root


def _checkpoint(root, shipped: str, case: str):
    """A damaged copy of the shipped model ``shipped`` (or a directory / missing path)."""
    path = root / f"{shipped}-{case}"
    if case == "directory.ckpt":
        path.mkdir(exist_ok=True)
    elif case != "missing.ckpt":
        path.write_bytes(BAD_CHECKPOINTS[case](pretrained.path_of(shipped).read_bytes()))
    return path


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, name: str, out=None, codes=(1, 2)) -> str:
    """Non-zero documented exit code, the file named on stderr, no traceback, no output or temporary file."""
    stderr = result.stderr
    assert result.exit_code in codes, f"exit code {result.exit_code}: {result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + stderr
    if result.exit_code == 2:  # bad input: one `error: ...` line, the last (after any progress notes)
        lines = [line for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], f"not one error line: {stderr!r}"
    flat = " ".join(stderr.replace("│", " ").split())
    assert name in "".join(flat.split()), f"stderr does not name {name}: {flat}"  # rich may fold a long path
    if out is not None:
        assert not out.exists(), f"{out} was written"
        assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left behind"
    return flat


# ---------------------------------------------------------------------------------------------- predict
@pytest.mark.parametrize("name", ["garbage.cif", "truncated.cif", "unknown_element.cif", "structure.txt",
                                  "missing.cif"])  # predict loads the model first (~2 s a call): a subset
def test_predict_bad_structure(bad, name):
    result = _invoke("predict", bad / name, "--model", pretrained.path_of("perov-5-heat-ref"))
    assert_clean_failure(result, name)


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_predict_bad_checkpoint(bad, case):
    model = _checkpoint(bad, "perov-5-heat-ref", case)
    flat = assert_clean_failure(_invoke("predict", bad / "good.cif", "--model", model), model.name)
    if case == "flipped.ckpt":
        assert "checksum" in flat


# ---------------------------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("name, role", [*[(n, "samples") for n in BAD_STRUCTURES if n != "overlapping.cif"],
                                        ("garbage.cif", "reference"), ("truncated.cif", "reference")])
def test_evaluate_bad_file(bad, tmp_path, name, role):
    """Overlapping samples are legitimate for evaluate (counted as invalid), so that case is left out."""
    samples, reference = (bad / name, bad / "good.cif") if role == "samples" else (bad / "good.cif", bad / name)
    out = tmp_path / "metrics.json"
    result = _invoke("evaluate", samples, "--reference", reference, "--train", "none", "--no-uniqueness",
                     "--no-cache", "--workers", 1, "-q", "--dataset", "perov_5", "--out", out)
    assert_clean_failure(result, name, out, codes=(2,))
    if name != "missing.cif":  # (typer's own check of SAMPLES' existence prints a usage panel)
        assert len(result.stderr.strip().splitlines()) == 1, f"not one line: {result.stderr}"


# ---------------------------------------------------------------------------------------------- infill
@pytest.mark.parametrize("name", ["garbage.cif", "truncated.cif", "unknown_element.cif", "overlapping.cif",
                                  "structure.txt"])
def test_infill_crystal_bad_fixed_file(bad, tmp_path, name):
    out = tmp_path / "completed.extxyz"
    result = _invoke("infill", "--model", "perov-5", "--fixed", bad / name, "--n-free", 1, "-n", 1, "--steps", 1,
                     "--no-progress", "--out", out)
    assert_clean_failure(result, name, out)


@pytest.mark.parametrize("name", list(BAD_STRUCTURES))
def test_infill_environment_bad_file(bad, tmp_path, name):
    out = tmp_path / "completions.extxyz"
    assert_clean_failure(_invoke("infill", bad / name, "--out", out), name, out)


@pytest.mark.parametrize("shipped, case", [*[("gram-vae", c) for c in CHECKPOINT_CASES],
                                           ("perov-5", "flipped.ckpt"), ("perov-5", "magic.ckpt")])
def test_infill_bad_checkpoint(bad, tmp_path, shipped, case):
    """gram-vae: environment infilling; perov-5: crystal infilling (was a CorruptCheckpointError traceback)."""
    model = _checkpoint(bad, shipped, case)
    out = tmp_path / "completed.extxyz"
    args = ["--fixed", bad / "good.cif", "--n-free", 1, "--steps", 1] if shipped == "perov-5" else [bad / "good.cif"]
    assert_clean_failure(_invoke("infill", *args, "--model", model, "--no-progress", "--out", out), model.name, out)


# ---------------------------------------------------------------------------------------------- interpolate
@pytest.mark.parametrize("name", list(BAD_STRUCTURES))
def test_interpolate_bad_file(bad, tmp_path, name):
    out = tmp_path / "path.extxyz"
    first, second = (bad / name, bad / "good.cif") if name < "p" else (bad / "good.cif", bad / name)
    assert_clean_failure(_invoke("interpolate", first, second, "--out", out), name, out)


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_interpolate_bad_checkpoint(bad, tmp_path, case):
    model = _checkpoint(bad, "gram-vae", case)
    out = tmp_path / "path.extxyz"
    result = _invoke("interpolate", bad / "good.cif", bad / "good.cif", "--model", model, "--out", out)
    assert_clean_failure(result, model.name, out)


# ---------------------------------------------------------------------------------------------- sample
@pytest.mark.parametrize("case", ["flipped.ckpt", "magic.ckpt", "directory.ckpt", "missing.ckpt"])
def test_sample_bad_checkpoint(bad, tmp_path, case):
    """A damaged --model checkpoint was a CorruptCheckpointError traceback."""
    model = _checkpoint(bad, "perov-5", case)
    out = tmp_path / "s.extxyz"
    result = _invoke("sample", "-n", 1, "--steps", 1, "--no-progress", "--model", model, "--out", out)
    assert_clean_failure(result, model.name, out)


@pytest.mark.parametrize("case", ["flipped.ckpt", "magic.ckpt"])
def test_sample_bad_predictor_checkpoint(bad, tmp_path, case):
    """A damaged --predictor checkpoint (guidance) was a CorruptCheckpointError traceback."""
    predictor = _checkpoint(bad, "perov-5-heat-ref", case)
    out = tmp_path / "s.extxyz"
    result = _invoke("sample", "-n", 1, "--steps", 1, "--no-progress", "--target", "heat_ref=0.5", "--predictor",
                     predictor, "--out", out)
    assert_clean_failure(result, predictor.name, out)


# ---------------------------------------------------------------------------------------------- train
def _csv(rows) -> bytes:
    buffer = _io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


BAD_DATA = {
    "empty.csv": b"",
    "garbage.csv": bytes(range(256)) * 8,
    "damaged.csv.gz": b"\x1f\x8b not gzip",
    "unknown_element.csv": _csv([["material_id", "cif", "y"], ["a", GOOD_CIF.replace("  Ti  Ti1", "  Xx  Xx1"), 1]]),
    "truncated.csv": _csv([["material_id", "cif", "y"], ["a", GOOD_CIF, 1]])[:-300],
    "not_a_number.csv": _csv([["material_id", "cif", "y"], ["a", GOOD_CIF, "abc"]]),
    "huge_field.csv": b"material_id,cif,y\na," + b"x" * (17 * 1024 * 1024) + b",1\n",
}


@pytest.mark.parametrize("family", ["predictor", "diffusion"])
@pytest.mark.parametrize("name", list(BAD_DATA))
def test_train_bad_data(tmp_path, family, name):
    data = tmp_path / name
    data.write_bytes(BAD_DATA[name])
    if family == "diffusion" and name == "not_a_number.csv":
        pytest.skip("the y column is not read when training a diffusion model")
    out = tmp_path / "model.ckpt"
    target = ["--target", "y"] if family == "predictor" else []
    result = _invoke("train", family, "--data", data, *target, "--steps", 1, "--no-progress", "--out", out)
    assert_clean_failure(result, name, out)
    assert not out.with_suffix(".train.ckpt").exists()


def test_train_diffusion_on_too_little_data(tmp_path):
    data = tmp_path / "one_row.csv"
    data.write_bytes(_csv([["material_id", "cif"], ["a", GOOD_CIF]]))
    out = tmp_path / "model.ckpt"
    result = _invoke("train", "diffusion", "--data", data, "--steps", 1, "--no-progress", "--out", out)
    assert_clean_failure(result, "one_row.csv", out)
    assert "too few" in " ".join(result.output.replace("│", " ").split())
