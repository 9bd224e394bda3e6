"""The shared E(3)-equivariant encoder (NequIP-style interaction blocks) used by every atomsmith model.

Input: a periodic graph (positions, lattice, image shifts), per-atom species features and optional per-structure
scalar conditioning (diffusion time, target properties). Output: per-atom ``IrrepsArray`` features.

Each interaction block:

    h    = Linear([x, c])                          c: conditioning scalars broadcast to atoms (if any)
    m    = Convolution(h, r_ij) / sqrt(avg_neighbors)
    x'   = Gate(Linear(m)) + Linear_self([x, c])   (residual self-connection)

Invariance/equivariance: only edge vectors enter (translation invariance, periodic-image consistency), messages
are summed over neighbours (permutation equivariance), all operations are e3nn-equivariant (O(3) incl. parity).
"""

from __future__ import annotations

import dataclasses

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.graphs.batching import GraphBatch
from atomsmith.nn.convolution import Convolution

N_ELEMENTS = 119  # one-hot slots indexed by atomic number (0 = padding / mask token)


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Configuration of :class:`Encoder`.

    Attributes:
      irreps_hidden: node features between layers, e.g. ``"32x0e+16x1o+8x2e"``.
      irreps_out: features returned (defaults to ``irreps_hidden``).
      n_layers: number of interaction blocks.
      sh_lmax: largest l of edge spherical harmonics.
      cutoff: Å.
      n_basis: radial Bessel functions.
      radial_hidden: hidden widths of the radial MLP.
      avg_num_neighbors: messages are divided by its square root.
      n_species: width of the species input (one-hot over atomic numbers by default).
      conditioning_dim: number of per-structure scalar conditioning inputs (0 = none).
    """

    irreps_hidden: str = "32x0e+16x1o+8x2e"
    irreps_out: str | None = None
    n_layers: int = 3
    sh_lmax: int = 2
    cutoff: float = 5.0
    n_basis: int = 8
    radial_hidden: tuple[int, ...] = (32,)
    avg_num_neighbors: float = 20.0
    n_species: int = N_ELEMENTS
    conditioning_dim: int = 0

    @classmethod
    def tiny(cls, **overrides) -> EncoderConfig:
        """A small config for unit tests (fast to compile and run)."""
        base = dict(irreps_hidden="8x0e+4x1o+4x1e+2x2e+2x2o", n_layers=2, sh_lmax=2, cutoff=4.0, n_basis=6,
                    radial_hidden=(16,), avg_num_neighbors=10.0)
        return cls(**{**base, **overrides})


def _gate_irreps(irreps: e3nn.Irreps) -> e3nn.Irreps:
    """Irreps that ``e3nn.gate`` maps onto ``irreps``: scalars, one gate scalar per non-scalar, non-scalars."""
    irreps = e3nn.Irreps(irreps)
    scalars = e3nn.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
    gated = e3nn.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
    return (scalars + e3nn.Irreps(f"{gated.num_irreps}x0e") + gated).simplify() if gated.num_irreps else scalars


def _with_conditioning(x: e3nn.IrrepsArray, cond: jax.Array | None) -> e3nn.IrrepsArray:
    if cond is None:
        return x
    return e3nn.concatenate([x, e3nn.IrrepsArray(f"{cond.shape[-1]}x0e", cond)], axis=-1)


class InteractionBlock(nn.Module):
    irreps_out: str
    config: EncoderConfig

    @nn.compact
    def __call__(self, x: e3nn.IrrepsArray, vectors: jax.Array, senders: jax.Array, receivers: jax.Array,
                 edge_mask: jax.Array, cond: jax.Array | None) -> e3nn.IrrepsArray:
        cfg = self.config
        n_nodes = x.shape[0]
        xc = _with_conditioning(x, cond)
        self_connection = e3nn.flax.Linear(self.irreps_out, force_irreps_out=True, name="self_connection")(xc)
        h = e3nn.flax.Linear(x.irreps, name="pre_linear")(xc)
        messages = Convolution(irreps_out=str(_gate_irreps(self.irreps_out)), sh_lmax=cfg.sh_lmax,
                               n_basis=cfg.n_basis, cutoff=cfg.cutoff, radial_hidden=cfg.radial_hidden,
                               name="convolution")(h, vectors, senders, receivers, n_nodes, edge_mask)
        messages = messages / jnp.sqrt(cfg.avg_num_neighbors)
        gated = e3nn.gate(messages, even_act=jax.nn.silu, odd_act=jnp.tanh, even_gate_act=jax.nn.sigmoid)
        assert gated.irreps == self_connection.irreps, (gated.irreps, self_connection.irreps)
        return gated + self_connection


class Encoder(nn.Module):
    """The shared encoder (see module docstring). Call with a :class:`GraphBatch`.

    ``species`` overrides the one-hot of ``batch.numbers``: ``[N, n_species]`` float (e.g. a relaxed one-hot
    being denoised by diffusion, or species weights being optimised by guidance).
    ``conditioning`` is ``[G, conditioning_dim]`` per structure.
    Returns ``[N, irreps_out]`` per-atom features (zero on padding nodes).
    """

    config: EncoderConfig

    @nn.compact
    def __call__(self, batch: GraphBatch, species: jax.Array | None = None,
                 conditioning: jax.Array | None = None) -> e3nn.IrrepsArray:
        cfg = self.config
        if species is None:
            species = jax.nn.one_hot(batch.numbers, cfg.n_species)
        assert species.shape == (batch.n_nodes, cfg.n_species), (species.shape, cfg.n_species)
        cond = None
        if cfg.conditioning_dim:
            if conditioning is None:
                raise ValueError(f"this encoder expects conditioning of width {cfg.conditioning_dim}")
            assert conditioning.shape == (batch.n_graphs, cfg.conditioning_dim), conditioning.shape
            cond = conditioning[batch.node_graph]
        vectors = batch.edge_vectors()
        node_mask = batch.node_mask[:, None]
        hidden = e3nn.Irreps(cfg.irreps_hidden)
        scalars = hidden.filter(keep=["0e"])
        x = e3nn.flax.Linear(scalars, name="embed")(e3nn.IrrepsArray(f"{cfg.n_species}x0e", species))
        for layer in range(cfg.n_layers):
            last = layer == cfg.n_layers - 1
            irreps = (cfg.irreps_out or cfg.irreps_hidden) if last else cfg.irreps_hidden
            x = InteractionBlock(str(e3nn.Irreps(irreps).simplify()), cfg, name=f"layer_{layer}")(
                x, vectors, batch.senders, batch.receivers, batch.edge_mask, cond)
            x = x * node_mask
        return x
