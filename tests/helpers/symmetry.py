"""One set of symmetry helpers used by every model's tests (encoder, heads, diffusion score, VAEs, MCTS nets)."""

from __future__ import annotations

import numpy as np

from atomsmith.structures.crystal import Crystal


def random_o3(rng: np.random.Generator, reflection: bool | None = None) -> np.ndarray:
    """A Haar-random rotation times +-1 (inversion). ``reflection=None`` picks the sign at random."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    if reflection is None:
        reflection = bool(rng.integers(2))
    return -q if reflection else q


def random_unimodular(rng: np.random.Generator) -> np.ndarray:
    """A random integer 3x3 matrix with determinant +1 (a re-choice of the unit cell)."""
    m = np.eye(3, dtype=np.int64)
    for _ in range(4):
        i, j = rng.choice(3, size=2, replace=False)
        e = np.eye(3, dtype=np.int64)
        e[i, j] = rng.choice([-1, 1])
        m = e @ m
    assert round(np.linalg.det(m)) == 1
    return m


def random_crystal(rng: np.random.Generator, n_atoms: int = 5, numbers=None, skew: float = 0.3,
                   size: float = 4.0, min_distance: float = 0.9) -> Crystal:
    """A random triclinic crystal with no two atoms closer than ``min_distance`` Å."""
    for _ in range(1000):
        lattice = np.eye(3) * size + rng.normal(size=(3, 3)) * skew
        if np.linalg.det(lattice) <= 0:
            continue
        z = rng.choice([8, 14, 22, 56], size=n_atoms) if numbers is None else np.asarray(numbers)
        crystal = Crystal(lattice, rng.random((n_atoms, 3)), z)
        if not crystal.close_pairs(min_distance):
            return crystal
    raise RuntimeError("could not draw a non-overlapping random crystal")


def assert_close_scaled(actual, expected, rtol: float = 1e-4, what: str = "") -> None:
    """max |actual - expected| <= rtol * max|expected| (error relative to the output scale)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    err = float(np.max(np.abs(actual - expected)))
    assert scale > 1e-6, f"{what}: output is identically ~0, the test would be vacuous"
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol} x scale {scale:.3g}"
