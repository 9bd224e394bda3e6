"""Denoising loss for coordinates (torus score), lattice parameters (DDPM epsilon) and species (cross-entropy of
the clean species under absorbing diffusion, or DDPM epsilon of the relaxed one-hot; :mod:`.species`)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.schedules import SigmaNorm, vp_forward, wrapped_normal_score
from atomsmith.generators.diffusion.species import species_process


def make_loss_fn(config: DiffusionConfig):
    """``loss_fn(params, batch, key) -> (loss, metrics)`` for :func:`atomsmith.training.loop.fit`.

    ``batch`` is a mapping of arrays: ``frac [B,A,3]``, ``lattice [B,3,3]`` Å, ``species [B,A,K]`` one-hot,
    ``atom_mask [B,A]`` bool, ``cell_mask [B]`` bool (False for padding cells).
    Per cell: t ~ U(t_min, 1); the structure-prediction flag is on with probability ``csp_fraction`` (then the
    species are given clean and not scored). The species loss is averaged over the atoms it scores (absorbing
    species: the masked ones; relaxed one-hot: all). Property-conditioned models (``config.properties``) read ``props
    [B,P]`` (raw values, NaN = unknown) and hide each known one with probability ``property_dropout``
    (classifier-free guidance trains the conditional and unconditional score in one network).
    """
    net = ScoreNetwork(config)
    sched = config.schedules
    sigma_norm = SigmaNorm(sched.sigma_min, sched.sigma_max)
    process = species_process(config)

    def loss_fn(params, batch: Mapping[str, jax.Array], key: jax.Array):
        frac0, lattice0, species0 = batch["frac"], batch["lattice"], batch["species"]
        atom_mask, cell_mask = batch["atom_mask"], batch["cell_mask"].astype(frac0.dtype)
        b = frac0.shape[0]
        k_t, k_csp, k_f, k_l, k_a, k_p = jax.random.split(key, 6)
        t = jax.random.uniform(k_t, (b,), minval=sched.t_min, maxval=1.0)
        csp = jax.random.uniform(k_csp, (b,)) < config.csp_fraction
        sigma = sched.sigma(t)[:, None, None]
        frac_t = (frac0 + sigma * jax.random.normal(k_f, frac0.shape)) % 1.0
        target_f = wrapped_normal_score(frac_t, frac0, sigma) / jnp.sqrt(sigma_norm(sigma))
        ab = sched.alpha_bar(t)
        z0 = config.lattice.encode(lattice0)
        eps_l = jax.random.normal(k_l, z0.shape)
        z_t = vp_forward(z0, ab[:, None], eps_l)
        species_t, target_a = process.noise(k_a, species0, t)
        species_t = jnp.where(csp[:, None, None], process.clean_input(species0), species_t)
        props = props_mask = None
        if config.properties:
            raw = batch["props"]
            props = (raw - jnp.asarray(config.property_mean)) / jnp.asarray(config.property_std)
            keep = jax.random.uniform(k_p, raw.shape) >= config.property_dropout
            props_mask = (jnp.isfinite(raw) & keep).astype(frac0.dtype)
            props = jnp.where(props_mask > 0, props, 0.0)
        pred_f, pred_l, pred_a, overflow = net.apply(params, frac_t, config.lattice.decode(z_t), species_t,
                                                     atom_mask, t, csp.astype(frac0.dtype), props, props_mask)
        m = atom_mask.astype(frac0.dtype) * cell_mask[:, None]
        n_atoms = jnp.maximum(jnp.sum(m), 1.0)
        loss_f = jnp.sum(jnp.sum((pred_f - target_f) ** 2, -1) * m) / (3 * n_atoms)
        loss_l = jnp.sum(jnp.mean((pred_l - eps_l) ** 2, -1) * cell_mask) / jnp.maximum(jnp.sum(cell_mask), 1.0)
        atom_loss_a, weight_a = process.atom_loss(pred_a, target_a, species_t)
        ma = m * (1.0 - csp.astype(frac0.dtype))[:, None] * weight_a
        loss_a = jnp.sum(atom_loss_a * ma) / jnp.maximum(jnp.sum(ma), 1.0)
        loss = loss_f + config.lattice_weight * loss_l + config.species_weight * loss_a
        metrics = {"coord": loss_f, "lattice": loss_l, "species": loss_a,
                   "overflow": jnp.mean(overflow.astype(frac0.dtype))}
        return loss, metrics

    return loss_fn, net
