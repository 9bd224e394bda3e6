"""Property-based tests of the structure parsers (hypothesis).

* Round trips: random valid crystals (skewed cells, unwrapped coordinates, any element, numeric / string / array
  properties) survive write -> read through CIF, extxyz and POSCAR (and gzip).
* Robustness: arbitrary text and bytes, and mutations of valid files (truncation, deleted or inserted spans,
  flipped bytes, hostile tokens), fed to ``io.read`` / ``io.parse_cif`` raise only
  :class:`~atomsmith.structures.errors.StructureError` subclasses, never a bare IndexError / ValueError / KeyError.

The dataset-based round trips and the hand-written bad-file cases live in ``test_io_roundtrip.py``; the CSV reader
is fuzzed in ``test_csv_robustness.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from atomsmith.structures import errors, io
from atomsmith.structures.crystal import Crystal

ATOL = 1e-6  # Å
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ----------------------------------------------------------------------------------------- strategies
@st.composite
def lattices(draw) -> np.ndarray:
    """[3, 3] right-handed lattice rows (Å) from lengths 2.5..12 Å and angles 60..120 degrees, not too flat."""
    a, b, c = (draw(st.floats(2.5, 12.0)) for _ in range(3))
    alpha, beta, gamma = (np.radians(draw(st.floats(60.0, 120.0))) for _ in range(3))
    cx = np.cos(beta)
    cy = (np.cos(alpha) - np.cos(beta) * np.cos(gamma)) / np.sin(gamma)
    cz2 = 1.0 - cx ** 2 - cy ** 2
    assume(cz2 > 0.05)
    lattice = np.array([[a, 0, 0], [b * np.cos(gamma), b * np.sin(gamma), 0], [c * cx, c * cy, c * np.sqrt(cz2)]])
    rotation = np.linalg.qr(np.asarray(draw(st.lists(st.floats(-1, 1), min_size=9, max_size=9))).reshape(3, 3)
                            + 3 * np.eye(3))[0]
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] *= -1
    return lattice @ rotation.T


#: ase's extxyz reader treats these names specially (calculator results, renamed or reshaped); they must survive.
_ASE_NAMES = ["energy", "free_energy", "stress", "dipole", "charge", "magmom", "virial", "forces", "charges"]
_CALC_VALUES = {"energy": st.floats(-1e6, 1e6), "free_energy": st.floats(-1e6, 1e6),
                "stress": st.lists(st.floats(-10, 10), min_size=9, max_size=9).map(lambda v: np.reshape(v, (3, 3))),
                "dipole": st.lists(st.floats(-10, 10), min_size=3, max_size=3).map(np.array)}
_KEYS = st.one_of(st.sampled_from(_ASE_NAMES), st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)).filter(
    lambda k: k not in {"pbc", "lattice", "properties", "numbers", "positions", "species", "pos", "z", "tags",
                        "masses", "momenta", "initial_charges", "initial_magmoms", "uid", "spacegroup",
                        "unit_cell", "move_mask", "time", "comment"})
_VALUES = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-300),
    st.integers(-10 ** 6, 10 ** 6),
    st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=3, max_size=3).map(np.array),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=9, max_size=9).map(lambda v: np.reshape(v, (3, 3))),
)


@st.composite
def crystals(draw, with_properties: bool = False) -> Crystal:
    """A valid crystal: 1-8 atoms at least 0.8 Å apart (periodic images included), elements 1..100,
    fractional coordinates in [-1.5, 2.5) (not wrapped)."""
    lattice = draw(lattices())
    n = draw(st.integers(1, 8))
    frac = np.array(draw(st.lists(st.lists(st.floats(-1.5, 2.5, allow_nan=False), min_size=3, max_size=3),
                                  min_size=n, max_size=n)))
    numbers = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    crystal = Crystal(lattice, frac, numbers)
    assume(not crystal.close_pairs(0.8))
    if with_properties:
        props = draw(st.dictionaries(_KEYS, _VALUES, max_size=3))
        props = {k: v for k, v in props.items() if k not in io._EXTXYZ_CONFIG_SHAPES and k not in _ASE_NAMES}
        for key in draw(st.lists(st.sampled_from(sorted(_CALC_VALUES)), max_size=2, unique=True)):
            props[key] = draw(_CALC_VALUES[key])  # calculator names with the shapes ase expects
        site = {}
        if draw(st.booleans()):
            site[draw(st.sampled_from(["charge", "magmom", "q", "energies"]))] = np.array(draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n, max_size=n)))
        if draw(st.booleans()):
            site["born"] = np.array(draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=9 * n,
                                                  max_size=9 * n))).reshape(n, 3, 3)
        crystal = crystal.replace(properties=props, site_properties=site)
    return crystal


# ----------------------------------------------------------------------------------------- round trips
def _same_properties(a: Crystal, b: Crystal) -> None:
    assert set(a.properties) == set(b.properties)
    for key, value in a.properties.items():
        if isinstance(value, str):
            assert b.properties[key] == value, key
        else:
            np.testing.assert_allclose(np.asarray(b.properties[key], float), np.asarray(value, float), rtol=1e-12,
                                       err_msg=key)
    assert set(a.site_properties) == set(b.site_properties)
    for key, value in a.site_properties.items():
        # extxyz writes per-atom columns with 8 decimals
        np.testing.assert_allclose(b.site_properties[key], value, rtol=0, atol=5.1e-9, err_msg=key)


@SETTINGS
@given(crystal=crystals(with_properties=True), gz=st.booleans())
def test_extxyz_round_trip_keeps_lattice_coordinates_and_properties(tmp_path_factory, crystal, gz):
    path = tmp_path_factory.mktemp("x") / ("c.extxyz.gz" if gz else "c.extxyz")
    io.write(path, [crystal, crystal.supercell((1, 1, 2))])
    back = io.read(path)
    assert len(back) == 2
    assert crystal.allclose(back[0], atol=ATOL)
    np.testing.assert_allclose(back[0].lattice, crystal.lattice, rtol=0, atol=ATOL)
    _same_properties(crystal, back[0])


@SETTINGS
@given(crystal=crystals())
def test_poscar_round_trip_keeps_lattice_and_atom_order(tmp_path_factory, crystal):
    path = io.write(tmp_path_factory.mktemp("p") / "POSCAR", crystal)
    back = io.read_one(path)
    np.testing.assert_allclose(back.lattice, crystal.lattice, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(back.numbers, crystal.numbers)
    assert crystal.allclose(back, atol=ATOL)


@SETTINGS
@given(crystal=crystals(), n_blocks=st.integers(1, 3))
def test_cif_round_trip_keeps_metric_and_atom_order(tmp_path_factory, crystal, n_blocks):
    """CIF stores lattice parameters: the metric L L^T survives, the orientation may not."""
    path = io.write(tmp_path_factory.mktemp("c") / "c.cif", [crystal] * n_blocks)
    back = io.read(path)
    assert len(back) == n_blocks
    for other in back:
        np.testing.assert_array_equal(other.numbers, crystal.numbers)
        assert crystal.allclose(other, atol=ATOL, metric_only=True)
        assert other.volume == pytest.approx(crystal.volume, rel=1e-7)
    # parse_cif on the text gives the same answer as reading the file
    again = io.parse_cif(path.read_text(), "again")
    assert all(a.allclose(b, atol=1e-9) for a, b in zip(back, again))


# ----------------------------------------------------------------------------------------- robustness
_SEED = Crystal(np.array([[4.0, 0, 0], [0.3, 4.1, 0], [0.2, 0.1, 3.9]]),
                [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], [56, 22, 8, 8, 8],
                properties={"energy_per_atom": -1.5, "material_id": "mp-1"},
                site_properties={"charge": [2.0, 4.0, -2.0, -2.0, -2.0]})
_NAMES = {"cif": "s.cif", "extxyz": "s.extxyz", "poscar": "POSCAR"}
_TOKENS = [b" ", b"\n", b"-", b"1e999", b"-1e999", b"nan", b"inf", b"'", b'"', b"#", b"loop_\n", b"data_x\n",
           b"_atom_site_fract_x\n", b"_cell_length_a 0\n", b"?", b".", b"0", b"-1", b"Xx", b"X", b"=", b";",
           b"Lattice=", b"Properties=species:S:1", b":", b"\x00", b"\xff", b"\r", b"1000000000000"]


def _seed_bytes(fmt: str) -> bytes:
    if fmt == "cif":
        return io.to_cif(_SEED).encode()
    if fmt == "extxyz":
        return io.to_extxyz([_SEED]).encode()
    return io.to_poscar(_SEED).encode()


_SEEDS = {fmt: _seed_bytes(fmt) for fmt in _NAMES}


@st.composite
def mutations(draw, data: bytes) -> bytes:
    """``data`` after 1-5 random edits: flip a byte, delete a span, insert a hostile token, truncate,
    duplicate a span, or swap two lines."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 5))):
        if not out:
            out = bytearray(b"x")
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.integers(0, 5))
        if op == 0:
            out[i] = draw(st.integers(0, 255))
        elif op == 1:
            del out[i:i + draw(st.integers(1, 60))]
        elif op == 2:
            out[i:i] = draw(st.sampled_from(_TOKENS))
        elif op == 3:
            del out[i:]
        elif op == 4:
            j = draw(st.integers(0, len(out) - 1))
            out[i:i] = out[j:j + draw(st.integers(1, 80))]
        else:
            lines = bytes(out).split(b"\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def _read_or_typed_error(path, fmt=None) -> None:
    """Reading must give crystals or a StructureError; anything else is a parser bug."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = io.read(path, format=fmt)
        except errors.StructureError as exc:
            assert str(path) in str(exc), f"the message should name the file: {exc}"
            return
    assert result and all(isinstance(c, Crystal) and c.n_atoms > 0 for c in result)


@pytest.mark.parametrize("fmt", list(_NAMES))
@FUZZ
@given(data=st.data())
def test_mutated_files_raise_only_typed_errors(tmp_path_factory, fmt, data):
    payload = data.draw(mutations(_SEEDS[fmt]))
    path = tmp_path_factory.mktemp("m") / _NAMES[fmt]
    path.write_bytes(payload)
    _read_or_typed_error(path)


@pytest.mark.parametrize("fmt", list(_NAMES))
@FUZZ
@given(payload=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode),
                         st.lists(st.sampled_from(_TOKENS), max_size=40).map(b"".join)))
def test_arbitrary_bytes_raise_only_typed_errors(tmp_path_factory, fmt, payload):
    path = tmp_path_factory.mktemp("a") / _NAMES[fmt]
    path.write_bytes(payload)
    _read_or_typed_error(path)


@FUZZ
@given(text=st.one_of(st.text(max_size=300),
                      mutations(_SEEDS["cif"]).map(lambda b: b.decode("utf-8", errors="replace"))))
def test_parse_cif_raises_only_typed_errors(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = io.parse_cif(text, "fuzz")
        except errors.StructureError as exc:
            assert "fuzz" in str(exc)
            return
    assert result and all(c.n_atoms > 0 for c in result)


@pytest.mark.parametrize("name", ["s.cif.gz", "s.extxyz.gz", "POSCAR.gz"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=200))
def test_bad_gzip_raises_typed_error(tmp_path_factory, name, payload):
    path = tmp_path_factory.mktemp("g") / name
    path.write_bytes(b"\x1f\x8b" + payload)  # gzip magic, then garbage
    _read_or_typed_error(path)


@pytest.mark.parametrize("text, error", [
    ("", errors.MalformedFileError),
    ('1\nLattice="4 0 0 4 0 0 0 0 4" Properties=species:S:1:pos:R:3\nH 0 0 0\n', errors.SingularCellError),
    ('0\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\n', errors.MalformedFileError),
    ('-1\nLattice="4 0 0 0 4 0 0 0 4"\n', errors.MalformedFileError),
    ('1\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\nXx 0 0 0\n', errors.MalformedFileError),
])
def test_bad_extxyz_cases(tmp_path, text, error):
    """Found by the fuzzers above: a singular cell (was numpy's LinAlgError) and frames with no atoms (were read
    as empty crystals)."""
    path = tmp_path / "bad.extxyz"
    path.write_text(text)
    with pytest.raises(error, match="bad.extxyz"):
        io.read(path)


def test_poscar_without_element_line_is_refused(tmp_path):
    """pymatgen reads a VASP 4 POSCAR without species as H, He, ...; atomsmith refuses to guess."""
    path = tmp_path / "POSCAR"
    path.write_text("no species\n1.0\n4 0 0\n0 4 0\n0 0 4\n1\nDirect\n0 0 0\n")
    with pytest.raises(errors.MalformedFileError, match="no element symbols"):
        io.read(path)


def test_extxyz_keeps_calculator_named_fields(tmp_path):
    """ase's extxyz reader moves energy / stress / forces / charge / magmom / dipole into a calculator, renaming
    ``charge`` to ``charges``, dropping ``magmom`` and ``dipole`` and turning a 3x3 stress into Voigt form (all
    lost on the way back before the fix); atomsmith gives them back as written."""
    n = 2
    crystal = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [14, 14],
                      properties={"energy": -9.5, "free_energy": -9.6, "stress": np.arange(9.0).reshape(3, 3),
                                  "dipole": np.array([0.1, 0.2, 0.3]), "virial": np.eye(3)},
                      site_properties={"charge": [0.5, -0.5], "magmom": [1.0, 2.0], "forces": np.ones((n, 3)),
                                       "born_effective_charges": np.arange(18.0).reshape(n, 3, 3)})
    back = io.read_one(io.write(tmp_path / "calc.extxyz", crystal))
    _same_properties(crystal, back)


@pytest.mark.parametrize("properties, site_properties, match", [
    ({"stress": 0.0}, {}, "'stress'"),
    ({"stress": "high"}, {}, "'stress'"),
    ({"virial": np.ones(3)}, {}, "'virial'"),
    ({"dipole": "A"}, {}, "'dipole'"),
    ({}, {"forces": np.ones(2)}, "'forces'"),
    ({"magmom": 1.0}, {"magmom": [1.0, 1.0]}, "both a property and a site property"),
])
def test_extxyz_refuses_fields_it_cannot_give_back(tmp_path, properties, site_properties, match):
    """Found by the round-trip property test: these were written, then unreadable (ase ValueError) or silently
    changed; the writer now refuses them with a ShapeError and writes nothing."""
    crystal = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [14, 14], properties=properties,
                      site_properties=site_properties)
    with pytest.raises(errors.ShapeError, match=match):
        io.write(tmp_path / "bad.extxyz", crystal)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["d.cif", "d.extxyz", "POSCAR"])
def test_directory_is_a_malformed_file(tmp_path, name):
    """A directory under a structure-file name raised IsADirectoryError for CIF (typed only for the others)."""
    (tmp_path / name).mkdir()
    with pytest.raises(errors.MalformedFileError, match="is a directory"):
        io.read(tmp_path / name)
