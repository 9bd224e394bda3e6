"""Environment infilling with the equivariant VAE: hold ``k`` given neighbours, generate the other ``n - k``.

Latent optimisation (MAP of z given the fixed atoms under the training objective), with the frame solved in
closed form:

    minimise_z   min_{R in O(3)} sum_a | y_{s(a)}(z) R - f_a |^2  +  w_s sum_a CE(logits_{s(a)}(z), c_a)
                 +  w * (-log p(z)),                                    w = KL weight by default

where ``Y(z)`` is the decoding in the canonical frame, ``f_a`` the fixed atoms (Å), ``s`` assigns each fixed atom a
decoder slot, ``c_a`` its species (optional) and ``p`` the latent distribution samples come from. The inner
minimum is Kabsch's orthogonal Procrustes solution (SVD of ``Y_s^T F``, reflections allowed: the canonical frame
has one handedness, the environment either); by the envelope theorem the gradient in z is the gradient at the
optimal ``R`` held fixed, so the SVD is never differentiated. The discrete assignment ``s`` is updated between
rounds of Adam steps on the host (Kabsch + Hungarian, :func:`atomsmith.generators.environments.ops.align`).
Several restarts from the latent distribution per requested sample; the lowest objective wins. The fixed atoms are
returned exactly as given and the unassigned slots, mapped into their frame, are the generated atoms.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from atomsmith.generators.environments import ops
from atomsmith.generators.eq_vae.network import EqVAENetwork, species_index
from atomsmith.generators.environments.infill import InfillConfig, InfillResult, check_fixed
from atomsmith.generators.environments.model import EnvironmentVAE  # typed by the base: the model imports us
from atomsmith.generators.environments.latent_prior import neg_log_prior_fn
from atomsmith.generators.protocol import InvalidRequestError


__all__ = ["InfillConfig", "EqInfillResult", "infill", "fit_latents", "refine_reconstruction"]


@dataclasses.dataclass(frozen=True)
class EqInfillResult(InfillResult):
    """:class:`~atomsmith.generators.environments.infill.InfillResult` plus the species: ``numbers [m, n + 1]``
    (centre first; the fixed atoms keep theirs when given, the rest are decoded)."""

    numbers: np.ndarray


def kabsch_jax(p: jax.Array, q: jax.Array) -> jax.Array:
    """``[C, k, 3], [C, k, 3] -> [C, 3, 3]`` orthogonal ``R`` (O(3)) minimising ``|p R - q|`` (no gradient)."""
    h = jnp.einsum("cki,ckj->cij", jax.lax.stop_gradient(p), jax.lax.stop_gradient(q))
    u, _, vt = jnp.linalg.svd(h)
    return u @ vt


@functools.lru_cache(maxsize=32)
def _optimiser(model: EnvironmentVAE, k: int, steps: int, learning_rate: float, prior_weight: float,
               with_species: bool):
    """Jitted ``(params, z [C, d], slots [C, k], fixed [C, k, 3], species [C, k]) -> (z, objective [C])``."""
    net = EqVAENetwork(model.config, model.coord_scale)
    tx = optax.adam(learning_rate)
    neg_log_prior = neg_log_prior_fn(model.latent_mixture)

    def objective(z, params, slots, fixed, species):
        coords, _, logits = net.apply({"params": params}, z, method=EqVAENetwork.decode)
        p = jnp.take_along_axis(coords, slots[:, :, None], axis=1)  # [C, k, 3]
        rot = kabsch_jax(p, fixed)
        err = jnp.sum((jnp.einsum("cki,cij->ckj", p, rot) - fixed) ** 2, axis=(1, 2))
        if with_species:
            logp = jax.nn.log_softmax(jnp.take_along_axis(logits, slots[:, :, None], axis=1), axis=-1)
            err = err - model.config.species_weight * jnp.sum(
                jnp.take_along_axis(logp, species[:, :, None], axis=-1)[..., 0], axis=-1)
        return err + prior_weight * neg_log_prior(z)

    @jax.jit
    def run(params, z, slots, fixed, species):
        def step(carry, _):
            z, opt = carry
            grads = jax.grad(lambda zz: jnp.sum(objective(zz, params, slots, fixed, species)))(z)
            updates, opt = tx.update(grads, opt, z)
            return (optax.apply_updates(z, updates), opt), None

        (z, _), _ = jax.lax.scan(step, (z, tx.init(z)), None, length=steps)
        return z, objective(z, params, slots, fixed, species)

    return run


def fit_latents(model: EnvironmentVAE, targets: np.ndarray, z0: np.ndarray, config: InfillConfig,
                species: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[ops.Alignment]]:
    """Optimise latents so that decoded environments contain the target atoms (module docstring).

    Args:
      targets: ``[C, k, 3]`` Å (``k <= n``; ``k = n`` refines a reconstruction).
      z0: ``[C, d]`` starting latents.
      species: optional ``[C, k]`` vocabulary indices of the target atoms.

    Returns ``(z [C, d], objective [C], alignments)``: each target's alignment onto its decoding (slot order).
    """
    k = targets.shape[1]
    weight = model.config.kl_weight if config.prior_weight is None else config.prior_weight
    run = _optimiser(model, k, config.steps, config.learning_rate, float(weight), species is not None)
    sp = jnp.asarray(np.zeros(targets.shape[:2], np.int32) if species is None else species, jnp.int32)
    fixed = jnp.asarray(targets, jnp.float32)
    z = jnp.asarray(z0, jnp.float32)
    alignments = [ops.align(t, env) for t, env in zip(targets, model.decode(np.asarray(z), ordered=False))]
    objective = None
    for _ in range(config.rounds):
        slots = jnp.asarray(np.stack([a.assignment for a in alignments]), jnp.int32)
        z, objective = run(model.params, z, slots, fixed, sp)
        alignments = [ops.align(t, env) for t, env in zip(targets, model.decode(np.asarray(z), ordered=False))]
    return np.asarray(z, np.float64), np.asarray(objective, np.float64), alignments


def refine_reconstruction(model: EnvironmentVAE, vectors: Any, numbers: Any = None,
                          config: InfillConfig | None = None) -> np.ndarray:
    """Reconstructions ``[m, n, 3]`` Å refined by latent optimisation from the encoder's posterior mean (closes
    the amortisation gap); returned in the input's frame (closest first)."""
    arr, z_numbers = model.check_environments(vectors, numbers)
    config = config or InfillConfig(restarts=1, rounds=3, steps=150, learning_rate=0.02)
    mean, _ = model.encode(arr, z_numbers)
    species = species_index(model.config, z_numbers[:, 1:]) if model.config.n_species > 1 else None
    z, _, alignments = fit_latents(model, arr, mean, config, species)
    decoded = model.decode(z, ordered=False)
    return np.stack([ops.sort_by_distance(env @ al.rotation.T) for env, al in zip(decoded, alignments)])


