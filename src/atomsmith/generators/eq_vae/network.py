"""Networks of the equivariant VAE: environment -> (invariant Gaussian latent, O(3) frame); latent -> canonical
coordinates and species.

Encoder: the shared :class:`atomsmith.nn.encoder.Encoder` on the environment as a cluster (centre + neighbours,
:func:`atomsmith.generators.environments.graph.cluster_graph`; species one-hot at the input). Its per-atom features
are pooled as ``[centre, mean over neighbours]`` (permutation invariant), then

* **frame** (``config.frame = "moments"``): Gram-Schmidt on the fixed moment vectors ``u, T u, T^2 u``
  (:func:`moment_vectors`), nothing learned;
* **frame** (``config.frame = "learned"``): three ``1o`` vectors ``v_k``, each an equivariant linear map of the
  pooled features plus an attention-weighted mean of the neighbour vectors ``sum_j softmax_j(a_k(h_j)) x_j`` (scores ``a_k`` from the
  neighbours' invariant encoder features ``h_j``: anchored on real atoms, hence easy to learn); Gram-Schmidt on
  ``v1, v2`` gives ``e1, e2``, and ``e3 = s (e1 x e2)`` with the handedness ``s = sign(v3 . (e1 x e2))`` (the same
  as Gram-Schmidt on ``v3``). ``R = [e1 e2 e3]`` (columns) is orthogonal with ``det R = s``. For any ``Q`` in O(3) the pooled
  vectors become ``Q v_k``, so ``R -> Q R`` (the cross product picks up ``det Q``, and so does ``s``): the frame
  is O(3)-equivariant *including reflections*, which is what lets the model tell mirror images apart;
* **latent**: the invariant (0e) features together with the ``1o`` features expressed in the frame (``R^T v``,
  invariant under O(3) because both rotate together) and the Gram matrix of the distance-ordered neighbours
  (``n (n + 1) / 2`` entries / ``coord_scale^2``: exactly O(3)-invariant, invariant to relabelling except at exact
  distance ties) feed an MLP to the mean and log-std of a diagonal Gaussian; with the ``"moments"`` frame also
  the distance-ordered neighbours expressed in the frame (``X R / coord_scale``, O(3) invariant).

Decoder: an MLP from z to canonical coordinates ``Y`` ``[n, 3]`` (unit ``coord_scale`` Å), plus species logits
of the centre and of every neighbour slot. Environments in the input frame are ``X = Y R^T`` (row ``i`` is
``R y_i``), so the decoder is equivariant: encoding ``X Q^T`` gives the same z and frame ``Q R``, hence the
decoding ``Y R^T Q^T``.
"""

from __future__ import annotations

import distrax
import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.environments.graph import cluster_graph
from atomsmith.generators.eq_vae.config import EqVAEConfig
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.generators.environments.latent_prior import prior  # noqa: F401  (re-exported)

_EPS = 1e-6
_HAND_TEMPERATURE = 0.2  # width of the soft sign whose gradient trains the handedness (straight-through)


def shared_encoder_config(config: EqVAEConfig) -> EncoderConfig:
    """The shared encoder's settings for environments (every pair within ``encoder_cutoff`` is a message)."""
    return EncoderConfig(irreps_hidden=config.encoder_irreps, irreps_out=None, n_layers=config.encoder_layers,
                         sh_lmax=2, cutoff=config.encoder_cutoff, n_basis=8, radial_hidden=(32,),
                         avg_num_neighbors=float(config.n_neighbors))


def _normalize(v: jax.Array) -> jax.Array:
    """``v / sqrt(|v|^2 + eps^2)``: smooth and NaN-free (finite gradients) even for a vanishing vector."""
    return v / jnp.sqrt(jnp.sum(v ** 2, axis=-1, keepdims=True) + _EPS ** 2)


