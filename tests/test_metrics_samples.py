"""Loading samples never rejects a structure for its geometry; bad files still raise typed errors."""

import ase
import ase.io
import numpy as np
import pytest

from atomsmith.metrics.samples import BrokenSample, load_samples
from atomsmith.structures import errors, io
from atomsmith.structures.crystal import Crystal

PEROVSKITE_FRAC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]

P1_CIF = """data_{name}
_cell_length_a {a}
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma {gamma}
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
 Ba Ba0 0 0 0 1
 Ti Ti1 0 0 0 1
 O O2 0.5 0.5 0.5 1
"""


def perovskite(a=4.0):
    return Crystal.from_symbols(np.eye(3) * a, PEROVSKITE_FRAC, ["Ba", "Ti", "O", "O", "O"])


def test_multiblock_cif_keeps_coincident_atoms_and_impossible_cells(tmp_path):
    path = tmp_path / "samples.cif"
    good = io.to_cif(perovskite())
    path.write_text(good + "\n" + P1_CIF.format(name="x", a=4.0, gamma=90)
                    + P1_CIF.format(name="y", a=4.0, gamma=0))
    samples = load_samples(path)
    assert len(samples) == 3
    assert isinstance(samples[0], Crystal) and samples[0].allclose(perovskite(), metric_only=True)
    assert isinstance(samples[1], Crystal) and samples[1].n_atoms == 3  # Ba and Ti on top of each other
    assert isinstance(samples[2], BrokenSample) and samples[2].numbers.tolist() == [56, 22, 8]
    assert "block 2" in samples[2].source


def test_extxyz_with_overlaps_and_singular_cells(tmp_path):
    path = tmp_path / "samples.extxyz"
    frames = [perovskite().to_ase(),
              ase.Atoms("NaCl", positions=[[0, 0, 0], [0.1, 0, 0]], cell=np.eye(3) * 4, pbc=True),
              ase.Atoms("NaCl", positions=[[0, 0, 0], [1, 0, 0]], cell=np.diag([4.0, 4.0, 0.0]), pbc=True)]
    ase.io.write(path, frames, format="extxyz")
    samples = load_samples(path)
    assert [type(s).__name__ for s in samples] == ["Crystal", "Crystal", "BrokenSample"]
    assert samples[2].numbers.tolist() == [11, 17]


def test_directory_of_mixed_files(tmp_path):
    io.write(tmp_path / "a.cif", perovskite())
    io.write(tmp_path / "POSCAR_b", perovskite(4.2), format="poscar")
    io.write(tmp_path / "c.extxyz", [perovskite(3.9), perovskite(4.1)])
    (tmp_path / "notes.txt").write_text("ignored")
    samples = load_samples(tmp_path)
    assert len(samples) == 4 and all(isinstance(s, Crystal) for s in samples)
    # Sorted by name: POSCAR_b, a.cif, c.extxyz (two frames).
    assert [round(s.volume ** (1 / 3), 3) for s in samples] == [4.2, 4.0, 3.9, 4.1]


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "missing.cif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.MalformedFileError, match="no structure files"):
        load_samples(tmp_path / "empty")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 4\n")
    with pytest.raises(errors.MalformedFileError, match="lacks"):
        load_samples(bad)
    junk = tmp_path / "junk.cif"
    junk.write_text("this is not a cif")
    with pytest.raises(errors.MalformedFileError):
        load_samples(junk)
