"""The Gram-matrix representation of a local environment and its exact inversion.

For neighbour vectors ``x_i`` (``[n, 3]`` Å, centre at the origin) the Gram matrix is ``G_ij = x_i . x_j`` (Å^2).
It is invariant under every orthogonal map (rotations *and* reflections) of the environment, and, since the
centre is the origin, under translations of the whole structure. Relabelling neighbours permutes it:
``G -> P G P^T``.

Features: the upper triangle ``j >= i`` (``n (n + 1) / 2`` numbers, 36 for n = 8), normalised separately on and
off the diagonal, ``G'_ii = (G_ii - mu_diag) / sigma_diag``, ``G'_ij = (G_ij - mu_off) / sigma_off``
(:class:`GramNormalizer`).

Inversion (:func:`gram_to_coordinates`): the Gram matrix of ``n`` points in 3D is symmetric positive
semidefinite of rank <= 3. With ``G = V diag(l) V^T`` (eigenvalues descending) ``X = V_3 diag(sqrt(l_3))``
reproduces ``G`` exactly when it has rank 3; for a decoded, noisy ``G`` (negative eigenvalues clipped to 0) it is
the Frobenius-nearest rank-3 PSD matrix (Eckart-Young). ``X`` is determined only up to O(3).

Mirror ambiguity: ``G(X) = G(X M)`` for *every* orthogonal ``M``, including reflections, so a Gram matrix cannot
tell an environment from its mirror image, and any model of Gram matrices assigns both the same probability.
We therefore (a) return a canonical representative, the one with a non-negative triple product
``det[x_a, x_b, x_c]`` for the first triple of neighbours (in the given order) that is not coplanar, and
(b) compare or align environments over all of O(3) (reflection allowed, see
:func:`atomsmith.generators.environments.ops.align`). Both mirror images are equally valid samples; a caller that
needs a given handedness (e.g. infilling around fixed atoms) picks it by alignment, never by the Gram matrix.

Eigendecomposition is done on the host in float64 and is never differentiated: a-Si first shells are nearly
tetrahedral, where ``eigh`` is degenerate and its gradients blow up as 1/gap (see docs/design-notes.md, Part 3).
Training losses and infilling objectives are therefore written on Gram matrices, never on ``eigh`` output.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np


def gram_matrix(vectors: Any) -> Any:
    """``[..., n, 3] -> [..., n, n]``, ``G_ij = x_i . x_j`` (Å^2). NumPy in, NumPy out; JAX in, JAX out."""
    xp = jnp if not isinstance(vectors, np.ndarray) else np
    return xp.einsum("...id,...jd->...ij", vectors, vectors)


def n_features(n: int) -> int:
    """Length of the upper triangle (``j >= i``) of an ``n x n`` matrix: ``n (n + 1) / 2``."""
    return n * (n + 1) // 2


def triu_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major upper-triangle indices ``(i, j)`` with ``j >= i`` (diagonal included)."""
    return np.triu_indices(n)


def diagonal_mask(n: int) -> np.ndarray:
    """``[n (n + 1) / 2]`` bool, True where the packed entry is a diagonal element."""
    i, j = triu_indices(n)
    return i == j


def pack(gram: Any) -> Any:
    """``[..., n, n] -> [..., n (n + 1) / 2]`` upper triangle, row-major."""
    n = gram.shape[-1]
    i, j = triu_indices(n)
    return gram[..., i, j]


def unpack(features: Any, n: int) -> Any:
    """Inverse of :func:`pack`: ``[..., n (n + 1) / 2] -> [..., n, n]`` symmetric."""
    xp = jnp if not isinstance(features, np.ndarray) else np
    if features.shape[-1] != n_features(n):
        raise ValueError(f"expected {n_features(n)} packed Gram entries for n = {n}, got {features.shape[-1]}")
    i, j = triu_indices(n)
    flat_upper = i * n + j
    flat_lower = j * n + i
    out = xp.zeros(features.shape[:-1] + (n * n,), dtype=features.dtype)
    if xp is np:
        out[..., flat_upper] = features
        out[..., flat_lower] = features
    else:
        out = out.at[..., flat_upper].set(features).at[..., flat_lower].set(features)
    return out.reshape(features.shape[:-1] + (n, n))


