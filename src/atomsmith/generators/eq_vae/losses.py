"""Training objective of the equivariant VAE, invariant to the order of the neighbours without augmentation.

Per environment, with ``X`` the neighbours (distance order), ``Y(z)`` the canonical decoding, ``X~ = Y R^T`` the
decoding in the encoder's frame, ``c_i`` / ``c_0`` the neighbour / centre species, ``s`` = ``coord_scale``:

    loss = w_f min_P sum_i [ |X~_i - X_P(i)|^2 + w_s CE(logits_i, c_P(i)) ]         (frame term, Å^2)
         + w_g min_P' sum_ij ( (Y Y^T)_ij - (X X^T)_P'(i)P'(j) )^2 / s^2             (shape term, Å^2)
         + w_h min_{A: det A = det R} sum_i |y_i A - X_P'(i)|^2                      (handedness term, Å^2)
         + w_s CE(logits_0, c_0) + beta KL(q || N(0, I))

``P`` runs over every relabelling that permutes neighbours only inside consecutive distance blocks
(``config.shells``, 4! x 4! = 576 for 4 + 4), found exactly by enumeration, without gradients; each term is then
the plain error against its best relabelling (the gradient of a minimum is that of its active branch). The frame
term needs no alignment (the frame is equivariant), the shape term is O(3)-invariant (Gram matrices, no
eigendecomposition), so the loss is invariant to rotations, reflections and neighbour order (within shells) by
construction, without augmentation. The handedness term (off by default) targets what the frame term learns badly
while the frame's rotation is still poor: the decoder's handedness that goes with the frame's determinant (which
then gets a straight-through gradient, :func:`gram_schmidt_frame`). Measured on a-Si it did not help (right
handedness for 55 % instead of 52 % of chiral environments, worse reconstructions and samples).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.eq_vae.config import EqVAEConfig
from atomsmith.generators.eq_vae.network import EqVAENetwork, posterior, prior, to_input_frame
from atomsmith.generators.environments.shells import shell_permutations


def matching_cost(config: EqVAEConfig, decoded: jax.Array, logits: jax.Array, target: jax.Array,
                  species: jax.Array) -> jax.Array:
    """``[B, n, n]`` cost of giving decoded slot ``i`` target neighbour ``j``: squared distance (Å^2) plus
    ``species_weight`` x cross-entropy of the slot's species logits ``[B, n, S]`` at the target species
    ``[B, n]`` (indices into ``config.species``)."""
    d2 = jnp.sum((decoded[:, :, None, :] - target[:, None, :, :]) ** 2, axis=-1)
    if config.n_species == 1:
        return d2
    logp = jax.nn.log_softmax(logits, axis=-1)  # [B, n, S]
    ce = -jnp.take_along_axis(logp, jnp.broadcast_to(species[:, None, :], d2.shape), axis=-1)
    return d2 + config.species_weight * ce


def matched_error(config: EqVAEConfig, cost: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Minimum over within-shell relabellings of ``sum_i cost[i, P(i)]``: ``(value [B], best P [B, n])``."""
    perms = jnp.asarray(shell_permutations(config.shells))  # [P, n]
    n = cost.shape[-1]
    rows = np.broadcast_to(np.arange(n), perms.shape)
    totals = jnp.sum(jax.lax.stop_gradient(cost)[:, rows, perms], axis=-1)  # [B, P]
    best = perms[jnp.argmin(totals, axis=1)]  # [B, n]
    value = jnp.sum(jnp.take_along_axis(cost, best[:, :, None], axis=2)[..., 0], axis=-1)
    return value, best


def shape_error(config: EqVAEConfig, coords: jax.Array, target: jax.Array, coord_scale: float
                ) -> tuple[jax.Array, jax.Array]:
    """Minimum over within-shell relabellings of the squared Gram-matrix error between canonical decodings
    ``coords`` and ``target`` ``[B, n, 3]`` (Å), divided by ``coord_scale^2`` (so in Å^2): ``(error [B], the
    target relabelled by the best relabelling [B, n, 3])``."""
    perms = jnp.asarray(shell_permutations(config.shells))  # [P, n]
    g_pred = jnp.einsum("bid,bjd->bij", coords, coords) / coord_scale
    g_true = jnp.einsum("bid,bjd->bij", target, target) / coord_scale
    permuted = g_true[:, perms[:, :, None], perms[:, None, :]]  # [B, P, n, n]
    totals = jnp.sum((jax.lax.stop_gradient(g_pred)[:, None] - permuted) ** 2, axis=(2, 3))  # [B, P]
    best = jnp.argmin(totals, axis=1)
    chosen = jnp.take_along_axis(permuted, best[:, None, None, None], axis=1)[:, 0]
    matched = jnp.take_along_axis(target, perms[best][:, :, None], axis=1)
    return jnp.sum((g_pred - chosen) ** 2, axis=(1, 2)), matched


