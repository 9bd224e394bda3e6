"""The score network: the shared :class:`Encoder` conditioned on diffusion time, with three heads.

Inputs (per batch of ``B`` cells with ``A`` atom slots): noisy fractional coordinates ``[B, A, 3]``, the noisy cell
``[B, 3, 3]`` (Å), the noisy species ``[B, A, C]`` (``C = config.species_channels``: one-hot with a MASK channel for
absorbing species, relaxed one-hot otherwise; fed through the encoder's ``species=``), the atom
mask ``[B, A]``, the time ``t`` ``[B]`` and the structure-prediction flag ``[B]``. The conditioning scalars are
``[time embedding, flag, standardised lattice parameters]`` (all rotation invariant).

Outputs:

* coordinate score (normalised by ``sqrt(sigma_norm)``) in fractional space ``[B, A, 3]``. The encoder returns a
  per-atom equivariant vector ``v`` (irrep 1o, Cartesian, Å^-1-like); with positions ``x = F L`` the chain rule
  gives ``d/dF = L d/dx``, i.e. ``s_F = v L^T`` (row vectors), divided by ``V^(1/3)`` to keep it O(1). Rotating
  the cell (``L -> L Q^T``) rotates ``v -> v Q^T`` and leaves ``s_F`` unchanged. We use the equivariant 1o output
  rather than DiffCSP's invariant edge coefficients times ``(F_j - F_i)`` because the shared encoder already
  produces 1o features from Cartesian edge vectors, and this form needs no fully connected graph.
* lattice epsilon ``[B, 6]`` from pooled invariant (0e) features: rotation invariant.
* species output ``[B, A, K]`` from per-atom invariant features: logits of the clean species (absorbing) or the
  epsilon of the relaxed one-hot (gaussian).

Models conditioned on properties (``config.properties``, classifier-free guidance) also take ``props [B, P]``
(standardised values) and ``props_mask [B, P]`` (1 = given, 0 = hidden); both go into the conditioning scalars.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.graph import dense_graph
from atomsmith.generators.diffusion.schedules import time_features
from atomsmith.graphs.neighbors_jax import NeighborSpec
from atomsmith.nn.encoder import Encoder


def neighbor_spec(config: DiffusionConfig) -> NeighborSpec:
    return NeighborSpec(float(config.encoder.cutoff), int(config.max_edges_per_cell), tuple(config.n_images))


class ScoreNetwork(nn.Module):
    """See module docstring. Returns ``(coord_score [B,A,3], lattice_eps [B,6], species_eps [B,A,K], overflow [B])``."""

    config: DiffusionConfig

    @nn.compact
    def __call__(self, frac: jax.Array, lattice: jax.Array, species: jax.Array, atom_mask: jax.Array,
                 t: jax.Array, csp: jax.Array, props: jax.Array | None = None, props_mask: jax.Array | None = None):
        cfg = self.config
        b, a, _ = frac.shape
        k, c = cfg.n_species, cfg.species_channels
        assert lattice.shape == (b, 3, 3) and species.shape == (b, a, c) and atom_mask.shape == (b, a)
        z = cfg.lattice.encode(lattice)  # [B, 6] invariant
        parts = [time_features(t), csp[:, None].astype(frac.dtype), z]
        n_props = len(cfg.properties)
        if n_props:  # standardised values (0 when hidden) and present flags: the unconditional model hides all
            if props is None:
                props = jnp.zeros((b, n_props), frac.dtype)
                props_mask = jnp.zeros((b, n_props), frac.dtype)
            m = props_mask.astype(frac.dtype)
            parts += [jnp.where(m > 0, props, 0.0) * m, m]
        cond = jnp.concatenate(parts, axis=-1)
        graph, overflow = dense_graph(frac, lattice, atom_mask, neighbor_spec(cfg))
        mask = atom_mask.reshape(-1)[:, None]
        feats = Encoder(cfg.encoder, name="encoder")(graph, species=species.reshape(b * a, c) * mask,
                                                      conditioning=cond)
        vec = e3nn.flax.Linear("1x1o", name="coord_head")(feats).array.reshape(b, a, 3)
        scale = jnp.abs(jnp.linalg.det(lattice)) ** (1.0 / 3.0)
        coord = jnp.einsum("bai,bji->baj", vec, lattice) / scale[:, None, None]
        scalars = feats.filter(keep="0e").array
        h = jnp.concatenate([scalars, cond[graph.node_graph]], axis=-1)
        h = nn.silu(nn.Dense(cfg.head_hidden, name="node_mlp")(h))
        species_eps = nn.Dense(k, name="species_head")(h).reshape(b, a, k)
        m = atom_mask[..., None].astype(frac.dtype)
        pooled = jnp.sum(h.reshape(b, a, -1) * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)
        g = nn.silu(nn.Dense(cfg.head_hidden, name="lattice_mlp")(jnp.concatenate([pooled, cond], axis=-1)))
        lattice_eps = nn.Dense(6, name="lattice_head")(g)
        return coord * m, lattice_eps, species_eps * m, overflow
