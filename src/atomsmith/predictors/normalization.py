"""Per-species target normalisation: what the network has to learn is the residual around a per-species baseline.

In irreps coordinates (``D`` coefficients per value, see :mod:`atomsmith.nn.cartesian`) the predictor outputs, per atom,

    y_i = r_i * scale[Z_i] + shift[Z_i]        r_i: raw network output (order 1)

and then pools (structure targets) or centres (acoustic sum rule). ``shift`` is nonzero only on invariant ``0e``
coefficients (a per-species offset of an anisotropic component would break rotation equivariance), ``scale`` is one
invariant number per species. With continuous species weights ``w [N, S]`` (guidance, diffusion) the tables are
mixed linearly: ``scale_i = w_i @ scale``, ``shift_i = w_i @ shift``, so the normaliser is differentiable in ``w``.

How the tables are fitted from training data:

* per-atom targets: ``shift[Z]`` = mean of the ``0e`` coefficients over atoms of species Z; ``scale[Z]`` = RMS of
  that species' residual over all coefficients (species with fewer than 2 atoms get the global RMS);
* per-structure targets: ``0e`` coefficients regressed on composition by ridge least squares (fractions for mean
  pooling, counts for sum pooling), so ``pool(shift)`` is the best linear composition-only model; one global
  ``scale``: RMS of the residual (divided by the atom count for sum pooling, i.e. per atom).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.nn.readouts import ReadoutConfig
from atomsmith.structures.crystal import Crystal


@flax.struct.dataclass
class Normalizer:
    """Per-species affine tables: ``shift [S, D]``, ``scale [S]`` (S = encoder species width)."""

    shift: jax.Array
    scale: jax.Array

    @classmethod
    def identity(cls, n_species: int, dim: int) -> Normalizer:
        return cls(shift=jnp.zeros((n_species, dim), jnp.float32), scale=jnp.ones((n_species,), jnp.float32))

    def per_atom(self, species: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``species [N, S]`` (one-hot or continuous weights) -> ``(scale [N], shift [N, D])``."""
        return species @ self.scale.astype(species.dtype), species @ self.shift.astype(species.dtype)


def to_coefficients(values: np.ndarray, readout: ReadoutConfig) -> np.ndarray:
    """Host-side Cartesian ``[..., *shape]`` -> irreps coefficients ``[..., D]`` (float64)."""
    spec = readout.spec
    values = np.asarray(values, np.float64)
    if spec is None:
        return values[..., None]
    letters = "abcdefgh"[: spec.rank]
    return np.einsum(f"...{letters},{letters}z->...z", values, spec.basis)


def fit_normalizer(crystals: Sequence[Crystal], values: Sequence[np.ndarray], readout: ReadoutConfig,
                   n_species: int, ridge: float = 1e-6) -> Normalizer:
    """Fit the per-species tables (see module docstring) from Cartesian target ``values`` (one entry per crystal)."""
    if not crystals:
        raise ValueError("cannot fit a normaliser on an empty training set")
    irreps = readout.irreps_out
    scalar = np.asarray([ir.l == 0 and ir.p == 1 for mul, ir in irreps for _ in range(mul * ir.dim)], bool)
    dim = irreps.dim
    shift = np.zeros((n_species, dim))
    scale = np.ones((n_species,))
    if readout.level == "atom":
        numbers = np.concatenate([c.numbers for c in crystals])
        coeffs = np.concatenate([to_coefficients(v, readout) for v in values])  # [N, D]
        for z in np.unique(numbers):
            shift[z, scalar] = coeffs[numbers == z][:, scalar].mean(axis=0)
        residual = coeffs - shift[numbers]
        global_rms = _rms(residual)
        scale[:] = global_rms
        for z in np.unique(numbers):
            if np.sum(numbers == z) >= 2:
                scale[z] = max(_rms(residual[numbers == z]), 1e-3 * global_rms)
    else:
        coeffs = np.stack([to_coefficients(v, readout) for v in values])  # [G, D]
        counts = np.zeros((len(crystals), n_species))
        for k, c in enumerate(crystals):
            np.add.at(counts[k], c.numbers, 1.0)
        n_atoms = counts.sum(axis=1)
        design = counts / n_atoms[:, None] if readout.pooling == "mean" else counts
        present = np.flatnonzero(counts.sum(axis=0))
        a = design[:, present]
        if scalar.any():
            lhs = a.T @ a + ridge * len(crystals) * np.eye(len(present))
            weights = np.linalg.solve(lhs, a.T @ coeffs[:, scalar])
            shift[np.ix_(present, np.flatnonzero(scalar))] = weights
        residual = coeffs - design @ shift
        if readout.pooling == "sum":
            residual = residual / n_atoms[:, None]
        scale[:] = _rms(residual)
    # (almost) no residual, e.g. a constant target: keep raw outputs in physical units instead of dividing by ~0
    floor = 1e-4 * max(_rms(coeffs), 1e-8)
    scale = np.where(scale > floor, scale, 1.0)
    return Normalizer(shift=jnp.asarray(shift, jnp.float32), scale=jnp.asarray(scale, jnp.float32))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 1.0
