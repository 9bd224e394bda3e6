"""Constructing a :class:`Crystal` from arbitrary input gives a valid crystal or a typed ``StructureError``.

``test_crystal.py`` checks each validation rule and the round trips of valid crystals; here hypothesis throws
anything at the constructor (wrong shapes, strings, ragged nesting, NaN/inf, huge numbers, objects as properties).
Before the fix, strings, ragged lists and integers beyond int64 escaped as numpy's ValueError / TypeError /
OverflowError.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atomsmith.structures import errors
from atomsmith.structures.crystal import MAX_Z, Crystal

_SCALARS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2 ** 70, 2 ** 70),
                     st.sampled_from(["Si", "", "1.0", None, True]))
_NESTED = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=16)
_LATTICES = st.one_of(_NESTED, st.lists(st.floats(-20, 20), min_size=9, max_size=9).map(lambda v: np.reshape(v, (3, 3))))
_COORDS = st.one_of(_NESTED, st.integers(0, 4).flatmap(
    lambda n: st.lists(st.one_of(st.floats(-3, 3), st.just(np.nan)), min_size=3 * n, max_size=3 * n).map(
        lambda v: np.reshape(v, (-1, 3)))))


@settings(max_examples=150, deadline=None)
@given(lattice=_LATTICES, frac=_COORDS, numbers=_NESTED,
       properties=st.dictionaries(st.text(max_size=3), _NESTED, max_size=2))
def test_constructor_raises_only_structure_errors(lattice, frac, numbers, properties):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            crystal = Crystal(lattice, frac, numbers, properties=properties)
        except errors.StructureError:
            return
    assert crystal.lattice.shape == (3, 3) and np.linalg.det(crystal.lattice) > 0
    assert np.all(np.isfinite(crystal.frac_coords)) and crystal.frac_coords.shape == (crystal.n_atoms, 3)
    assert np.all((crystal.numbers >= 1) & (crystal.numbers <= MAX_Z))


def test_examples_found_by_the_fuzzer():
    cell = np.eye(3) * 4.0
    cases = [((cell, [[0, 0, 0]], ["Si"]), errors.UnknownElementError),
             (([["a", "b", "c"]] * 3, [[0, 0, 0]], [14]), errors.ShapeError),
             ((cell, [[0, 0, 0], [0, 0]], [14, 14]), errors.ShapeError),
             ((cell, [[0, 0, 0]], [2 ** 70]), errors.UnknownElementError),
             ((cell, [[0, 0, 0]], [1e300]), errors.UnknownElementError)]
    for args, error in cases:
        try:
            Crystal(*args)
        except errors.StructureError as exc:
            assert type(exc) is error, (args, exc)
        else:
            raise AssertionError(f"{args} was accepted")
    try:
        Crystal(cell, [[0, 0, 0]], [14], properties={"a": [[1, 2], [3]]})
    except errors.ShapeError:
        pass
    else:
        raise AssertionError("a ragged property was accepted")
