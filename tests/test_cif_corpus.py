"""Real-world CIF files (tests/data/cifs, sources and licences in tests/data/README.md) and the reader's handling
of what such files hold (issue 22.3, 22.5, 22.7).

Each corpus file has a recorded outcome in ``outcomes.json``: read (with the number of structures and atoms) or the
typed error it raises. A change of outcome fails here, whichever way it goes, so that it is looked at. The cases
after it are small edits of a good CIF, each reproducing one of the issue's findings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomsmith.structures import errors, io
from tests.helpers.structures import GOOD_CIF

CORPUS = Path(__file__).parent / "data" / "cifs"
OUTCOMES = json.loads((CORPUS / "outcomes.json").read_text())


def outcome(path: Path) -> dict:
    """``{"read": [atoms per structure]}`` or ``{"error": class name}``."""
    try:
        crystals = io.read(path)
    except errors.StructureError as exc:
        return {"error": type(exc).__name__}
    return {"read": [c.n_atoms for c in crystals]}


def test_the_corpus_is_complete_and_attributed():
    files = sorted(p.name for p in CORPUS.glob("*.cif"))
    assert len(files) >= 36 and files == sorted(OUTCOMES)
    readme = (CORPUS.parent / "README.md").read_text()
    for prefix in ("ase_cod_", "pyxtal_JVASP-", "pyxtal_NaCl", "pyxtal_FAU"):
        assert prefix.rstrip("_-") in readme


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_corpus_file_outcome(name):
    assert outcome(CORPUS / name) == OUTCOMES[name]


def test_most_of_the_corpus_reads():
    assert sum("read" in o for o in OUTCOMES.values()) >= 0.8 * len(OUTCOMES)


# ---------------------------------------------------------------------------------------------- edits of a good CIF
def _cif(tmp_path, text: str, name: str = "edited.cif") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("symbol, element", [("O2-(H2O)", 8), ("O2-", 8), ("Ow", 8), ("Ti4+", 22), ("Ba2+", 56)])
def test_type_symbols_are_read_as_pymatgen_reads_them(tmp_path, symbol, element):
    """Issue 22.7: `O2-(H2O)`, which pymatgen maps to O, was an UnknownElementError."""
    text = GOOD_CIF.replace("  O  O2  1", f"  {symbol}  O2  1") if element == 8 else \
        GOOD_CIF.replace("  Ti  Ti1" if element == 22 else "  Ba  Ba0", f"  {symbol}  X1")
    [crystal] = io.read(_cif(tmp_path, text))
    assert element in crystal.numbers.tolist() and crystal.n_atoms == 5


def test_unknown_type_symbol_is_still_refused(tmp_path):
    with pytest.raises(errors.UnknownElementError, match="Xx"):
        io.read(_cif(tmp_path, GOOD_CIF.replace("  Ti  Ti1", "  Xx  Xx1")))


def test_cif_element_follows_pymatgen():
    assert [io.cif_element(s) for s in ("Fe3+", "O2-(H2O)", "Wat", "OH", "Si", "Q")] == ["Fe", "O", "O", None, "Si",
                                                                                        None]


@pytest.mark.parametrize("edit", [("_cell_angle_gamma   90.00000000", "_cell_angle_gamma   180.00000000"),
                                  ("_cell_length_c   4.00000000", "_cell_length_c   0.00000000")])
def test_flat_cell_is_a_singular_cell_error(tmp_path, edit):
    """Issue 22.5: a flat cell was `MalformedFileError: ... Singular matrix`."""
    with pytest.raises(errors.SingularCellError, match="linearly dependent") as caught:
        io.read(_cif(tmp_path, GOOD_CIF.replace(*edit)))
    assert "\n" not in str(caught.value)


def test_nan_cell_is_one_line(tmp_path):
    """Issue 22.3: a NaN cell dumped a 9-line numpy matrix."""
    with pytest.raises(errors.NonFiniteError, match="_cell_length_a") as caught:
        io.read(_cif(tmp_path, GOOD_CIF.replace("_cell_length_a   4.00000000", "_cell_length_a   nan")))
    assert "\n" not in str(caught.value)


def test_a_directory_is_named_as_such(tmp_path):
    """Issue 22.5: a directory was reported as 'cannot tell the format ... pass format='."""
    (tmp_path / "structures").mkdir()
    with pytest.raises(errors.MalformedFileError, match="is a directory") as caught:
        io.read(tmp_path / "structures")
    assert "format=" not in str(caught.value)


def test_unknown_suffix_message_has_no_python_advice(tmp_path):
    with pytest.raises(errors.MalformedFileError, match="cannot tell the format") as caught:
        io.read(_cif(tmp_path, GOOD_CIF, "structure.txt"))
    assert "format=" not in str(caught.value)
