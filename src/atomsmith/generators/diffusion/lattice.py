"""The rotation-invariant lattice representation that the lattice diffusion acts on.

A cell is described by its six parameters (a, b, c in Å; alpha, beta, gamma in degrees), which do not change when
the cell is rotated, so a lattice score computed from invariant features is automatically rotation invariant.
The diffused vector is

    z = ((log a, log b, log c) - mu_len) / sd_len ,  ((alpha, beta, gamma) - mu_ang) / sd_ang

standardised with training-set statistics (with floors on the spreads so that a set of cubic cells does not
divide by zero). Matrices are built in the standard orientation (a along x, b in the xy plane), right-handed.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

#: angles are kept in this range (degrees) when a diffused vector is turned back into a cell.
ANGLE_RANGE = (30.0, 150.0)


def parameters_from_matrix(lattice):
    """``[..., 3, 3]`` rows (Å) -> ``[..., 6]`` (log a, log b, log c, alpha, beta, gamma in degrees)."""
    xp = jnp if not isinstance(lattice, np.ndarray) else np
    lengths = xp.linalg.norm(lattice, axis=-1)
    a, b, c = lattice[..., 0, :], lattice[..., 1, :], lattice[..., 2, :]

    def angle(u, v, nu, nv):
        cos = xp.clip(xp.sum(u * v, axis=-1) / (nu * nv), -1.0, 1.0)
        return xp.degrees(xp.arccos(cos))

    alpha = angle(b, c, lengths[..., 1], lengths[..., 2])
    beta = angle(a, c, lengths[..., 0], lengths[..., 2])
    gamma = angle(a, b, lengths[..., 0], lengths[..., 1])
    return xp.concatenate([xp.log(lengths), xp.stack([alpha, beta, gamma], axis=-1)], axis=-1)


def matrix_from_parameters(params):
    """``[..., 6]`` (log lengths, angles in degrees) -> ``[..., 3, 3]`` rows in Å, right-handed.

    Angles are clipped to :data:`ANGLE_RANGE` and the volume factor to >= 1e-3 so that any vector gives a
    non-singular cell.
    """
    lengths = jnp.exp(params[..., :3])
    ang = jnp.radians(jnp.clip(params[..., 3:], *ANGLE_RANGE))
    ca, cb, cg = jnp.cos(ang[..., 0]), jnp.cos(ang[..., 1]), jnp.cos(ang[..., 2])
    sg = jnp.sin(ang[..., 2])
    cx = cb
    cy = (ca - cb * cg) / sg
    cz = jnp.sqrt(jnp.clip(1.0 - cx ** 2 - cy ** 2, 1e-3, None))
    zero = jnp.zeros_like(ca)
    va = jnp.stack([jnp.ones_like(ca), zero, zero], -1)
    vb = jnp.stack([cg, sg, zero], -1)
    vc = jnp.stack([cx, cy, cz], -1)
    return jnp.stack([va, vb, vc], axis=-2) * lengths[..., :, None]


@dataclasses.dataclass(frozen=True)
class LatticeNormalizer:
    """Standardisation of the lattice parameters (fitted on training cells)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, lattices: np.ndarray, min_len_std: float = 0.05, min_angle_std: float = 5.0) -> LatticeNormalizer:
        """Statistics of ``[B, 3, 3]`` training lattices; spreads floored at ``min_len_std`` / ``min_angle_std``."""
        p = parameters_from_matrix(np.asarray(lattices, np.float64))
        mean = p.mean(0)
        std = np.maximum(p.std(0), [min_len_std] * 3 + [min_angle_std] * 3)
        return cls(tuple(float(x) for x in mean), tuple(float(x) for x in std))

    def encode(self, lattice):
        """``[..., 3, 3]`` -> standardised ``[..., 6]``."""
        return (parameters_from_matrix(lattice) - jnp.asarray(self.mean)) / jnp.asarray(self.std)

    def decode(self, z):
        """Standardised ``[..., 6]`` -> lattice ``[..., 3, 3]`` Å."""
        return matrix_from_parameters(z * jnp.asarray(self.std) + jnp.asarray(self.mean))
