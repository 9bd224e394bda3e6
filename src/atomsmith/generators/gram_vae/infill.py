"""Environment infilling with the Gram VAE: hold ``k`` given neighbours, generate the other ``n - k``.

Latent optimisation (MAP of z given the fixed atoms under the model's own Gaussian likelihood):

    minimise_z   sum_{a <= b} ( G~'(z)_{s(a) s(b)} - F'_ab )^2  +  w * (-log p(z)),   w = KL weight by default

where ``F = X_fix X_fix^T`` is the Gram matrix of the fixed atoms, ``G~(z)`` the decoded Gram matrix, primes denote
the normalisation used in training, ``s`` assigns each fixed atom a decoder slot, and ``p`` is the latent
distribution samples are drawn from (N(0, I), where ``-log p = |z|^2 / 2 + const``, or the fitted latent
mixture). A Gram block matches iff the decoded slots can be rotated (O(3)) exactly onto the fixed atoms, so this
is the alignment-invariant form of "the decoded environment, after optimal alignment, matches the fixed atoms",
and it is differentiated without any eigendecomposition. The assignment ``s`` is discrete: between rounds of Adam
steps on z (jitted ``lax.scan``) we decode, align the fixed atoms to the decoded environment on the host (Kabsch +
Hungarian, O(3)) and update ``s``. Several restarts from the latent distribution per requested sample; the one
with the lowest objective is kept. Finally the decoded environment is mapped onto the fixed atoms by that optimal
alignment; the fixed atoms are returned exactly as given and the unassigned slots are the generated atoms.

The same optimiser with all ``n`` atoms as targets refines a reconstruction (:func:`refine_reconstruction`).

Reflections: the Gram VAE cannot distinguish mirror images (representation.py), so the alignment ranges over
O(3); the generated atoms are placed in the handedness the fixed atoms require.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from atomsmith.generators.environments import ops
from atomsmith.generators.environments.infill import InfillConfig, InfillResult, check_fixed
from atomsmith.generators.environments.model import EnvironmentVAE  # typed by the base: the model imports us
from atomsmith.generators.gram_vae.network import GramVAENetwork
from atomsmith.generators.environments.latent_prior import neg_log_prior_fn



@functools.lru_cache(maxsize=32)
def _optimiser(model: EnvironmentVAE, k: int, steps: int, learning_rate: float, prior_weight: float):
    """Jitted ``(z [C, d], slots [C, k], fixed_n [C or 1, k, k]) -> (z, objective [C])``: ``steps`` Adam steps."""
    net = GramVAENetwork(model.config, model.coord_scale)
    norm = model.normalizer
    eye = jnp.eye(k, dtype=bool)
    iu = np.triu_indices(k)
    tx = optax.adam(learning_rate)
    neg_log_prior = neg_log_prior_fn(model.latent_mixture)

    def decoded_gram(params, z):
        raw = net.apply({"params": params}, z, method=GramVAENetwork.decode)
        if model.config.decoder == "coords":
            return jnp.einsum("cid,cjd->cij", raw, raw)
        return norm.denormalize(raw)

    def objective(z, params, slots, fixed_n):
        g = decoded_gram(params, z)  # [C, n, n]
        sub = jnp.take_along_axis(jnp.take_along_axis(g, slots[:, :, None], axis=1), slots[:, None, :], axis=2)
        sub_n = jnp.where(eye, (sub - norm.mu_diag) / norm.sigma_diag, (sub - norm.mu_off) / norm.sigma_off)
        err = jnp.sum(((sub_n - fixed_n) ** 2)[:, iu[0], iu[1]], axis=-1)
        return err + prior_weight * neg_log_prior(z)

    @jax.jit
    def run(params, z, slots, fixed_n):
        def step(carry, _):
            z, opt = carry
            grads = jax.grad(lambda zz: jnp.sum(objective(zz, params, slots, fixed_n)))(z)
            updates, opt = tx.update(grads, opt, z)
            return (optax.apply_updates(z, updates), opt), None

        (z, _), _ = jax.lax.scan(step, (z, tx.init(z)), None, length=steps)
        return z, objective(z, params, slots, fixed_n)

    return run


def _assign(targets: np.ndarray, decoded: np.ndarray) -> list[ops.Alignment]:
    return [ops.align(t, env) for t, env in zip(targets, decoded)]


def normalized_gram_block(model: EnvironmentVAE, atoms: np.ndarray) -> np.ndarray:
    """Normalised Gram matrices ``[..., k, k]`` of atom sets ``[..., k, 3]`` Å (training normalisation)."""
    norm = model.normalizer
    g = np.einsum("...id,...jd->...ij", atoms, atoms)
    k = atoms.shape[-2]
    return np.where(np.eye(k, dtype=bool), (g - norm.mu_diag) / norm.sigma_diag,
                    (g - norm.mu_off) / norm.sigma_off).astype(np.float32)


def fit_latents(model: EnvironmentVAE, targets: np.ndarray, z0: np.ndarray, config: InfillConfig
                ) -> tuple[np.ndarray, np.ndarray, list[ops.Alignment]]:
    """Optimise latents so that decoded environments contain the target atoms (module docstring).

    Args:
      targets: ``[C, k, 3]`` Å, one atom set per candidate (``k <= n``; ``k = n`` refines a reconstruction).
      z0: ``[C, d]`` starting latents.

    Returns ``(z [C, d], objective [C], alignments)`` with the alignment of each target onto its decoded
    environment (in the decoder's slot order).
    """
    k = targets.shape[1]
    fixed_n = jnp.asarray(normalized_gram_block(model, targets))
    weight = model.config.kl_weight if config.prior_weight is None else config.prior_weight
    run = _optimiser(model, k, config.steps, config.learning_rate, float(weight))
    z = jnp.asarray(z0, jnp.float32)
    alignments = _assign(targets, model.decode(np.asarray(z), ordered=False))
    objective = None
    for _ in range(config.rounds):
        slots = jnp.asarray(np.stack([a.assignment for a in alignments]), jnp.int32)
        z, objective = run(model.params, z, slots, fixed_n)
        alignments = _assign(targets, model.decode(np.asarray(z), ordered=False))
    return np.asarray(z, np.float64), np.asarray(objective, np.float64), alignments


def refine_reconstruction(model: EnvironmentVAE, vectors: Any, config: InfillConfig | None = None
                          ) -> np.ndarray:
    """Reconstructions ``[m, n, 3]`` Å refined by latent optimisation (semi-amortised inference): start from the
    encoder's posterior mean and minimise the full Gram mismatch to the input plus ``prior_weight * (-log p(z))``
    (default: the model's KL weight, i.e. the training objective's own trade-off), alternating with optimal
    relabelling. The encoder alone gives :meth:`GramVAE.reconstruct`; this closes its amortisation gap."""
    arr = np.stack([ops.sort_by_distance(e) for e in model.check_environments(vectors)])
    config = config or InfillConfig(restarts=1, rounds=3, steps=150, learning_rate=0.02)
    mean, _ = model.encode(arr)
    z, _, _ = fit_latents(model, arr, mean, config)
    return model.decode(z)


def infill(model: EnvironmentVAE, fixed: Any, n_samples: int, key: jax.Array,
           config: InfillConfig = InfillConfig()) -> InfillResult:
    """Generate ``n_samples`` completions of the environment whose first ``k`` neighbours are ``fixed``.

    Args:
      model: a trained :class:`GramVAE`.
      fixed: ``[k, 3]`` Å neighbour vectors (centre at the origin), ``1 <= k < n_neighbors``, within ``r_cut``.
      n_samples: completions wanted (each the best of ``config.restarts`` optimisations).
      key: ``jax.random`` key (restarts are drawn from the prior with it).

    Raises:
      InvalidRequestError: k out of range, atoms outside r_cut, bad shapes.
    """
    from atomsmith.generators.protocol import InvalidRequestError

    fixed = check_fixed(model, fixed)
    if n_samples < 1:
        raise InvalidRequestError(f"n_samples must be >= 1, got {n_samples}")
    k, n = len(fixed), model.n_neighbors
    n_cand = n_samples * config.restarts
    z0 = model.sample_latents(key, n_cand)
    z, objective, alignments = fit_latents(model, np.broadcast_to(fixed, (n_cand, k, 3)), z0, config)
    objective = objective.reshape(n_samples, config.restarts)
    best = np.argmin(objective, axis=1) + np.arange(n_samples) * config.restarts
    decoded = model.decode(np.asarray(z)[best], ordered=False)
    envs, generated, fit, refl = [], [], [], []
    for env, idx in zip(decoded, best):
        al = alignments[idx]
        moved = env @ al.rotation.T  # decoded environment in the fixed atoms' frame
        free = np.setdiff1d(np.arange(n), al.assignment)
        gen = ops.sort_by_distance(moved[free])
        fit.append(float(np.sqrt(np.mean(np.sum((moved[al.assignment] - fixed) ** 2, axis=1)))))
        generated.append(gen)
        envs.append(np.concatenate([fixed, gen]))
        refl.append(al.reflected)
    return InfillResult(np.stack(envs), np.stack(generated), np.array(fit), objective.min(axis=1),
                        np.asarray(z)[best].astype(np.float64), np.array(refl))
