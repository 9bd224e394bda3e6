"""Small structure files shared by tests."""

#: A valid cubic BaTiO3 CIF (P1, a = 4 Å), as pymatgen writes it.
GOOD_CIF = """data_BaTiO3
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   4.00000000
_cell_length_b   4.00000000
_cell_length_c   4.00000000
_cell_angle_alpha   90.00000000
_cell_angle_beta   90.00000000
_cell_angle_gamma   90.00000000
_symmetry_Int_Tables_number   1
_chemical_formula_sum   'Ba1 Ti1 O3'
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Ba  Ba0  1  0.00000000  0.00000000  0.00000000  1
  Ti  Ti1  1  0.50000000  0.50000000  0.50000000  1
  O  O2  1  0.50000000  0.50000000  0.00000000  1
  O  O3  1  0.50000000  0.00000000  0.50000000  1
  O  O4  1  0.00000000  0.50000000  0.50000000  1
"""
