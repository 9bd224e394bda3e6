"""Exact Cartesian <-> irreps conversion for tensors of any rank (e3nn reduced tensor products).

A :class:`CartesianTensorSpec` names a tensor by its index symmetry (an e3nn formula such as ``"ij=ji"``) and the
irrep carried by each index (``1o`` for a polar vector: electric field, displacement, position). The orthonormal
change of basis ``Q[..., d]`` from e3nn's ``reduced_tensor_product_basis`` maps

    irreps coefficients  c[d]            -> Cartesian  T[i, j, ...] = sum_d Q[i, j, ..., d] c[d]
    Cartesian T (with the symmetry)      -> c[d] = sum_{ij...} Q[i, j, ..., d] T[i, j, ...]

Both are one einsum. Because the columns of Q are orthonormal, the round trip irreps -> Cartesian -> irreps is the
identity (to float rounding), and Cartesian -> irreps -> Cartesian is the orthogonal projection onto tensors with the
declared symmetry (the identity for tensors that have it). e3nn-jax orders the three ``1o`` components as (x, y, z)
with ``D(R) = R``, so Q is expressed in the usual Cartesian frame.

Named specs used in atomsmith:

=================  ============  ====================  ==============================================
name               formula       irreps                example
=================  ============  ====================  ==============================================
``rank2``          ``ij``        0e+1e+2e (9)          Born effective charges Z*_{αβ}, NMR shielding
``rank2_sym``      ``ij=ji``     0e+2e (6)             dielectric tensor, polarisability
``raman``          ``ijk=ikj``   2x1o+2o+3o (18)       Raman tensor ∂χ_{αβ}/∂u_γ stored as [γ, α, β]
``vector``         ``i``         1o (3)                polarisation, forces
=================  ============  ====================  ==============================================

The Raman entry is symmetric in its *last* two indices, the layout of the BaTiO3 data (``raman_tensors[n, γ, α, β]``,
checked numerically: symmetric in α, β to machine precision). The displacement and field indices are all polar
(``1o``), so the parity is that of a rank-3 polar tensor: odd.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class CartesianTensorSpec:
    """A Cartesian tensor type: index symmetry and per-index irreps.

    Attributes:
      formula: e3nn formula over single-letter indices, e.g. ``"ij"``, ``"ij=ji"``, ``"ijk=ikj"``, ``"ij=-ji"``.
      index_irreps: irrep of every index (``"1o"`` for polar vectors, ``"1e"`` for axial ones).
    """

    formula: str
    index_irreps: str = "1o"

    def __post_init__(self) -> None:
        indices = self.indices
        if not indices or len(set(indices)) != len(indices):
            raise ValueError(f"tensor formula {self.formula!r} must start with distinct index letters, e.g. 'ij=ji'")
        for part in self.formula.split("=")[1:]:
            if sorted(part.lstrip("-")) != sorted(indices):
                raise ValueError(f"tensor formula {self.formula!r}: {part!r} is not a permutation of {indices!r}")
        ir = e3nn.Irrep(self.index_irreps)
        if ir.l != 1:
            raise ValueError(f"index irreps must be a vector (1o or 1e), got {self.index_irreps!r}")

    @property
    def indices(self) -> str:
        return self.formula.split("=")[0].lstrip("-")

    @property
    def rank(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, ...]:
        """Cartesian shape, ``(3,) * rank``."""
        return (3,) * self.rank

    @property
    def irreps(self) -> e3nn.Irreps:
        return _basis(self.formula, self.index_irreps)[0]

    @property
    def dim(self) -> int:
        return self.irreps.dim

    @property
    def basis(self) -> np.ndarray:
        """``Q`` with shape ``[3, ..., 3, dim]`` (float64, orthonormal columns)."""
        return _basis(self.formula, self.index_irreps)[1]

    def to_irreps(self, tensor: jax.Array) -> e3nn.IrrepsArray:
        """``[..., 3, ..., 3]`` Cartesian -> ``[..., dim]`` irreps coefficients (projects onto the symmetry)."""
        tensor = jnp.asarray(tensor)
        if tensor.shape[tensor.ndim - self.rank:] != self.shape:
            raise ValueError(f"expected a tensor ending in {self.shape}, got shape {tensor.shape}")
        q = jnp.asarray(self.basis, dtype=_float_dtype(tensor))
        letters = "abcdefgh"[: self.rank]
        array = jnp.einsum(f"...{letters},{letters}z->...z", tensor, q)
        return e3nn.IrrepsArray(self.irreps, array)

    def from_irreps(self, coefficients: e3nn.IrrepsArray | jax.Array) -> jax.Array:
        """``[..., dim]`` irreps coefficients -> ``[..., 3, ..., 3]`` Cartesian tensor."""
        if isinstance(coefficients, e3nn.IrrepsArray):
            if coefficients.irreps != self.irreps:
                raise ValueError(f"expected irreps {self.irreps}, got {coefficients.irreps}")
            coefficients = coefficients.array
        coefficients = jnp.asarray(coefficients)
        if coefficients.shape[-1] != self.dim:
            raise ValueError(f"expected {self.dim} irreps coefficients in the last axis, got {coefficients.shape}")
        q = jnp.asarray(self.basis, dtype=_float_dtype(coefficients))
        letters = "abcdefgh"[: self.rank]
        return jnp.einsum(f"...z,{letters}z->...{letters}", coefficients, q)

    def scalar_mask(self) -> np.ndarray:
        """``[dim]`` bool: which coefficients are invariant scalars (``0e``), e.g. the trace part of Z*."""
        mask = [ir == e3nn.Irrep("0e") for mul, ir in self.irreps for _ in range(mul * ir.dim)]
        return np.asarray(mask, bool)

    def describe(self) -> str:
        return f"{self.formula} ({self.index_irreps}) -> {self.irreps}"


def _float_dtype(x: jax.Array):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32


@functools.lru_cache(maxsize=None)
def _basis(formula: str, index_irreps: str) -> tuple[e3nn.Irreps, np.ndarray]:
    letters = formula.split("=")[0].lstrip("-")
    with jax.ensure_compile_time_eval():
        q = e3nn.reduced_tensor_product_basis(formula, **{c: index_irreps for c in letters})
        array = np.asarray(q.array, np.float64)
    array.setflags(write=False)
    return q.irreps, array


#: Named tensor specs (see module docstring).
NAMED_SPECS: dict[str, CartesianTensorSpec] = {
    "vector": CartesianTensorSpec("i"),
    "rank2": CartesianTensorSpec("ij"),
    "rank2_sym": CartesianTensorSpec("ij=ji"),
    "raman": CartesianTensorSpec("ijk=ikj"),
}


def tensor_spec(name_or_formula: str | CartesianTensorSpec) -> CartesianTensorSpec:
    """A named spec (``"rank2"``, ``"rank2_sym"``, ``"raman"``, ``"vector"``) or an e3nn formula such as ``"ij=ji"``."""
    if isinstance(name_or_formula, CartesianTensorSpec):
        return name_or_formula
    if name_or_formula in NAMED_SPECS:
        return NAMED_SPECS[name_or_formula]
    if re.fullmatch(r"-?[a-h]+(=-?[a-h]+)*", name_or_formula or ""):
        return CartesianTensorSpec(name_or_formula)
    raise ValueError(f"unknown tensor type {name_or_formula!r}: use one of {sorted(NAMED_SPECS)} or an e3nn "
                     "formula such as 'ij=ji'")
