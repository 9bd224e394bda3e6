"""Which atom of one crystal becomes which atom of the other along an interpolation path.

A crystal latent (:mod:`.inversion`) has one slot per atom, and its coordinates are fractional, i.e. relative to a
choice of cell axes, with the origin anywhere (the model is translation invariant on the torus). Interpolating
slot ``i`` of ``a`` towards slot ``i`` of ``b`` is only meaningful when slot ``i`` of ``b`` is the partner of atom
``i`` of ``a``: without matching, two O atoms of a perovskite may swap places through the cell along the path. So
before encoding, ``b`` is re-described (the same structure, nothing moves physically) to line up with ``a``:

1. **Axes**: ``b``'s cell vectors are relabelled by each of the 24 proper signed permutations ``P`` (``det P = +1``,
   so the cell stays right-handed): lattice ``P L_b``, fractional coordinates ``F_b P^T``.
2. **Origin**: a fractional translation ``c`` of ``b``; candidates put an atom of ``b`` on an anchor atom of ``a``
   (an atom of ``a``'s rarest species, against every atom of ``b`` of that species), then ``c`` is refined by the
   mean wrapped residual of the matched pairs.
3. **Atoms**: a Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the squared torus distance
   ``d_ij^2 = w_ij G w_ij^T``, ``w_ij = F_a,i - F_b,j - c`` wrapped to ``[-1/2, 1/2)``, in the mean metric
   ``G = (L_a L_a^T + L_b L_b^T) / 2`` (Å^2, rotation invariant), plus a penalty larger than any geometric saving
   for pairing atoms of different species. Crystals of the same composition are therefore matched species to
   species; for different compositions (same atom count) as many atoms as possible keep their species and the rest
   are paired by geometry.

The candidate with the smallest cost wins: the squared difference of the lattice parameters (log lengths,
angles in radians) plus the mean squared matched distance divided by ``(V / n)^(2/3)`` (both dimensionless, as in
pymatgen's normalised RMS). Ties keep the earlier candidate, and the identity relabelling comes first, so a
crystal matched against itself is left exactly as it is.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures.crystal import Crystal


def wrap(d: np.ndarray) -> np.ndarray:
    """Shortest signed fractional difference, in ``[-1/2, 1/2)``."""
    return (np.asarray(d, np.float64) + 0.5) % 1.0 - 0.5


def proper_axis_relabellings() -> list[np.ndarray]:
    """The 24 signed permutation matrices with determinant +1 (identity first)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if round(np.linalg.det(m)) == 1:
                out.append(m)
    return out


def _lattice_parameters(lattice: np.ndarray) -> np.ndarray:
    """``[6]``: log lengths and angles (radians)."""
    lengths = np.linalg.norm(lattice, axis=1)
    a, b, c = lattice

    def angle(u, v, nu, nv):
        return np.arccos(np.clip(u @ v / (nu * nv), -1.0, 1.0))

    return np.array([*np.log(lengths), angle(b, c, lengths[1], lengths[2]), angle(a, c, lengths[0], lengths[2]),
                     angle(a, b, lengths[0], lengths[1])])


@dataclasses.dataclass(frozen=True)
class Correspondence:
    """How ``b`` is re-described to line up with ``a`` (module docstring).

    Attributes:
      order: ``[A]`` atom ``order[i]`` of ``b`` is the partner of atom ``i`` of ``a``.
      axes: ``[3, 3]`` the relabelling ``P`` of ``b``'s cell vectors (signed permutation, det +1).
      shift: ``[3]`` fractional translation added to ``b``'s (relabelled) coordinates.
      rms: root mean squared matched distance (Å, mean metric).
      cost: the total cost that chose this candidate (dimensionless).
      species_changed: number of pairs whose species differ (0 for the same composition).
    """

    order: np.ndarray
    axes: np.ndarray
    shift: np.ndarray
    rms: float
    cost: float
    species_changed: int

    def apply(self, b: Crystal) -> Crystal:
        """``b`` re-described: relabelled axes, shifted origin, atoms in the order of their partners in ``a``
        (coordinates wrapped into ``[0, 1)``; properties kept, site properties reordered)."""
        lattice = self.axes @ np.asarray(b.lattice, np.float64)
        frac = (np.asarray(b.frac_coords, np.float64) @ self.axes.T + self.shift)[self.order] % 1.0
        frac[frac >= 1.0] = 0.0
        sites = {k: np.asarray(v)[self.order] for k, v in b.site_properties.items()}
        return Crystal(lattice, frac, np.asarray(b.numbers)[self.order], properties=dict(b.properties),
                       site_properties=sites)


def _assign(fa, fb, za, zb, metric, shift):
    """Hungarian assignment for one origin: ``(order [A], sum of squared distances Å^2, mismatches)``."""
    from scipy.optimize import linear_sum_assignment

    w = wrap(fa[:, None, :] - fb[None, :, :] - shift)
    d2 = np.einsum("ijk,kl,ijl->ij", w, metric, w)
    mismatch = za[:, None] != zb[None, :]
    penalty = len(fa) * float(d2.max()) + 1.0
    rows, cols = linear_sum_assignment(d2 + penalty * mismatch)
    order = cols[np.argsort(rows)]
    idx = np.arange(len(fa))
    return order, float(d2[idx, order].sum()), int(mismatch[idx, order].sum())


def match_atoms(a: Crystal, b: Crystal, relabel_axes: bool = True) -> Correspondence:
    """The re-description of ``b`` that lines its atoms up with ``a``'s (module docstring).

    Raises:
      InvalidRequestError: the crystals have different numbers of atoms (atom slots are matched one to one).
    """
    if a.n_atoms != b.n_atoms:
        raise InvalidRequestError(f"the two crystals have {a.n_atoms} and {b.n_atoms} atoms; crystal interpolation "
                                  "needs the same number of atoms (atom slots are matched one to one)")
    n = a.n_atoms
    fa = np.asarray(a.frac_coords, np.float64) % 1.0
    za, zb = np.asarray(a.numbers), np.asarray(b.numbers)
    la = np.asarray(a.lattice, np.float64)
    pa = _lattice_parameters(la)
    scale = (abs(np.linalg.det(la)) / n) ** (2.0 / 3.0)
    common = [z for z in np.unique(za) if np.any(zb == z)]
    if common:
        counts = {int(z): int(np.sum(za == z)) for z in common}
        anchor_z = min(counts, key=lambda z: (counts[z], z))
        anchor = int(np.flatnonzero(za == anchor_z)[0])
        partners = np.flatnonzero(zb == anchor_z)
    else:
        anchor, partners = 0, np.arange(n)
    best: Correspondence | None = None
    for axes in proper_axis_relabellings() if relabel_axes else [np.eye(3)]:
        lb = axes @ np.asarray(b.lattice, np.float64)
        fb = (np.asarray(b.frac_coords, np.float64) @ axes.T) % 1.0
        metric = 0.5 * (la @ la.T + lb @ lb.T)
        lattice_cost = float(np.sum((pa - _lattice_parameters(lb)) ** 2))
        for j in partners:
            shift = wrap(fa[anchor] - fb[j])
            order, _, _ = _assign(fa, fb, za, zb, metric, shift)
            shift = wrap(shift + np.mean(wrap(fa - fb[order] - shift), axis=0))  # refine the origin
            order, d2, mismatches = _assign(fa, fb, za, zb, metric, shift)
            cost = lattice_cost + d2 / n / scale
            if best is None or cost < best.cost - 1e-12:
                best = Correspondence(order, axes, shift, float(np.sqrt(d2 / n)), cost, mismatches)
    assert best is not None
    return best