@dataclasses.dataclass(frozen=True)
class GramNormalizer:
    """Separate standardisation of diagonal and off-diagonal Gram entries (Å^2), fitted on training data.

    Attributes:
      n: neighbours per environment.
      mu_diag, sigma_diag: mean and std of ``G_ii`` (squared neighbour distances).
      mu_off, sigma_off: mean and std of ``G_ij``, ``i < j``.
    """

    n: int
    mu_diag: float
    sigma_diag: float
    mu_off: float
    sigma_off: float

    @classmethod
    def fit(cls, vectors: np.ndarray) -> GramNormalizer:
        """Fit on environments ``[m, n, 3]`` Å."""
        vectors = np.asarray(vectors, np.float64)
        if vectors.ndim != 3 or vectors.shape[-1] != 3 or len(vectors) < 2:
            raise ValueError(f"need at least two environments of shape [m, n, 3], got {vectors.shape}")
        g = gram_matrix(vectors)
        n = g.shape[-1]
        diag = np.diagonal(g, axis1=1, axis2=2)
        iu = np.triu_indices(n, 1)
        off = g[:, iu[0], iu[1]]
        return cls(n, float(diag.mean()), float(max(diag.std(), 1e-6)), float(off.mean()),
                   float(max(off.std(), 1e-6)))

    def _mu_sigma(self, xp) -> tuple[Any, Any]:
        d = diagonal_mask(self.n)
        mu = xp.asarray(np.where(d, self.mu_diag, self.mu_off), dtype=xp.float32 if xp is jnp else np.float64)
        sigma = xp.asarray(np.where(d, self.sigma_diag, self.sigma_off), dtype=mu.dtype)
        return mu, sigma

    def normalize(self, gram: Any) -> Any:
        """``[..., n, n]`` Å^2 -> normalised packed features ``[..., n (n + 1) / 2]``."""
        xp = jnp if not isinstance(gram, np.ndarray) else np
        mu, sigma = self._mu_sigma(xp)
        return (pack(gram) - mu) / sigma

    def denormalize(self, features: Any) -> Any:
        """Normalised packed features ``[..., n (n + 1) / 2]`` -> symmetric Gram ``[..., n, n]`` Å^2."""
        xp = jnp if not isinstance(features, np.ndarray) else np
        mu, sigma = self._mu_sigma(xp)
        return unpack(features * sigma + mu, self.n)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GramNormalizer:
        return cls(int(data["n"]), float(data["mu_diag"]), float(data["sigma_diag"]), float(data["mu_off"]),
                   float(data["sigma_off"]))


@dataclasses.dataclass(frozen=True)
class Inversion:
    """Result of :func:`gram_to_coordinates` for ``m`` Gram matrices.

    Attributes:
      coordinates: ``[m, n, 3]`` Å, canonical mirror representative (see module docstring).
      eigenvalues: ``[m, n]`` Å^2, descending.
      residual: ``[m]`` relative Frobenius error ``|G - X X^T| / |G|`` (0 for an exact rank-3 PSD matrix).
    """

    coordinates: np.ndarray
    eigenvalues: np.ndarray
    residual: np.ndarray


def canonical_mirror(coordinates: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Reflect each environment ``[m, n, 3]`` (through z) where needed so that the first non-coplanar triple of
    neighbours, in the given order, has a positive triple product. Environments with all triples coplanar
    (|det| <= ``tol`` Å^3) are unchanged."""
    x = np.array(coordinates, np.float64, copy=True)
    single = x.ndim == 2
    if single:
        x = x[None]
    n = x.shape[1]
    triples = [(a, b, c) for a in range(n) for b in range(a + 1, n) for c in range(b + 1, n)]
    for env in x:
        for a, b, c in triples:
            det = float(np.linalg.det(env[[a, b, c]]))
            if abs(det) > tol:
                if det < 0:
                    env[:, 2] *= -1.0
                break
    return x[0] if single else x


def gram_to_coordinates(gram: np.ndarray, rank: int = 3) -> Inversion:
    """Coordinates ``[m, n, 3]`` (Å) whose Gram matrices are the nearest rank-3 PSD matrices to ``gram``.

    ``gram``: ``[n, n]`` or ``[m, n, n]`` symmetric (symmetrised here). Eigendecomposition in float64 on the host
    (NumPy): never differentiated (see the module docstring). Negative eigenvalues are clipped to zero.
    Raises ``ValueError`` for a non-square or non-finite input.
    """
    g = np.asarray(gram, np.float64)
    single = g.ndim == 2
    if single:
        g = g[None]
    if g.ndim != 3 or g.shape[-1] != g.shape[-2]:
        raise ValueError(f"gram must be [n, n] or [m, n, n], got {np.shape(gram)}")
    if not np.all(np.isfinite(g)):
        raise ValueError("gram contains non-finite entries")
    if g.shape[-1] < rank:
        raise ValueError(f"need at least {rank} neighbours to invert a Gram matrix to {rank}D, got {g.shape[-1]}")
    g = 0.5 * (g + np.swapaxes(g, -1, -2))
    vals, vecs = np.linalg.eigh(g)  # ascending
    vals, vecs = vals[:, ::-1], vecs[:, :, ::-1]
    top = np.clip(vals[:, :rank], 0.0, None)
    x = vecs[:, :, :rank] * np.sqrt(top)[:, None, :]
    recon = np.einsum("mid,mjd->mij", x, x)
    residual = np.linalg.norm(g - recon, axis=(1, 2)) / np.maximum(np.linalg.norm(g, axis=(1, 2)), 1e-12)
    x = canonical_mirror(x)
    if single:
        return Inversion(x[0], vals[0], residual[0])
    return Inversion(x, vals, residual)