def gram_schmidt_frame(vectors: jax.Array, straight_through: bool = False) -> jax.Array:
    """``[..., 3, 3]`` rows ``v1, v2, v3`` -> orthogonal ``R`` ``[..., 3, 3]`` with columns ``e1, e2, e3``.

    ``e1 = v1 / |v1|``, ``e2`` the normalised part of ``v2`` orthogonal to ``e1``, ``e3 = sign(v3 . e1 x e2) e1 x e2``
    (``det R = ±1``). Equivariant under all of O(3): ``frame(v Q^T) = Q frame(v)``. Norms are NaN-safe
    (gradients stay finite for vanishing vectors). The sign is exact in value; it has no gradient, or with
    ``straight_through`` the gradient of ``tanh(cos(v3, e1 x e2) / 0.2)``.
    """
    v1, v2, v3 = vectors[..., 0, :], vectors[..., 1, :], vectors[..., 2, :]
    e1 = _normalize(v1)
    e2 = _normalize(v2 - jnp.sum(v2 * e1, axis=-1, keepdims=True) * e1)
    c = jnp.cross(e1, e2)
    p = jnp.sum(v3 * c, axis=-1, keepdims=True) / jnp.sqrt(jnp.sum(v3 ** 2, axis=-1, keepdims=True) + _EPS ** 2)
    sign = jax.lax.stop_gradient(jnp.where(p >= 0.0, 1.0, -1.0))
    if straight_through:  # value exactly +-1, gradient of the soft sign
        soft = jnp.tanh(p / _HAND_TEMPERATURE)
        sign = sign + soft - jax.lax.stop_gradient(soft)
    return jnp.stack([e1, e2, sign * c], axis=-1)


def moment_vectors(vectors: jax.Array) -> jax.Array:
    """``[..., n, 3]`` neighbour vectors -> ``[..., 3, 3]`` rows ``u, T u, T^2 u`` with the dipole ``u = sum_a r_a``
    and the second moment ``T = sum_a r_a r_a^T`` (units of the input).

    Polynomial in the positions, hence smooth; invariant to the order of the neighbours; O(3)-equivariant
    (``r -> Q r`` gives ``u -> Q u``, ``T -> Q T Q^T``, so every row ``-> Q row``). Gram-Schmidt on them
    (:func:`gram_schmidt_frame`) is a frame whose handedness is the sign of the pseudo-scalar
    ``det[u, T u, T^2 u]`` (unchanged by adding multiples of the identity to ``T``, so only its anisotropy counts).
    Degenerate only where ``u`` vanishes or is an eigenvector of ``T`` (e.g. a perfectly symmetric environment,
    which has no equivariant frame at all); no eigendecomposition anywhere.
    """
    u = jnp.sum(vectors, axis=-2)  # [..., 3]
    t = jnp.einsum("...ai,...aj->...ij", vectors, vectors)  # [..., 3, 3]
    tu = jnp.einsum("...ij,...j->...i", t, u)
    ttu = jnp.einsum("...ij,...j->...i", t, tu)
    return jnp.stack([u, tu, ttu], axis=-2)


def species_index(config: EqVAEConfig, numbers: np.ndarray) -> np.ndarray:
    """Atomic numbers ``[...]`` -> indices into ``config.species``; raises ``ValueError`` for unknown elements."""
    numbers = np.asarray(numbers)
    vocab = np.asarray(config.species)
    idx = np.searchsorted(vocab, numbers)
    idx = np.clip(idx, 0, len(vocab) - 1)
    bad = vocab[idx] != numbers
    if np.any(bad):
        raise ValueError(f"elements {sorted(set(numbers[bad].tolist()))} are unknown to this model "
                         f"(it knows atomic numbers {list(config.species)})")
    return idx.astype(np.int32)


