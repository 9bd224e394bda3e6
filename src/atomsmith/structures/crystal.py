"""The one structure type that crosses every boundary in atomsmith.

A :class:`Crystal` is a 3D-periodic cell: lattice rows in Å, fractional coordinates, atomic numbers, and optional
per-structure (``properties``) and per-atom (``site_properties``) data. It is immutable: arrays are copied on
construction and made read-only, and every "modifying" method returns a new object.

Construction validates what is cheap and always wrong (shapes, NaN/inf, singular or left-handed cells, unknown
elements). The O(n^2) overlap check is separate (:meth:`Crystal.check_distances`) because generators legitimately
produce overlapping samples that metrics must still be able to count as invalid; file readers call it by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from atomsmith.core.pairs import edge_vectors, periodic_pairs
from atomsmith.structures import errors

MAX_Z = 118
#: Default minimum interatomic distance (Å) below which atoms count as overlapping.
DEFAULT_MIN_DISTANCE = 0.5
#: |det(lattice)| below this (Å^3) counts as a singular cell.
MIN_VOLUME = 1e-6


def _frozen(array: Any, dtype: Any) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _numeric(value: Any, name: str, error: type[errors.StructureError]) -> np.ndarray:
    """``value`` as a real numeric array (bool, int or float); ``error`` for strings, ragged nesting, objects and
    integers beyond int64 (the first two used to escape as numpy's ValueError / TypeError)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise error(f"{name} is not a regular numeric array: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise error(f"{name} must be numeric, got an array of dtype {array.dtype}: {value!r:.200}")
    return array


def _freeze_mapping(mapping: Mapping[str, Any] | None, n_atoms: int | None) -> Mapping[str, Any]:
    frozen: dict[str, Any] = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, (str, bytes)):
            frozen[key] = value
            continue
        try:
            array = np.array(value, copy=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise errors.ShapeError(f"property {key!r} is not a regular array: {exc}") from None
        if array.dtype == object:
            raise errors.ShapeError(f"property {key!r} is not numeric or string: {value!r}")
        if n_atoms is not None and (array.ndim == 0 or array.shape[0] != n_atoms):
            raise errors.ShapeError(
                f"site property {key!r} has shape {array.shape}; its first axis must be the {n_atoms} atoms")
        array.setflags(write=False)
        frozen[key] = array if array.ndim else array.item()
    return MappingProxyType(frozen)


@dataclasses.dataclass(frozen=True, eq=False)
class Crystal:
    """An immutable periodic crystal.

    Attributes:
      lattice: ``[3, 3]`` float64, lattice vectors a, b, c as rows, Å. Right-handed (det > 0).
      frac_coords: ``[n_atoms, 3]`` float64 fractional coordinates (not necessarily wrapped into [0, 1)).
      numbers: ``[n_atoms]`` int64 atomic numbers (1..118).
      properties: per-structure properties, name -> float or array (e.g. ``heat_ref`` in eV, a 3x3 tensor).
      site_properties: per-atom properties, name -> ``[n_atoms, ...]`` array (e.g. Born charges ``[n, 3, 3]``).
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray
    properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    site_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        lattice = _numeric(self.lattice, "lattice", errors.ShapeError)
        frac = _numeric(self.frac_coords, "frac_coords", errors.ShapeError)
        numbers = _numeric(self.numbers, "numbers", errors.UnknownElementError)
        if lattice.shape != (3, 3):
            raise errors.ShapeError(f"lattice must have shape (3, 3), got {lattice.shape}")
        if frac.ndim != 2 or frac.shape[1] != 3:
            raise errors.ShapeError(f"frac_coords must have shape (n_atoms, 3), got {frac.shape}")
        if numbers.shape != (frac.shape[0],):
            raise errors.ShapeError(
                f"numbers has shape {numbers.shape} but there are {frac.shape[0]} coordinates")
        if not np.issubdtype(numbers.dtype, np.integer):
            if numbers.size and not np.all(np.equal(np.mod(numbers, 1), 0)):
                raise errors.UnknownElementError(f"atomic numbers must be integers, got {numbers}")
            bad = np.flatnonzero((numbers < 1) | (numbers > MAX_Z))
            if bad.size:  # checked here too: a huge float would overflow the int64 conversion below
                raise errors.UnknownElementError(
                    f"unknown element(s) with atomic number {sorted(set(numbers[bad].tolist()))} at atom(s) "
                    f"{bad.tolist()[:10]}; atomic numbers must be 1..{MAX_Z}")
        object.__setattr__(self, "lattice", _frozen(lattice, np.float64))
        object.__setattr__(self, "frac_coords", _frozen(frac, np.float64))
        object.__setattr__(self, "numbers", _frozen(numbers, np.int64))
        object.__setattr__(self, "properties", _freeze_mapping(self.properties, None))
        object.__setattr__(self, "site_properties", _freeze_mapping(self.site_properties, len(self.numbers)))
        self._check_cheap()

    # ------------------------------------------------------------------ validation
    def _check_cheap(self) -> None:
        if not np.all(np.isfinite(self.lattice)):
            raise errors.NonFiniteError(f"lattice contains non-finite values: {self.lattice.tolist()}")
        bad = np.flatnonzero(~np.all(np.isfinite(self.frac_coords), axis=1))
        if bad.size:
            raise errors.NonFiniteError(
                f"coordinates of atom(s) {bad.tolist()} are not finite: {self.frac_coords[bad].tolist()}")
        det = float(np.linalg.det(self.lattice))
        if abs(det) < MIN_VOLUME:
            raise errors.SingularCellError(
                f"lattice is singular (volume {det:.3g} Å^3); rows must be three independent vectors")
        if det < 0:
            raise errors.LeftHandedCellError(
                f"lattice rows form a left-handed set (det = {det:.4g} Å^3); use Crystal.from_cartesian or "
                "Crystal.right_handed to flip one axis")
        bad = np.flatnonzero((self.numbers < 1) | (self.numbers > MAX_Z))
        if bad.size:
            raise errors.UnknownElementError(
                f"unknown element(s) with atomic number {sorted(set(self.numbers[bad].tolist()))} "
                f"at atom(s) {bad.tolist()[:10]}; atomic numbers must be 1..{MAX_Z}")

    def check_distances(self, min_distance: float = DEFAULT_MIN_DISTANCE) -> Crystal:
        """Raise :class:`OverlappingAtomsError` if two atoms (any periodic images) are closer than ``min_distance`` Å.

        Returns ``self`` so that it can be chained.
        """
        pairs = self.close_pairs(min_distance)
        if pairs:
            i, j, d = pairs[0]
            more = f" (and {len(pairs) - 1} more pairs)" if len(pairs) > 1 else ""
            raise errors.OverlappingAtomsError(
                f"atoms {i} ({self.symbols[i]}) and {j} ({self.symbols[j]}) are {d:.3f} Å apart, closer than "
                f"the minimum {min_distance} Å{more}")
        return self

    def close_pairs(self, min_distance: float) -> list[tuple[int, int, float]]:
        """All pairs ``(i, j, distance)`` with i <= j closer than ``min_distance`` Å, over periodic images."""
        senders, receivers, shifts = periodic_pairs(self.lattice, self.positions, min_distance)
        distances = np.linalg.norm(edge_vectors(self.positions, self.lattice, senders, receivers, shifts), axis=-1)
        out = {}
        for s, r, d in zip(senders, receivers, distances):
            key = (int(min(s, r)), int(max(s, r)))
            out[key] = min(out.get(key, np.inf), float(d))
        return sorted(((i, j, d) for (i, j), d in out.items()), key=lambda t: t[2])

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_cartesian(cls, lattice: Any, positions: Any, numbers: Any, **kwargs: Any) -> Crystal:
        """Build from Cartesian ``positions`` [n, 3] Å; a left-handed ``lattice`` is flipped to right-handed."""
        lattice = np.asarray(lattice, np.float64)
        frac = np.linalg.solve(lattice.T, np.asarray(positions, np.float64).T).T
        return cls.right_handed(lattice, frac, numbers, **kwargs)

    @classmethod
    def right_handed(cls, lattice: Any, frac_coords: Any, numbers: Any, **kwargs: Any) -> Crystal:
        """Like the constructor but negates the third lattice vector (and fractional coordinate) if det < 0.

        The Cartesian structure is unchanged: ``frac @ lattice`` is the same before and after.
        """
        lattice = np.array(lattice, np.float64)
        frac = np.array(frac_coords, np.float64)
        if np.linalg.det(lattice) < 0:
            lattice[2] *= -1
            frac[:, 2] *= -1
        return cls(lattice, frac, numbers, **kwargs)

    @classmethod
    def from_symbols(cls, lattice: Any, frac_coords: Any, symbols: list[str], **kwargs: Any) -> Crystal:
        """Build from element symbols such as ``["Ba", "Ti", "O", "O", "O"]``."""
        return cls(lattice, frac_coords, symbols_to_numbers(symbols), **kwargs)

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    def __len__(self) -> int:
        return self.n_atoms

    @property
    def positions(self) -> np.ndarray:
        """Cartesian positions ``[n_atoms, 3]`` in Å."""
        return self.frac_coords @ self.lattice

    @property
    def volume(self) -> float:
        """Cell volume in Å^3."""
        return float(np.linalg.det(self.lattice))

    @property
    def density(self) -> float:
        """Mass density in g/cm^3."""
        from ase.data import atomic_masses

        mass_amu = float(np.sum(atomic_masses[self.numbers]))
        return mass_amu * 1.66053906660 / self.volume

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers]

    @property
    def formula(self) -> str:
        """Reduced-order formula like ``BaTiO3`` (elements in order of first appearance)."""
        counts: dict[str, int] = {}
        for s in self.symbols:
            counts[s] = counts.get(s, 0) + 1
        return "".join(f"{s}{c if c > 1 else ''}" for s, c in counts.items())

    @property
    def lattice_parameters(self) -> tuple[float, float, float, float, float, float]:
        """(a, b, c) in Å and (alpha, beta, gamma) in degrees."""
        a, b, c = np.linalg.norm(self.lattice, axis=1)
        la, lb, lc = self.lattice

        def angle(u: np.ndarray, v: np.ndarray) -> float:
            cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

        return float(a), float(b), float(c), angle(lb, lc), angle(la, lc), angle(la, lb)

    # ------------------------------------------------------------------ functional updates
    def replace(self, **changes: Any) -> Crystal:
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def wrapped(self) -> Crystal:
        """Fractional coordinates wrapped into [0, 1)."""
        frac = self.frac_coords % 1.0
        frac[frac >= 1.0] = 0.0  # -1e-17 % 1 == 1.0 in floating point
        return self.replace(frac_coords=frac)

    def with_properties(self, **props: Any) -> Crystal:
        return self.replace(properties={**self.properties, **props})

    def supercell(self, reps: tuple[int, int, int] | int) -> Crystal:
        """A ``reps[0] x reps[1] x reps[2]`` supercell; site properties are tiled, properties kept."""
        reps_arr = np.broadcast_to(np.asarray(reps, np.int64), (3,))
        shifts = np.stack(np.meshgrid(*[np.arange(r) for r in reps_arr], indexing="ij"), -1).reshape(-1, 3)
        frac = (self.frac_coords[None, :, :] + shifts[:, None, :]).reshape(-1, 3) / reps_arr
        site = {k: np.concatenate([v] * len(shifts)) for k, v in self.site_properties.items()}
        return Crystal(self.lattice * reps_arr[:, None], frac, np.tile(self.numbers, len(shifts)),
                       dict(self.properties), site)

    def transformed_cell(self, matrix: Any) -> Crystal:
        """The same crystal described by the cell ``matrix @ lattice`` (``matrix`` integer, det = +1).

        Atoms are mapped into the new cell; the set of Cartesian positions modulo the lattice is unchanged.
        """
        m = np.asarray(matrix)
        if m.shape != (3, 3) or not np.allclose(m, np.round(m)) or round(np.linalg.det(m)) != 1:
            raise ValueError(f"need an integer 3x3 matrix with determinant +1, got\n{m}")
        lattice = m @ self.lattice
        frac = np.linalg.solve(lattice.T, self.positions.T).T
        return self.replace(lattice=lattice, frac_coords=frac)

    def permuted(self, order: Any) -> Crystal:
        order = np.asarray(order)
        return self.replace(frac_coords=self.frac_coords[order], numbers=self.numbers[order],
                            site_properties={k: v[order] for k, v in self.site_properties.items()})

    def rotated(self, rotation: Any) -> Crystal:
        """Rotate the whole crystal (lattice rows) by the orthogonal matrix ``rotation`` (positions -> R x).

        Improper rotations (det -1) would make the cell left-handed; they are handled by flipping one axis,
        which leaves the Cartesian structure as the mirror image. Tensor properties are NOT rotated.
        """
        r = np.asarray(rotation, np.float64)
        return Crystal.right_handed(self.lattice @ r.T, self.frac_coords, self.numbers,
                                    properties=dict(self.properties), site_properties=dict(self.site_properties))

    # ------------------------------------------------------------------ comparisons and conversion
    def allclose(self, other: Crystal, atol: float = 1e-6, metric_only: bool = False) -> bool:
        """True if lattices and Cartesian positions agree to ``atol`` Å, atom by atom, modulo the lattice.

        ``metric_only`` compares the metric ``L L^T`` instead of ``L`` (for formats such as CIF that store lattice
        parameters and so lose the cell's orientation).
        """
        if self.n_atoms != other.n_atoms or not np.array_equal(self.numbers, other.numbers):
            return False
        if metric_only:
            g1, g2 = self.lattice @ self.lattice.T, other.lattice @ other.lattice.T
            scale = max(1.0, float(np.max(np.abs(self.lattice))))
            if not np.allclose(g1, g2, atol=2 * atol * scale):
                return False
        elif not np.allclose(self.lattice, other.lattice, atol=atol):
            return False
        dfrac = self.frac_coords - other.frac_coords
        dfrac -= np.round(dfrac)
        return bool(np.all(np.linalg.norm(dfrac @ self.lattice, axis=1) <= atol))

    def to_pymatgen(self):  # -> pymatgen.core.Structure
        from atomsmith.structures.convert import to_pymatgen

        return to_pymatgen(self)

    def to_ase(self):  # -> ase.Atoms
        from atomsmith.structures.convert import to_ase

        return to_ase(self)

    @classmethod
    def from_pymatgen(cls, structure: Any) -> Crystal:
        from atomsmith.structures.convert import from_pymatgen

        return from_pymatgen(structure)

    @classmethod
    def from_ase(cls, atoms: Any) -> Crystal:
        from atomsmith.structures.convert import from_ase

        return from_ase(atoms)

    def __repr__(self) -> str:
        a, b, c, al, be, ga = self.lattice_parameters
        return (f"Crystal({self.formula}, n_atoms={self.n_atoms}, a={a:.3f} b={b:.3f} c={c:.3f} Å, "
                f"α={al:.1f} β={be:.1f} γ={ga:.1f}°, properties={sorted(self.properties)})")


def symbols_to_numbers(symbols: list[str]) -> np.ndarray:
    """Element symbols -> atomic numbers, raising :class:`UnknownElementError` naming the bad symbols."""
    from ase.data import atomic_numbers

    bad = [s for s in symbols if s not in atomic_numbers or atomic_numbers[s] == 0]
    if bad:
        raise errors.UnknownElementError(f"unknown element symbol(s) {sorted(set(bad))}")
    return np.array([atomic_numbers[s] for s in symbols], np.int64)