def infill(model: EnvironmentVAE, fixed: Any, n_samples: int, key: jax.Array,
           config: InfillConfig = InfillConfig(), numbers: Any = None) -> EqInfillResult:
    """Generate ``n_samples`` completions of the environment whose first ``k`` neighbours are ``fixed``.

    Args:
      model: a trained :class:`EqVAE`.
      fixed: ``[k, 3]`` Å neighbour vectors (centre at the origin), ``1 <= k < n_neighbors``, within ``r_cut``.
      n_samples: completions wanted (each the best of ``config.restarts`` optimisations).
      key: ``jax.random`` key (restarts are drawn from the latent distribution with it).
      numbers: optional ``[k]`` atomic numbers of the fixed atoms (required only to constrain species).

    Raises:
      InvalidRequestError: k out of range, atoms outside r_cut, unknown elements, bad shapes.
    """
    fixed = check_fixed(model, fixed)
    if n_samples < 1:
        raise InvalidRequestError(f"n_samples must be >= 1, got {n_samples}")
    k, n = len(fixed), model.n_neighbors
    species = None
    if numbers is not None:
        numbers = np.asarray(numbers, np.int64).reshape(-1)
        if numbers.shape != (k,):
            raise InvalidRequestError(f"numbers must give one atomic number per fixed atom ({k}), got "
                                      f"{numbers.shape}")
        try:
            species = np.broadcast_to(species_index(model.config, numbers), (n_samples * config.restarts, k))
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
    n_cand = n_samples * config.restarts
    z0 = model.sample_latents(key, n_cand)
    z, objective, alignments = fit_latents(model, np.broadcast_to(fixed, (n_cand, k, 3)), z0, config, species)
    objective = objective.reshape(n_samples, config.restarts)
    best = np.argmin(objective, axis=1) + np.arange(n_samples) * config.restarts
    decoded = model.decode_full(np.asarray(z)[best], ordered=False)
    envs, generated, fit, refl, all_numbers = [], [], [], [], []
    for env, z_env, idx in zip(decoded.vectors, decoded.numbers, best):
        al = alignments[idx]
        moved = env @ al.rotation.T  # decoding in the fixed atoms' frame
        free = np.setdiff1d(np.arange(n), al.assignment)
        order = free[np.argsort(np.linalg.norm(moved[free], axis=1), kind="stable")]
        fit.append(float(np.sqrt(np.mean(np.sum((moved[al.assignment] - fixed) ** 2, axis=1)))))
        generated.append(moved[order])
        envs.append(np.concatenate([fixed, moved[order]]))
        fixed_numbers = numbers if numbers is not None else z_env[1:][al.assignment]
        all_numbers.append(np.concatenate([[z_env[0]], fixed_numbers, z_env[1:][order]]))
        refl.append(al.reflected)
    return EqInfillResult(np.stack(envs), np.stack(generated), np.array(fit), objective.min(axis=1),
                          np.asarray(z)[best].astype(np.float64), np.array(refl),
                          np.stack(all_numbers).astype(np.int32))
