"""The Gram-VAE networks: an MLP encoder of normalised Gram features to a diagonal Gaussian q(z|G), and an MLP
decoder of z to either normalised Gram features (reference) or coordinates (compared through their Gram matrix).

The encoder sees only Gram entries, so everything it outputs is invariant to rotations, reflections and
translations of the environment. No message passing here: the model is a plain MLP on an invariant
representation, as in the reference study.
"""

from __future__ import annotations

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.gram_vae.representation import GramNormalizer, gram_matrix, n_features

_ACT = {"tanh": jnp.tanh, "silu": jax.nn.silu, "relu": jax.nn.relu, "gelu": jax.nn.gelu}


class GramVAENetwork(nn.Module):
    """``encode(features [B, F]) -> (mean [B, d], log_std [B, d])``; ``decode(z [B, d]) -> [B, F]`` (gram decoder)
    or ``[B, n, 3]`` Å (coords decoder). ``F = n (n + 1) / 2``. ``coord_scale`` (Å) sets the unit of the coordinate
    output (the rms neighbour distance of the training data)."""

    config: GramVAEConfig
    coord_scale: float = 3.0

    def setup(self) -> None:
        cfg = self.config
        self.enc_layers = [nn.Dense(h, name=f"enc_{i}") for i, h in enumerate(cfg.hidden)]
        self.enc_mean = nn.Dense(cfg.latent_dim, name="enc_mean")
        self.enc_log_std = nn.Dense(cfg.latent_dim, name="enc_log_std")
        self.dec_layers = [nn.Dense(h, name=f"dec_{i}") for i, h in enumerate(cfg.decoder_hidden)]
        out = n_features(cfg.n_neighbors) if cfg.decoder == "gram" else 3 * cfg.n_neighbors
        self.dec_out = nn.Dense(out, name="dec_out")

    def encode(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        assert features.shape[-1] == n_features(self.config.n_neighbors), features.shape
        act = _ACT[self.config.activation]
        h = features
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

    def __call__(self, features: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        mean, log_std = self.encode(features)
        return mean, log_std, self.decode(z)


def posterior(mean: jax.Array, log_std: jax.Array) -> distrax.MultivariateNormalDiag:
    """q(z|G): a diagonal Gaussian ``[B, d]``."""
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def prior(latent_dim: int, dtype=jnp.float32) -> distrax.MultivariateNormalDiag:
    """p(z) = N(0, I_d)."""
    return distrax.MultivariateNormalDiag(jnp.zeros((latent_dim,), dtype), jnp.ones((latent_dim,), dtype))


def decoded_features(config: GramVAEConfig, normalizer: GramNormalizer, decoded: jax.Array) -> jax.Array:
    """Normalised packed Gram features ``[B, F]`` of a decoder output (identity for the gram decoder; the Gram
    matrix ``Y Y^T`` of the coordinates for the coords decoder)."""
    if config.decoder == "gram":
        return decoded
    return normalizer.normalize(gram_matrix(decoded))


def init_params(config: GramVAEConfig, key: jax.Array, coord_scale: float = 3.0):
    """Initial parameters of :class:`GramVAENetwork` (float32)."""
    net = GramVAENetwork(config, coord_scale)
    f = jnp.zeros((1, n_features(config.n_neighbors)), jnp.float32)
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    return net.init(key, f, z)["params"]