class EqVAENetwork(nn.Module):
    """``encode(vectors [B, n, 3] Å, numbers [B, n + 1]) -> (mean [B, d], log_std [B, d], frame [B, 3, 3])``;
    ``decode(z [B, d]) -> (coords [B, n, 3] Å canonical, centre_logits [B, S], neighbor_logits [B, n, S])``
    with ``S = len(config.species)``. ``coord_scale`` (Å) is the unit of the coordinate output."""

    config: EqVAEConfig
    coord_scale: float = 3.0

    def setup(self) -> None:
        cfg = self.config
        self.shared = Encoder(shared_encoder_config(cfg), name="shared_encoder")
        self.to_frame = e3nn.flax.Linear("3x1o", name="to_frame")
        self.frame_scores = nn.Dense(3, name="frame_scores")
        self.enc_layers = [nn.Dense(h, name=f"enc_{i}") for i, h in enumerate(cfg.hidden)]
        self.enc_mean = nn.Dense(cfg.latent_dim, name="enc_mean")
        self.enc_log_std = nn.Dense(cfg.latent_dim, name="enc_log_std")
        self.dec_layers = [nn.Dense(h, name=f"dec_{i}") for i, h in enumerate(reversed(cfg.hidden))]
        self.dec_coords = nn.Dense(3 * cfg.n_neighbors, name="dec_coords")
        self.dec_species = nn.Dense((cfg.n_neighbors + 1) * cfg.n_species, name="dec_species")

    def encode(self, vectors: jax.Array, numbers: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
        cfg = self.config
        b, n, _ = vectors.shape
        assert n == cfg.n_neighbors, vectors.shape
        feats = self.shared(cluster_graph(vectors, numbers))  # [B (n + 1), irreps]
        arr = feats.array.reshape(b, n + 1, -1)
        centre = e3nn.IrrepsArray(feats.irreps, arr[:, 0])
        mean_nb = e3nn.IrrepsArray(feats.irreps, jnp.mean(arr[:, 1:], axis=1))
        both = e3nn.concatenate([centre, mean_nb], axis=-1)  # [B, 2 irreps]
        # three 1o vectors: an equivariant linear map of the pooled features plus an attention-weighted mean of
        # the neighbour vectors themselves (weights from the neighbours' invariant features): both rotate (and
        # reflect) with the input; the second is anchored on real atoms, which makes the frame much easier to learn
        if cfg.frame == "moments":  # fixed, smooth, non-learned (no gradient reaches it)
            frame = gram_schmidt_frame(moment_vectors(vectors / self.coord_scale))  # [B, 3, 3]
        else:
            scores = self.frame_scores(feats.filter(keep="0e").array.reshape(b, n + 1, -1)[:, 1:])  # [B, n, 3]
            attention = jnp.einsum("bnk,bnx->bkx", jax.nn.softmax(scores, axis=1), vectors)  # [B, 3, 3]
            frame = gram_schmidt_frame(self.to_frame(both).array.reshape(b, 3, 3) + attention,
                                       straight_through=cfg.hand_weight > 0)  # [B, 3, 3]
        vec = both.filter(keep="1o").array.reshape(b, -1, 3)  # [B, c, 3]
        in_frame = jnp.einsum("bcx,bxk->bck", vec, frame).reshape(b, -1)  # R^T v: O(3) invariant
        # plus the Gram matrix of the distance-ordered neighbours (the Gram VAE's input; O(3) invariant, and
        # invariant to relabelling except at exact distance ties)
        order = jnp.argsort(jnp.sum(vectors ** 2, axis=-1), axis=1)
        ordered = jnp.take_along_axis(vectors, order[:, :, None], axis=1)
        iu = np.triu_indices(n)
        gram = jnp.einsum("bid,bjd->bij", ordered, ordered)[:, iu[0], iu[1]] / self.coord_scale ** 2
        parts = [both.filter(keep="0e").array, in_frame, gram]
        if cfg.frame == "moments":  # the ordered neighbours in the fixed frame: pose and chirality, O(3) invariant
            parts.append(jnp.einsum("bix,bxk->bik", ordered, frame).reshape(b, -1) / self.coord_scale)
        h = jnp.concatenate(parts, axis=-1)
        for layer in self.enc_layers:
            h = jax.nn.silu(layer(h))
        return self.enc_mean(h), jnp.clip(self.enc_log_std(h), -10.0, 5.0), frame

    def decode(self, z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        cfg = self.config
        h = z
        for layer in self.dec_layers:
            h = jax.nn.silu(layer(h))
        coords = self.dec_coords(h).reshape(z.shape[:-1] + (cfg.n_neighbors, 3)) * self.coord_scale
        logits = self.dec_species(h).reshape(z.shape[:-1] + (cfg.n_neighbors + 1, cfg.n_species))
        return coords, logits[..., 0, :], logits[..., 1:, :]

    def __call__(self, vectors: jax.Array, numbers: jax.Array | None, z: jax.Array):
        return self.encode(vectors, numbers), self.decode(z)


def to_input_frame(coords: jax.Array, frame: jax.Array) -> jax.Array:
    """Canonical coordinates ``[..., n, 3]`` in the frame ``R`` ``[..., 3, 3]``: ``Y R^T`` (row ``i`` = ``R y_i``)."""
    return jnp.einsum("...ik,...xk->...ix", coords, frame)


def posterior(mean: jax.Array, log_std: jax.Array) -> distrax.MultivariateNormalDiag:
    """q(z|X): a diagonal Gaussian ``[B, d]``."""
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def init_params(config: EqVAEConfig, key: jax.Array, coord_scale: float = 3.0):
    """Initial parameters of :class:`EqVAENetwork` (float32)."""
    net = EqVAENetwork(config, coord_scale)
    directions = np.random.default_rng(0).normal(size=(1, config.n_neighbors, 3))
    x = jnp.asarray(directions / np.linalg.norm(directions, axis=-1, keepdims=True) * 0.6 * config.r_cut,
                    jnp.float32)
    numbers = jnp.full((1, config.n_neighbors + 1), config.species[0], jnp.int32)
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    return net.init(key, x, numbers, z)["params"]
