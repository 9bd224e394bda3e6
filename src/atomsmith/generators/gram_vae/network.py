"""The Gram-VAE networks: an encoder of an environment to a diagonal Gaussian q(z|G), and an MLP decoder of z to
either normalised Gram features (reference) or coordinates (compared through their Gram matrix).

Encoders:

* ``"mlp"`` (reference): an MLP on the normalised upper-triangle Gram entries in distance order. It sees only
  Gram entries, so it is invariant to rotations, reflections and translations, but not to relabelling of
  neighbours (hence the permutation augmentation of the reference study).
* ``"shared"``: the shared equivariant :class:`atomsmith.nn.encoder.Encoder` on the environment as a cluster
  (centre + neighbours, all pairs within the encoder cutoff as edges), pooled over its invariant (0e) features.
  Invariant to O(3) *and* to relabelling by construction. No private message passing: it is the one shared
  encoder.
"""

from __future__ import annotations

import distrax
import numpy as np
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.environments.graph import cluster_graph  # noqa: F401  (re-exported)
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.generators.gram_vae.representation import GramNormalizer, gram_matrix, n_features
from atomsmith.generators.environments.latent_prior import prior  # noqa: F401  (re-exported)

_ACT = {"tanh": jnp.tanh, "silu": jax.nn.silu, "relu": jax.nn.relu, "gelu": jax.nn.gelu}


def shared_encoder_config(config: GramVAEConfig) -> EncoderConfig:
    """The shared encoder's settings for environments: every pair of a 4 Å environment within 6 Å is an edge."""
    return EncoderConfig(irreps_hidden=config.encoder_irreps, irreps_out=None, n_layers=config.encoder_layers,
                         sh_lmax=2, cutoff=1.5 * config.r_cut, n_basis=8, radial_hidden=(32,),
                         avg_num_neighbors=float(config.n_neighbors))


class GramVAENetwork(nn.Module):
    """``encode(inputs) -> (mean [B, d], log_std [B, d])`` with inputs the normalised Gram features ``[B, F]``
    (``mlp`` encoder) or the environments ``[B, n, 3]`` Å (``shared`` encoder); ``decode(z [B, d]) -> [B, F]``
    (gram decoder) or ``[B, n, 3]`` Å (coords decoder). ``F = n (n + 1) / 2``. ``coord_scale`` (Å) sets the unit of
    the coordinate output (the rms neighbour distance of the training data)."""

    config: GramVAEConfig
    coord_scale: float = 3.0

    def setup(self) -> None:
        cfg = self.config
        if cfg.encoder == "shared":
            self.shared = Encoder(shared_encoder_config(cfg), name="shared_encoder")
        self.enc_layers = [nn.Dense(h, name=f"enc_{i}") for i, h in enumerate(cfg.hidden)]
        self.enc_mean = nn.Dense(cfg.latent_dim, name="enc_mean")
        self.enc_log_std = nn.Dense(cfg.latent_dim, name="enc_log_std")
        self.dec_layers = [nn.Dense(h, name=f"dec_{i}") for i, h in enumerate(cfg.decoder_hidden)]
        out = n_features(cfg.n_neighbors) if cfg.decoder == "gram" else 3 * cfg.n_neighbors
        self.dec_out = nn.Dense(out, name="dec_out")

    def encode(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = _ACT[self.config.activation]
        if self.config.encoder == "shared":
            b, n, _ = inputs.shape
            assert n == self.config.n_neighbors, inputs.shape
            feats = self.shared(cluster_graph(inputs)).filter(keep="0e").array.reshape(b, n + 1, -1)
            h = jnp.concatenate([feats[:, 0], jnp.mean(feats[:, 1:], axis=1)], axis=-1)  # centre + neighbour mean
        else:
            assert inputs.shape[-1] == n_features(self.config.n_neighbors), inputs.shape
            h = inputs
        for layer in self.enc_layers:
            h = act(layer(h))
        return self.enc_mean(h), jnp.clip(self.enc_log_std(h), -10.0, 5.0)

    def decode(self, z: jax.Array) -> jax.Array:
        act = _ACT[self.config.activation]
        h = z
        for layer in self.dec_layers:
            h = act(layer(h))
        out = self.dec_out(h)
        if self.config.decoder == "coords":
            out = out.reshape(out.shape[:-1] + (self.config.n_neighbors, 3)) * self.coord_scale
        return out

    def __call__(self, inputs: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        mean, log_std = self.encode(inputs)
        return mean, log_std, self.decode(z)


def posterior(mean: jax.Array, log_std: jax.Array) -> distrax.MultivariateNormalDiag:
    """q(z|G): a diagonal Gaussian ``[B, d]``."""
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def decoded_features(config: GramVAEConfig, normalizer: GramNormalizer, decoded: jax.Array) -> jax.Array:
    """Normalised packed Gram features ``[B, F]`` of a decoder output (identity for the gram decoder; the Gram
    matrix ``Y Y^T`` of the coordinates for the coords decoder)."""
    if config.decoder == "gram":
        return decoded
    return normalizer.normalize(gram_matrix(decoded))


def init_params(config: GramVAEConfig, key: jax.Array, coord_scale: float = 3.0):
    """Initial parameters of :class:`GramVAENetwork` (float32)."""
    net = GramVAENetwork(config, coord_scale)
    if config.encoder == "shared":
        directions = np.random.default_rng(0).normal(size=(1, config.n_neighbors, 3))
        x = jnp.asarray(directions / np.linalg.norm(directions, axis=-1, keepdims=True) * 2.5, jnp.float32)
    else:
        x = jnp.zeros((1, n_features(config.n_neighbors)), jnp.float32)
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    return net.init(key, x, z)["params"]


def encoder_inputs(config: GramVAEConfig, normalizer: GramNormalizer, vectors: jax.Array) -> jax.Array:
    """What :meth:`GramVAENetwork.encode` takes for environments ``[B, n, 3]``: normalised Gram features (mlp) or
    the vectors themselves (shared encoder)."""
    if config.encoder == "shared":
        return vectors
    return normalizer.normalize(gram_matrix(vectors))
