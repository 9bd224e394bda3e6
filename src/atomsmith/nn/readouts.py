"""Readout heads on the shared encoder: scalars and Cartesian tensors, per atom or per structure.

Every head maps the encoder's per-atom ``IrrepsArray`` features ``[N, irreps]`` to per-atom irreps coefficients

    h   = gate(Linear(x))          hidden: ``width x 0e`` + ``width`` copies of each non-scalar output irrep
    y_i = Linear(h)                ``[N, irreps_out]`` with irreps_out = 0e (scalar) or the tensor's irreps

then, optionally, an affine per-atom normalisation ``y_i * scale_i + shift_i`` (per-species statistics supplied
by the caller, see :mod:`atomsmith.predictors.normalization`), then

* ``level="structure"``: pooling over the atoms of each structure, ``"mean"`` (intensive: energy per atom,
  dielectric tensor) or ``"sum"`` (extensive: total energy, dipole);
* ``level="atom"``: per-atom values, with an optional acoustic sum rule (the per-structure mean is subtracted so
  the values sum to zero over the cell, as Born effective charges must);

and finally the change of basis to Cartesian (:mod:`atomsmith.nn.cartesian`). Scalars come out as ``[G]`` or ``[N]``,
tensors as ``[G, 3, ...]`` or ``[N, 3, ...]``.

Only e3nn-equivariant operations act on non-scalars (linear maps within each irrep type, gates by scalars), and
pooling/centering are sums over atoms, so scalar outputs are O(3)- and permutation-invariant and tensor outputs
transform as ``T'_{ij...} = R_ia R_jb ... T_{ab...}`` (times ``det R`` per axial index).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.nn.cartesian import CartesianTensorSpec, tensor_spec

Level = Literal["structure", "atom"]
Pooling = Literal["mean", "sum"]


@dataclasses.dataclass(frozen=True)
class ReadoutConfig:
    """What a head predicts.

    Attributes:
      level: ``"structure"`` (one value per crystal) or ``"atom"`` (one per atom).
      pooling: for ``level="structure"``: ``"mean"`` (intensive) or ``"sum"`` (extensive).
      tensor: ``None`` for a scalar, else a named spec or e3nn formula (``"rank2"``, ``"rank2_sym"``, ``"raman"``,
        ``"ij=ji"``, ...; see :func:`atomsmith.nn.cartesian.tensor_spec`).
      acoustic_sum_rule: for ``level="atom"``: make per-atom values sum to zero over each structure.
      width: multiplicity of the hidden irreps (and width of the scalar MLP).
      n_hidden: number of gated hidden layers (0: a single linear map).
    """

    level: Level = "structure"
    pooling: Pooling = "mean"
    tensor: str | None = None
    acoustic_sum_rule: bool = False
    width: int = 32
    n_hidden: int = 1

    def __post_init__(self) -> None:
        if self.level not in ("structure", "atom"):
            raise ValueError(f"level must be 'structure' or 'atom', got {self.level!r}")
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"pooling must be 'mean' or 'sum', got {self.pooling!r}")
        if self.acoustic_sum_rule and self.level != "atom":
            raise ValueError("the acoustic sum rule applies to per-atom outputs (level='atom')")
        if self.tensor is not None:
            tensor_spec(self.tensor)  # raises on an unknown name

    @property
    def spec(self) -> CartesianTensorSpec | None:
        return None if self.tensor is None else tensor_spec(self.tensor)

    @property
    def irreps_out(self) -> e3nn.Irreps:
        """Irreps of the per-atom coefficients (``0e`` for a scalar)."""
        return e3nn.Irreps("0e") if self.spec is None else self.spec.irreps

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Trailing shape of one value: ``()`` for scalars, ``(3, 3)`` for rank 2, ..."""
        return () if self.spec is None else self.spec.shape


def required_irreps(config: ReadoutConfig) -> list[e3nn.Irrep]:
    """Irreps the encoder output must contain for this head (a Linear cannot create a missing irrep type)."""
    return sorted({ir for _, ir in config.irreps_out} | {e3nn.Irrep("0e")})


def check_encoder_irreps(irreps_out: str | e3nn.Irreps, config: ReadoutConfig) -> None:
    """Raise ``ValueError`` if the encoder features ``irreps_out`` lack an irrep this head needs."""
    have = {ir for _, ir in e3nn.Irreps(irreps_out)}
    missing = [ir for ir in required_irreps(config) if ir not in have]
    if missing:
        need = "+".join(str(ir) for ir in required_irreps(config))
        raise ValueError(f"the encoder outputs {e3nn.Irreps(irreps_out)}, but a {config.tensor or 'scalar'} head "
                         f"needs {need}; missing {'+'.join(map(str, missing))}. Add them to EncoderConfig.irreps_out")


def gate_irreps(scalars: int, gated: e3nn.Irreps) -> e3nn.Irreps:
    """Irreps that ``e3nn.gate`` maps to ``scalars x 0e + gated``: one extra gate scalar per gated irrep."""
    gated = e3nn.Irreps(gated)
    out = e3nn.Irreps(f"{scalars}x0e")
    if gated.num_irreps:
        out = out + e3nn.Irreps(f"{gated.num_irreps}x0e") + gated
    return out.simplify()


