"""The CSV reader (``datasets.csv_reader.read_csv``) on arbitrary and mutated input raises only typed errors.

Anything that is not a good CSV of CIFs must end in a :class:`~atomsmith.structures.errors.StructureError`
(``MalformedFileError``, ``MalformedRowError``, ...) or a :class:`~atomsmith.datasets.errors.DatasetError` that
names the file, never a bare ``UnicodeDecodeError``, ``csv.Error`` or ``gzip.BadGzipFile`` (all three escaped
before). Row-level messages and the skip mode are tested in ``test_datasets.py`` / the user-data tests.
"""

from __future__ import annotations

import csv
import gzip
import io as _io
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomsmith.datasets.csv_reader import CsvLayout, read_csv
from atomsmith.datasets.errors import DatasetError
from atomsmith.structures import errors
from tests.test_io_properties import _TOKENS, mutations

GOOD_CIF = """data_Si
_cell_length_a 5.43
_cell_length_b 5.43
_cell_length_c 5.43
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
loop_
_atom_site_type_symbol
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Si Si0 0.0 0.0 0.0 1
Si Si1 0.25 0.25 0.25 1
"""
LAYOUT = CsvLayout(property_columns={"energy": "energy"}, integer_properties=frozenset())
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _csv(rows) -> bytes:
    buffer = _io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


GOOD = _csv([["material_id", "cif", "energy"], ["a", GOOD_CIF, "-5.4"], ["b", GOOD_CIF, "-5.3"]])


def _read_or_typed_error(path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            packed = read_csv(path, LAYOUT, workers=1)
        except (errors.StructureError, DatasetError) as exc:
            assert path.name in str(exc), f"the message should name the file: {exc}"
            return
    assert len(packed) >= 1


def test_good_file_reads(tmp_path):
    path = tmp_path / "good.csv"
    path.write_bytes(GOOD)
    packed = read_csv(path, LAYOUT, workers=1)
    assert len(packed) == 2 and packed.properties["energy"].tolist() == [-5.4, -5.3]


@FUZZ
@given(payload=st.one_of(st.binary(max_size=500), mutations(GOOD),
                         st.lists(st.sampled_from(_TOKENS + [b",", b'"', b"\n", b"cif", b"material_id"]),
                                  max_size=40).map(b"".join)))
def test_arbitrary_and_mutated_csv_raise_only_typed_errors(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(payload)
    _read_or_typed_error(path)


@pytest.mark.parametrize("name, payload", [
    ("binary.csv", bytes(range(256)) * 4),  # was UnicodeDecodeError
    ("latin1.csv", GOOD.replace(b"-5.3", b"\xe9")),  # was UnicodeDecodeError
    ("huge_field.csv", b"material_id,cif,energy\na," + b"x" * (17 * 1024 * 1024) + b",1\n"),  # was csv.Error
    ("damaged.csv.gz", b"\x1f\x8b\x08\x00 not really gzip"),  # was gzip.BadGzipFile / zlib.error
    ("cut.csv.gz", gzip.compress(GOOD)[:-30]),  # was EOFError
])
def test_unreadable_files_are_malformed_file_errors(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(errors.MalformedFileError, match=name):
        read_csv(path, LAYOUT, workers=1)