def handed_alignment_error(coords: jax.Array, matched: jax.Array, handedness: jax.Array) -> jax.Array:
    """``[B]`` squared error (Å^2) of canonical decodings ``coords`` against ``matched`` targets ``[B, n, 3]`` after
    the best orthogonal map of determinant ``handedness`` ``[B]`` (±1): Kabsch restricted to one coset of SO(3),
    without gradient through the SVD (envelope theorem)."""
    h = jnp.einsum("bni,bnj->bij", jax.lax.stop_gradient(coords), jax.lax.stop_gradient(matched))
    u, _, vt = jnp.linalg.svd(h)
    d = jnp.sign(jnp.linalg.det(u @ vt)) * handedness
    fix = jnp.concatenate([jnp.ones_like(u[:, :2, 0]), d[:, None]], axis=1)  # [B, 3]
    a = jax.lax.stop_gradient((u * fix[:, None, :]) @ vt)  # coords @ a ~ matched, det a = handedness
    return jnp.sum((jnp.einsum("bni,bij->bnj", coords, a) - matched) ** 2, axis=(1, 2))


def environment_loss(config: EqVAEConfig, net: EqVAENetwork, params, batch: dict, z_key: jax.Array | None
                     ) -> dict[str, jax.Array]:
    """Per-environment terms ``[B]``: ``recon`` (Å^2, matched in the frame), ``shape`` (Å^2, Gram matrices),
    ``hand`` (Å^2, after the best rotation of the frame's handedness),
    ``species`` (nats), ``kl`` (nats), and the per-atom RMS error ``rmsd`` (Å) of the matched coordinates in the
    encoder's frame. ``z_key=None`` decodes the posterior mean."""
    vectors, numbers, species = batch["vectors"], batch["numbers"], batch["species"]
    mean, log_std, frame = net.apply({"params": params}, vectors, numbers, method=EqVAENetwork.encode)
    q = posterior(mean, log_std)
    z = mean if z_key is None else q.sample(seed=z_key)
    coords, centre_logits, logits = net.apply({"params": params}, z, method=EqVAENetwork.decode)
    decoded = to_input_frame(coords, frame)
    cost = matching_cost(config, decoded, logits, vectors, species[:, 1:])
    total, best = matched_error(config, cost)
    d2 = jnp.sum((decoded - jnp.take_along_axis(vectors, best[:, :, None], axis=1)) ** 2, axis=-1)  # [B, n]
    recon = jnp.sum(d2, axis=-1)
    centre_ce = -jnp.take_along_axis(jax.nn.log_softmax(centre_logits, -1), species[:, :1], axis=-1)[:, 0]
    species_term = (total - recon) + config.species_weight * centre_ce
    shape, matched = shape_error(config, coords, vectors, net.coord_scale)
    hand = handed_alignment_error(coords, matched, jax.lax.stop_gradient(jnp.linalg.det(frame)))
    return {"recon": recon, "shape": shape, "hand": hand, "species": species_term, "kl": q.kl_divergence(prior(config.latent_dim)),
            "rmsd": jnp.sqrt(jnp.mean(d2, axis=-1))}


def total_loss(config: EqVAEConfig, terms: dict[str, jax.Array]) -> jax.Array:
    """``[B]`` the weighted sum of the terms of :func:`environment_loss` (module docstring)."""
    return (config.frame_weight * terms["recon"] + config.shape_weight * terms["shape"]
            + config.hand_weight * terms["hand"] + terms["species"] + config.kl_weight * terms["kl"])


def make_loss_fn(config: EqVAEConfig, coord_scale: float):
    """``loss_fn(params, batch, key) -> (loss, metrics)`` for :func:`atomsmith.training.loop.fit`; ``batch`` holds
    ``vectors [B, n, 3]`` Å (distance order), ``numbers [B, n + 1]`` atomic numbers and ``species [B, n + 1]``
    vocabulary indices (centre first)."""
    net = EqVAENetwork(config, coord_scale)

    def loss_fn(params, batch, key):
        terms = environment_loss(config, net, params, batch, key)
        loss = jnp.mean(total_loss(config, terms))
        return loss, {k: jnp.mean(v) for k, v in terms.items()}

    return loss_fn


def make_eval_fn(config: EqVAEConfig, coord_scale: float, data: dict, batch_size: int = 1024, seed: int = 0):
    """``params -> {"loss", "recon", "shape", "hand", "species", "kl", "rmsd_mean"}`` on fixed validation environments (fixed
    noise keys); ``rmsd_mean`` (Å) decodes the posterior mean in the input frame (no alignment)."""
    net = EqVAENetwork(config, coord_scale)
    m = len(data["vectors"])
    chunks = [{k: jnp.asarray(v[i:i + batch_size]) for k, v in data.items()} for i in range(0, m, batch_size)]

    @jax.jit
    def one(params, chunk, key):
        terms = environment_loss(config, net, params, chunk, key)
        loss = total_loss(config, terms)
        at_mean = environment_loss(config, net, params, chunk, None)
        return (jnp.sum(loss), jnp.sum(terms["recon"]), jnp.sum(terms["shape"]), jnp.sum(terms["hand"]),
                jnp.sum(terms["species"]), jnp.sum(terms["kl"]), jnp.sum(at_mean["rmsd"]))

    names = ("loss", "recon", "shape", "hand", "species", "kl", "rmsd_mean")

    def eval_fn(params) -> dict[str, float]:
        totals = np.zeros(len(names))
        for i, chunk in enumerate(chunks):
            totals += np.array([float(v) for v in one(params, chunk, jax.random.PRNGKey(seed + i))])
        return dict(zip(names, (totals / max(m, 1)).tolist()))

    return eval_fn