def pool(values: jax.Array, batch: GraphBatch, mode: Pooling) -> jax.Array:
    """Per-structure sum or mean of per-atom ``values [N, ...]`` -> ``[G, ...]`` (padding atoms excluded)."""
    mask = batch.node_mask.reshape((-1,) + (1,) * (values.ndim - 1))
    total = jax.ops.segment_sum(jnp.where(mask, values, 0.0), batch.node_graph, num_segments=batch.n_graphs)
    if mode == "sum":
        return total
    count = jnp.maximum(batch.n_atoms, 1).astype(values.dtype)
    return total / count.reshape((-1,) + (1,) * (values.ndim - 1))


def remove_structure_mean(values: jax.Array, batch: GraphBatch) -> jax.Array:
    """Subtract each structure's mean over atoms (acoustic sum rule): ``sum_i values_i = 0`` per structure."""
    mean = pool(values, batch, "mean")
    mask = batch.node_mask.reshape((-1,) + (1,) * (values.ndim - 1))
    return jnp.where(mask, values - mean[batch.node_graph], 0.0)


class Readout(nn.Module):
    """A head on encoder features (see module docstring).

    Call ``(features, batch, scale=None, shift=None)``:

    * ``features``: ``[N, irreps]`` encoder output.
    * ``scale``: optional ``[N]`` per-atom multiplier, ``shift``: optional ``[N, D]`` per-atom offset of the
      irreps coefficients (D = ``config.irreps_out.dim``); shifts must only touch ``0e`` components to keep
      equivariance.

    Returns physical-unit values: ``[G]``/``[N]`` scalars or ``[G, 3, ...]``/``[N, 3, ...]`` tensors. The raw
    per-atom coefficients (before scale/shift) are available from :meth:`coefficients`.
    """

    config: ReadoutConfig

    def setup(self) -> None:
        cfg = self.config
        out = cfg.irreps_out
        gated = e3nn.Irreps([(cfg.width, ir) for _, ir in out if ir.l > 0]).simplify()
        self.hidden = [e3nn.flax.Linear(gate_irreps(cfg.width, gated), name=f"hidden_{k}")
                       for k in range(cfg.n_hidden)]
        self.output = e3nn.flax.Linear(out, force_irreps_out=True, name="output")

    def coefficients(self, features: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        """Raw per-atom irreps coefficients ``[N, irreps_out]``."""
        assert features.ndim == 2, features.shape
        h = features
        for layer in self.hidden:
            h = e3nn.gate(layer(h), even_act=jax.nn.silu, odd_act=jnp.tanh, even_gate_act=jax.nn.sigmoid)
        return self.output(h)

    def __call__(self, features: e3nn.IrrepsArray, batch: GraphBatch, scale: jax.Array | None = None,
                 shift: jax.Array | None = None) -> jax.Array:
        y = self.coefficients(features).array  # [N, D]
        return finish(y, batch, self.config, scale=scale, shift=shift)


def finish(coefficients: jax.Array, batch: GraphBatch, config: ReadoutConfig, scale: jax.Array | None = None,
           shift: jax.Array | None = None) -> jax.Array:
    """Per-atom coefficients ``[N, D]`` -> normalised, pooled / centred, Cartesian output (see :class:`Readout`)."""
    return to_cartesian(combine(coefficients, batch, config, scale=scale, shift=shift), config)


def combine(coefficients: jax.Array, batch: GraphBatch, config: ReadoutConfig, scale: jax.Array | None = None,
            shift: jax.Array | None = None) -> jax.Array:
    """Per-atom coefficients ``[N, D]`` -> scaled, shifted, pooled (``[G, D]``) or centred (``[N, D]``) coefficients.

    Padding atoms are zeroed (and padding structures get zero from pooling).
    """
    y = coefficients
    if scale is not None:
        y = y * scale[:, None]
    if shift is not None:
        y = y + shift
    y = jnp.where(batch.node_mask[:, None], y, 0.0)
    if config.level == "structure":
        return pool(y, batch, config.pooling)
    if config.acoustic_sum_rule:
        return remove_structure_mean(y, batch)
    return y


def to_cartesian(coefficients: jax.Array, config: ReadoutConfig) -> jax.Array:
    """``[..., D]`` irreps coefficients -> ``[...]`` scalars or ``[..., 3, ...]`` Cartesian tensors."""
    spec = config.spec
    return coefficients[..., 0] if spec is None else spec.from_irreps(coefficients)


def from_cartesian(values: jax.Array, config: ReadoutConfig) -> jax.Array:
    """Inverse of :func:`to_cartesian`: ``[...]`` scalars or ``[..., 3, ...]`` tensors -> ``[..., D]``."""
    spec = config.spec
    return jnp.asarray(values)[..., None] if spec is None else spec.to_irreps(values).array
