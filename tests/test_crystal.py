"""The Crystal type: validation with typed errors, immutability, cell operations, property-based invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomsmith.structures import errors
from atomsmith.structures.crystal import Crystal

CUBIC = np.eye(3) * 4.0
BTO = dict(lattice=np.eye(3) * 4.0, frac_coords=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]],
           numbers=[56, 22, 8, 8, 8])


def test_basic_properties():
    c = Crystal(**BTO, properties={"heat_ref": 1.5})
    assert c.n_atoms == 5 and c.formula == "BaTiO3" and c.volume == pytest.approx(64.0)
    assert c.density == pytest.approx(233.19 * 1.66054 / 64.0, rel=1e-3)
    assert c.lattice_parameters == pytest.approx((4, 4, 4, 90, 90, 90))
    assert c.properties["heat_ref"] == 1.5


def test_immutable():
    c = Crystal(**BTO)
    with pytest.raises(ValueError):
        c.frac_coords[0, 0] = 0.3
    with pytest.raises(AttributeError):
        c.numbers = np.zeros(5)
    arr = np.array(BTO["frac_coords"], float)
    c2 = Crystal(BTO["lattice"], arr, BTO["numbers"])
    arr[0, 0] = 0.7  # the crystal holds its own copy
    assert c2.frac_coords[0, 0] == 0.0


@pytest.mark.parametrize("change,error,match", [
    (dict(frac_coords=[[0, 0, np.nan]] + BTO["frac_coords"][1:]), errors.NonFiniteError, r"atom\(s\) \[0\]"),
    (dict(lattice=np.diag([4.0, 4.0, np.inf])), errors.NonFiniteError, "lattice"),
    (dict(lattice=[[1, 0, 0], [2, 0, 0], [0, 0, 1]]), errors.SingularCellError, "singular"),
    (dict(lattice=np.diag([4.0, 4.0, -4.0])), errors.LeftHandedCellError, "left-handed"),
    (dict(numbers=[56, 22, 8, 8, 0]), errors.UnknownElementError, "atomic number"),
    (dict(numbers=[56, 22, 8, 8, 200]), errors.UnknownElementError, "200"),
    (dict(numbers=[56, 22, 8, 8]), errors.ShapeError, "coordinates"),
])
def test_validation_errors(change, error, match):
    with pytest.raises(error, match=match):
        Crystal(**{**BTO, **change})


def test_overlap_check_names_atoms_and_sees_images():
    c = Crystal(CUBIC, [[0, 0, 0], [0.999, 0, 0]], [14, 14])  # 0.004 Å apart through the boundary
    with pytest.raises(errors.OverlappingAtomsError, match=r"atoms 0 \(Si\) and 1 \(Si\) are 0.004 Å apart"):
        c.check_distances(0.5)
    assert Crystal(**BTO).check_distances(0.5).n_atoms == 5


def test_unknown_symbol():
    with pytest.raises(errors.UnknownElementError, match="Xx"):
        Crystal.from_symbols(CUBIC, [[0, 0, 0]], ["Xx"])


def test_partial_occupancy_from_pymatgen():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(4), [{"Ba": 0.5, "Sr": 0.5}, "Ti"], [[0, 0, 0], [.5, .5, .5]])
    with pytest.raises(errors.PartialOccupancyError, match="partial or mixed occupancy"):
        Crystal.from_pymatgen(s)


def test_right_handed_flip_keeps_cartesian_structure():
    lattice = np.diag([4.0, 5.0, -6.0])
    frac = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    c = Crystal.right_handed(lattice, frac, [8, 8])
    np.testing.assert_allclose(c.positions, frac @ lattice)
    assert c.volume > 0


def test_supercell_transform_and_wrap():
    c = Crystal(**BTO, site_properties={"charge": [2, 4, -2, -2, -2]})
    s = c.supercell((2, 1, 3))
    assert s.n_atoms == 30 and s.volume == pytest.approx(6 * c.volume)
    assert s.site_properties["charge"].shape == (30,)
    m = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    t = c.transformed_cell(m)
    assert t.volume == pytest.approx(c.volume)
    dfrac = np.linalg.solve(c.lattice.T, (t.positions - c.positions).T).T
    np.testing.assert_allclose(dfrac, np.round(dfrac), atol=1e-9)
    with pytest.raises(ValueError, match="determinant"):
        c.transformed_cell(np.diag([2, 1, 1]))
    w = Crystal(CUBIC, [[1.25, -0.5, -1e-17]], [8]).wrapped()
    assert np.all((w.frac_coords >= 0) & (w.frac_coords < 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=6),
       st.floats(2.0, 10.0), st.integers(1, 118))
def test_property_based_roundtrips(coords, a, z):
    """Any finite coordinates and element: pymatgen and ase round trips are exact, wrapping keeps positions mod L."""
    lattice = np.array([[a, 0, 0], [0.3, a, 0], [0.1, 0.2, a]])
    c = Crystal(lattice, np.array(coords), [z] * len(coords))
    assert c.allclose(Crystal.from_pymatgen(c.to_pymatgen()), atol=1e-9)
    assert c.allclose(Crystal.from_ase(c.to_ase()), atol=1e-9)
    assert c.allclose(c.wrapped(), atol=1e-9)
