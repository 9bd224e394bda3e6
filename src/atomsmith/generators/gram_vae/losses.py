"""Training objective of the Gram VAE: reconstruction error of normalised Gram entries plus ``sum_j KL``.

Reference loss per environment: ``sum_f (G'_f - G~'_f)^2 + kl_weight * sum_j KL(q_j(z|G) || N(0, 1))`` with ``f``
running over the ``n (n + 1) / 2`` normalised upper-triangle entries and the neighbour labels as given (after the
permutation augmentation, the decoder must reproduce the permuted labels).

``shell-perm`` loss: the minimum of the same squared error over relabellings ``P`` that permute neighbours only
inside distance-ordered blocks (``config.shells``), ``min_P sum_f (G~'_f - (P G P^T)'_f)^2``, computed exactly
over all such permutations (576 for blocks 4 + 4). The decoder is then free to emit neighbours in any order
within a block, and the latent does not have to encode an arbitrary labelling.

No eigendecomposition anywhere: both losses are on Gram matrices (see representation.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.environments.shells import shell_permutations
from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.gram_vae.network import GramVAENetwork, decoded_features, encoder_inputs, posterior, prior
from atomsmith.generators.gram_vae.representation import GramNormalizer, gram_matrix


def random_relabel(key: jax.Array, batch: int, n: int, mode: str, shells: tuple[int, ...]) -> jax.Array:
    """``[batch, n]`` random permutations of neighbour labels: all labels, only inside blocks, or none."""
    if mode == "none":
        return jnp.broadcast_to(jnp.arange(n), (batch, n))
    keys = jax.random.split(key, batch)
    if mode == "all":
        return jax.vmap(lambda k: jax.random.permutation(k, n))(keys)
    parts, start = [], 0
    for i, size in enumerate(shells):
        sub = jax.vmap(lambda k, s=start, m=size: s + jax.random.permutation(k, m))(
            jax.vmap(lambda k, j=i: jax.random.fold_in(k, j))(keys))
        parts.append(sub)
        start += size
    return jnp.concatenate(parts, axis=1)


def permute_neighbors(vectors: jax.Array, labels: jax.Array) -> jax.Array:
    """``vectors [B, n, 3]`` reordered by ``labels [B, n]``."""
    return jnp.take_along_axis(vectors, labels[:, :, None], axis=1)


def reconstruction_error(config: GramVAEConfig, normalizer: GramNormalizer, predicted: jax.Array,
                         target_gram: jax.Array) -> jax.Array:
    """Per-environment squared error ``[B]`` of normalised Gram features.

    Args:
      predicted: ``[B, F]`` normalised packed features decoded by the model.
      target_gram: ``[B, n, n]`` Å^2 target Gram matrices (distance-ordered for ``shell-perm``).
    """
    target = normalizer.normalize(target_gram)  # [B, F]
    if config.loss == "gram":
        return jnp.sum((predicted - target) ** 2, axis=-1)
    # min over relabellings P of |pred - t_P|^2 = |pred|^2 + |t|^2 - 2 max_P pred . t_P (|t_P| = |t| since a
    # relabelling permutes diagonal entries among themselves and off-diagonal ones among themselves). The best P
    # is found without gradients; the loss is then the plain squared error against t_P* (same value, and the
    # gradient of a minimum is the gradient of its active branch).
    # (a dense one-hot contraction: XLA's CPU gather of [B, P, F] was ~15x slower when fused into this graph)
    onehot = jnp.asarray(permutation_matrices(config.n_neighbors, config.shells))  # [P, F, F]
    t, pred = jax.lax.stop_gradient(target), jax.lax.stop_gradient(predicted)
    outer = (pred[:, :, None] * t[:, None, :]).reshape(len(t), -1)  # [B, F*F]
    best = jnp.argmax(outer @ onehot.reshape(len(onehot), -1).T, axis=1)  # [B]
    chosen = jnp.einsum("bfg,bg->bf", onehot[best], t)
    return jnp.sum((predicted - chosen) ** 2, axis=-1)


@functools.lru_cache(maxsize=16)
def permutation_matrices(n: int, shells: tuple[int, ...]) -> np.ndarray:
    """``[P, F, F]`` float32 one-hot: ``features(P G P^T) = M_P @ features(G)`` (see :func:`permuted_feature_index`)."""
    index = permuted_feature_index(n, shells)
    out = np.zeros(index.shape + (index.shape[1],), np.float32)
    np.put_along_axis(out, index[:, :, None], 1.0, axis=2)
    return out


@functools.lru_cache(maxsize=16)
def permuted_feature_index(n: int, shells: tuple[int, ...]) -> np.ndarray:
    """``[P, F]``: packed feature ``f = (i, j)`` of ``P G P^T`` is packed feature ``index[p, f]`` of ``G``, for every
    within-block relabelling ``P`` of :func:`shell_permutations` (``(P G P^T)_ij = G_{p_i p_j}``)."""
    perms = shell_permutations(shells)
    i, j = np.triu_indices(n)
    position = np.full((n, n), -1, np.int64)
    position[i, j] = np.arange(len(i))
    position[j, i] = np.arange(len(i))
    return position[perms[:, i], perms[:, j]].astype(np.int32)


def make_loss_fn(config: GramVAEConfig, normalizer: GramNormalizer, coord_scale: float):
    """``loss_fn(params, vectors [B, n, 3] Å distance-ordered, key) -> (loss, metrics)`` for the training loop."""
    net = GramVAENetwork(config, coord_scale)
    p_z = prior(config.latent_dim)

    def loss_fn(params, vectors: jax.Array, key: jax.Array):
        b, n, _ = vectors.shape
        k_aug, k_z = jax.random.split(key)
        labels = random_relabel(k_aug, b, n, config.augment, config.shells)
        shown = permute_neighbors(vectors, labels)
        inputs = encoder_inputs(config, normalizer, shown)
        mean, log_std = net.apply({"params": params}, inputs, method=GramVAENetwork.encode)
        q = posterior(mean, log_std)
        z = q.sample(seed=k_z)
        kl = q.kl_divergence(p_z)  # [B], summed over latent dimensions
        decoded = net.apply({"params": params}, z, method=GramVAENetwork.decode)
        predicted = decoded_features(config, normalizer, decoded)
        # the reference reproduces the labels it was shown; the permutation-invariant loss compares with the
        # distance-ordered environment (its blocks are defined in that order)
        target = gram_matrix(shown if config.loss == "gram" else vectors)
        recon = reconstruction_error(config, normalizer, predicted, target)
        loss = jnp.mean(recon + config.kl_weight * kl)
        return loss, {"recon": jnp.mean(recon), "kl": jnp.mean(kl)}

    return loss_fn


def make_eval_fn(config: GramVAEConfig, normalizer: GramNormalizer, coord_scale: float, vectors: np.ndarray,
                 batch_size: int = 2048, seed: int = 0):
    """``params -> {"loss", "recon", "kl", "recon_mean"}`` on fixed validation environments (fixed noise keys).
    ``recon_mean`` is the reconstruction error decoding the posterior mean (no augmentation)."""
    net = GramVAENetwork(config, coord_scale)
    loss_fn = make_loss_fn(config, normalizer, coord_scale)
    chunks = [jnp.asarray(vectors[i:i + batch_size], jnp.float32) for i in range(0, len(vectors), batch_size)]

    @jax.jit
    def one(params, chunk, key):
        loss, metrics = loss_fn(params, chunk, key)
        mean, _ = net.apply({"params": params}, encoder_inputs(config, normalizer, chunk),
                            method=GramVAENetwork.encode)
        predicted = decoded_features(config, normalizer,
                                     net.apply({"params": params}, mean, method=GramVAENetwork.decode))
        recon_mean = jnp.mean(reconstruction_error(config, normalizer, predicted, gram_matrix(chunk)))
        return loss, metrics["recon"], metrics["kl"], recon_mean

    def eval_fn(params) -> dict[str, float]:
        totals = np.zeros(4)
        for i, chunk in enumerate(chunks):
            out = one(params, chunk, jax.random.PRNGKey(seed + i))
            totals += np.array([float(v) for v in out]) * len(chunk)
        totals /= max(sum(len(c) for c in chunks), 1)
        return dict(zip(("loss", "recon", "kl", "recon_mean"), totals.tolist()))

    return eval_fn
