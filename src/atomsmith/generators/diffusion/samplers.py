"""Reverse-time samplers, jitted with ``jax.lax.scan`` over chunks of steps (the host updates a progress bar
between chunks).

Time grid: ``t_i = i / N`` for ``i = N .. 0``; each step goes from ``t`` to ``s = t - 1/N``.

* ``"pc"`` (predictor-corrector, DiffCSP's sampler). Per step, two network evaluations (scanned as two
  sub-steps that share one traced network call, which halves the compile time):
  1. corrector (coordinates only): Langevin ``F += e * score + sqrt(2 e) z`` with ``e = step_lr (sigma_t/sigma_min)^2``;
  2. predictor: reverse VE step ``F += (sigma_t^2 - sigma_s^2) score + sqrt(sigma_s^2 (sigma_t^2 - sigma_s^2)/sigma_t^2) z``;
     lattice parameters and species take the DDPM ancestral step (posterior mean of q(x_s | x_t, x0_hat) plus noise).
* ``"ode"`` (probability flow, deterministic after the prior draw). One evaluation per step:
  ``F += (sigma_t^2 - sigma_s^2)/2 * score``; lattice and species take the DDIM (eta = 0) step, which is the
  probability-flow ODE of the VP process discretised in (sqrt(1-ab)/sqrt(ab)) time.

Structure prediction (``csp``): species are fixed to the given clean one-hot and the network's flag is on.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.schedules import SigmaNorm

SAMPLERS = ("pc", "ode")


class SamplerState(NamedTuple):
    """Reverse-process state of ``B`` cells with ``A`` atoms: ``frac [B,A,3]``, ``z [B,6]``, ``species [B,A,K]``,
    and ``overflow [B]`` (True if any step's neighbour list overflowed)."""

    frac: jax.Array
    z: jax.Array
    species: jax.Array
    overflow: jax.Array


def prior(key: jax.Array, config: DiffusionConfig, n_cells: int, n_atoms: int,
          species: jax.Array | None = None) -> SamplerState:
    """Draw from the t=1 prior: uniform coordinates, standard normal lattice vector and species."""
    k_f, k_z, k_a = jax.random.split(key, 3)
    frac = jax.random.uniform(k_f, (n_cells, n_atoms, 3))
    z = jax.random.normal(k_z, (n_cells, 6))
    if species is None:
        species = jax.random.normal(k_a, (n_cells, n_atoms, config.n_species))
    return SamplerState(frac, z, species, jnp.zeros((n_cells,), bool))


def make_chunk_runner(config: DiffusionConfig, method: str = "pc", step_lr: float = 1e-5):
    """Jitted ``run(params, state, t, s, corrector, active, keys, atom_mask, csp) -> state`` over a chunk of
    sub-steps, each with exactly one network evaluation (so the network is traced and compiled once).

    ``t``, ``s``: ``[C]`` start and end times of each sub-step; ``corrector``: ``[C]`` bool (Langevin corrector
    at ``t`` instead of a predictor step ``t -> s``); ``active``: ``[C]`` bool (inactive sub-steps are no-ops, so
    every chunk has the same length); ``keys``: ``[C, 2]``; ``csp``: bool scalar.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    net = ScoreNetwork(config)
    sched = config.schedules
    sigma_norm = SigmaNorm(sched.sigma_min, sched.sigma_max)
    stochastic = method == "pc"

    def vp_step(x, eps, ab_t, ab_s, noise):
        x0 = jnp.clip((x - jnp.sqrt(1 - ab_t) * eps) / jnp.sqrt(ab_t), -5.0, 5.0)
        if not stochastic:  # DDIM, eta = 0, with epsilon made consistent with the clipped x0
            eps = (x - jnp.sqrt(ab_t) * x0) / jnp.sqrt(1 - ab_t)
            return jnp.sqrt(ab_s) * x0 + jnp.sqrt(1 - ab_s) * eps
        a_ts = ab_t / ab_s
        beta = 1 - a_ts
        mean = (jnp.sqrt(ab_s) * beta / (1 - ab_t)) * x0 + (jnp.sqrt(a_ts) * (1 - ab_s) / (1 - ab_t)) * x
        var = beta * (1 - ab_s) / (1 - ab_t)
        return mean + jnp.sqrt(jnp.maximum(var, 0.0)) * noise

    def step(params, st: SamplerState, t, s, corrector, key, atom_mask, csp):
        b = st.frac.shape[0]
        dtype = st.frac.dtype
        sig_t, sig_s = sched.sigma(t), sched.sigma(s)
        ab_t, ab_s = sched.alpha_bar(t), sched.alpha_bar(s)
        k1, k2, k3 = jax.random.split(key, 3)
        m = atom_mask[..., None].astype(dtype)
        coord, eps_l, eps_a, overflow = net.apply(params, st.frac, config.lattice.decode(st.z), st.species,
                                                  atom_mask, jnp.full((b,), t), jnp.full((b,), csp, dtype))
        sf = coord * jnp.sqrt(sigma_norm(sig_t))
        noise_f = jax.random.normal(k1, st.frac.shape)
        # corrector: Langevin on the coordinates at fixed t (DiffCSP step size)
        e = step_lr * (sig_t / sched.sigma_min) ** 2
        frac_c = st.frac + (e * sf + jnp.sqrt(2 * e) * noise_f) * m
        # predictor: reverse VE step (SDE) or probability-flow step (ODE)
        d2 = sig_t ** 2 - sig_s ** 2
        if stochastic:
            frac_p = st.frac + (d2 * sf + jnp.sqrt(sig_s ** 2 * d2 / sig_t ** 2) * noise_f) * m
        else:
            frac_p = st.frac + 0.5 * d2 * sf * m
        z_p = vp_step(st.z, eps_l, ab_t, ab_s, jax.random.normal(k2, st.z.shape))
        species_p = vp_step(st.species, eps_a, ab_t, ab_s, jax.random.normal(k3, st.species.shape)) * m
        species_p = jnp.where(csp, st.species, species_p)
        return SamplerState(jnp.where(corrector, frac_c, frac_p) % 1.0, jnp.where(corrector, st.z, z_p),
                            jnp.where(corrector, st.species, species_p), st.overflow | overflow)

    @jax.jit
    def run(params, state: SamplerState, t, s, corrector, active, keys, atom_mask, csp):
        def body(st, xs):
            ti, si, ci, act, key = xs
            new = step(params, st, ti, si, ci, key, atom_mask, csp)
            return jax.tree_util.tree_map(lambda a, b: jnp.where(act, a, b), new, st), None

        state, _ = jax.lax.scan(body, state, (t, s, corrector, active, keys))
        return state

    return run


def time_grid(n_steps: int, chunk: int, method: str = "pc"
              ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(t, s, corrector, active)``, each ``[n_chunks, chunk]``, over the sub-steps of ``n_steps`` steps 1 -> 0.

    ``"pc"`` has two sub-steps per step (corrector at t, then predictor t -> s); ``"ode"`` one. The tail is padded
    with inactive sub-steps.
    """
    if n_steps < 1:
        raise ValueError(f"need at least one step, got {n_steps}")
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    i = np.arange(n_steps)
    t = 1.0 - i / n_steps
    s = 1.0 - (i + 1) / n_steps
    per = 2 if method == "pc" else 1
    t, s = np.repeat(t, per), np.repeat(s, per)
    corrector = np.tile([True, False], n_steps) if per == 2 else np.zeros(n_steps, bool)
    n_sub = per * n_steps
    total = -(-n_sub // chunk) * chunk
    pad = total - n_sub
    active = np.concatenate([np.ones(n_sub, bool), np.zeros(pad, bool)])
    t = np.concatenate([t, np.zeros(pad)]).astype(np.float32)
    s = np.concatenate([s, np.zeros(pad)]).astype(np.float32)
    corrector = np.concatenate([corrector, np.zeros(pad, bool)])
    shape = (total // chunk, chunk)
    return tuple(jnp.asarray(x.reshape(shape)) for x in (t, s, corrector, active))
