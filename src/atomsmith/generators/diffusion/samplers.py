"""Reverse-time samplers, jitted with ``jax.lax.scan`` over chunks of steps (the host updates a progress bar
between chunks).

Time grid: ``t_i = i / N`` for ``i = N .. 0``; each step goes from ``t`` to ``s = t - 1/N``.

* ``"pc"`` (predictor-corrector, DiffCSP's sampler). Per step, two network evaluations (scanned as two
  sub-steps that share one traced network call, which halves the compile time):
  1. corrector (coordinates only): Langevin ``F += e * score + sqrt(2 e) z`` with ``e = step_lr (sigma_t/sigma_min)^2``;
  2. predictor: reverse VE step ``F += (sigma_t^2 - sigma_s^2) score + sqrt(sigma_s^2 (sigma_t^2 - sigma_s^2)/sigma_t^2) z``;
     lattice parameters take the DDPM ancestral step (posterior mean of q(x_s | x_t, x0_hat) plus noise); species
     take their process's reverse step (:mod:`.species`: absorbing species reveal masked atoms, relaxed one-hot
     species the DDPM step).
* ``"ode"`` (probability flow). One evaluation per step: ``F += (sigma_t^2 - sigma_s^2)/2 * score``; the lattice
  (and relaxed one-hot species) take the DDIM (eta = 0) step, which is the probability-flow ODE of the VP process
  discretised in (sqrt(1-ab)/sqrt(ab)) time. Deterministic after the prior draw, except for absorbing species,
  whose reveals are drawn (a discrete field has no probability-flow ODE).

Structure prediction (``csp``): species are fixed to the given clean one-hot and the network's flag is on.
Guidance and infilling hooks: :mod:`atomsmith.generators.diffusion.conditioning`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.conditioning import combine_cfg, guided_outputs, renoise, replace_held
from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.schedules import SigmaNorm, vp_reverse_step
from atomsmith.generators.diffusion.species import species_process

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
    """Draw from the t=1 prior: uniform coordinates, standard normal lattice parameters, the species process's
    prior (all MASK, or standard normal relaxed one-hot); given clean one-hot ``species [B,A,K]`` (structure
    prediction) enter as they are."""
    k_f, k_z, k_a = jax.random.split(key, 3)
    frac = jax.random.uniform(k_f, (n_cells, n_atoms, 3))
    z = jax.random.normal(k_z, (n_cells, 6))
    process = species_process(config)
    if species is None:
        species = process.prior(k_a, n_cells, n_atoms)
    else:
        species = process.clean_input(jnp.asarray(species))
    return SamplerState(frac, z, species, jnp.zeros((n_cells,), bool))


def make_chunk_runner(config: DiffusionConfig, method: str = "pc", step_lr: float = 1e-5):
    """Jitted ``run(params, state, grid, keys, atom_mask, csp, guide, infill) -> (state, values)`` over a chunk of
    sub-steps, each with exactly one network evaluation (so the network is traced and compiled once).

    ``grid``: a :class:`TimeGrid` row (each field ``[C]``): start and end times ``t``, ``s`` of each sub-step,
    ``corrector`` (Langevin corrector at ``t`` instead of a predictor step ``t -> s``), ``renoise`` (after the
    predictor, jump back to ``t`` by the forward kernel: RePaint resampling), ``active`` (inactive sub-steps are
    no-ops, so every chunk has the same length); ``keys``: ``[C, 2]``; ``csp``: bool scalar.
    ``guide``: a :class:`~atomsmith.generators.diffusion.conditioning.Guide` or ``None``; ``infill``: an
    :class:`~atomsmith.generators.diffusion.conditioning.Infill` (held atoms; ``Infill.none`` for none).
    ``cond``: a :class:`~atomsmith.generators.diffusion.conditioning.PropertyCondition` (classifier-free guidance;
    two network evaluations per sub-step) or ``None``.
    ``values``: ``[B]`` guidance objective at the last active sub-step's denoised estimate (zeros without a guide).
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    net = ScoreNetwork(config)
    sched = config.schedules
    sigma_norm = SigmaNorm(sched.sigma_min, sched.sigma_max)
    stochastic = method == "pc"
    process = species_process(config)

    def step(params, st: SamplerState, t, s, corrector, jump, key, atom_mask, csp, guide, infill, cond):
        b = st.frac.shape[0]
        dtype = st.frac.dtype
        sig_t, sig_s = sched.sigma(t), sched.sigma(s)
        ab_t, ab_s = sched.alpha_bar(t), sched.alpha_bar(s)
        k1, k2, k3, k4, k5 = jax.random.split(key, 5)
        m = atom_mask[..., None].astype(dtype)
        args = (params, st.frac, config.lattice.decode(st.z), st.species, atom_mask, jnp.full((b,), t),
                jnp.full((b,), csp, dtype))
        coord, eps_l, eps_a, overflow = net.apply(*args)  # property-conditioned models: all properties hidden
        if cond is not None:  # classifier-free guidance: conditional and unconditional outputs combined
            c_coord, c_eps_l, c_eps_a, c_over = net.apply(*args, cond.values, cond.mask)
            coord, eps_l, eps_a = combine_cfg((c_coord, c_eps_l, c_eps_a), (coord, eps_l, eps_a), cond.factor)
            overflow = overflow | c_over
        sf = coord * jnp.sqrt(sigma_norm(sig_t))
        values = jnp.zeros((b,), dtype)
        if guide is not None:
            sf, eps_l, eps_a, values = guided_outputs(guide, st.frac, st.z, st.species, sf, eps_l, eps_a, t, sig_t,
                                                      ab_t, atom_mask, config.lattice.decode, csp, process, infill)
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
        z_p = vp_reverse_step(st.z, eps_l, ab_t, ab_s, jax.random.normal(k2, st.z.shape), stochastic)
        species_p = process.step(st.species, eps_a, t, s, k3, stochastic) * m
        species_p = jnp.where(csp, st.species, species_p)
        # RePaint jump back to t (only predictor sub-steps flagged `jump`)
        fr, zr, ar = renoise(frac_p, z_p, species_p, s, t, sched, process, atom_mask, k4)
        ar = jnp.where(csp, st.species, ar)
        frac_p, z_p, species_p = (jnp.where(jump, x, y) for x, y in ((fr, frac_p), (zr, z_p), (ar, species_p)))
        frac = jnp.where(corrector, frac_c, frac_p) % 1.0
        z = jnp.where(corrector, st.z, z_p)
        species = jnp.where(corrector, st.species, species_p)
        # held atoms back on their forward-process draw at the sub-step's end time
        end = jnp.where(corrector | jump, t, s)
        fh, zh, ah = replace_held(infill, frac, z, species, end, sched, process, k5)
        species = jnp.where(csp, species, ah)
        return SamplerState(fh, zh, species, st.overflow | overflow), values

    @jax.jit
    def run(params, state: SamplerState, grid: TimeGrid, keys, atom_mask, csp, guide, infill, cond=None):
        def body(carry, xs):
            st, last = carry
            ti, si, ci, ji, act, key = xs
            new, values = step(params, st, ti, si, ci, ji, key, atom_mask, csp, guide, infill, cond)
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(act, a, b), new, st)
            return (new, jnp.where(act, values, last)), None

        zeros = jnp.zeros((state.frac.shape[0],), state.frac.dtype)
        (state, values), _ = jax.lax.scan(body, (state, zeros), (grid.t, grid.s, grid.corrector, grid.renoise,
                                                                  grid.active, keys))
        return state, values

    return run


class TimeGrid(NamedTuple):
    """Sub-steps of a reverse run, each field ``[n_chunks, chunk]`` (see :func:`make_chunk_runner`)."""

    t: jax.Array
    s: jax.Array
    corrector: jax.Array
    renoise: jax.Array
    active: jax.Array

    def chunk(self, c: int) -> TimeGrid:
        return TimeGrid(*(x[c] for x in self))


def time_grid(n_steps: int, chunk: int, method: str = "pc", resample: int = 0) -> TimeGrid:
    """The sub-steps of ``n_steps`` steps from t = 1 to 0, cut into chunks of ``chunk`` (tail padded inactive).

    ``"pc"`` has two sub-steps per step (corrector at t, then predictor t -> s); ``"ode"`` one. With
    ``resample = r`` (infilling) each step is done ``r + 1`` times; the first ``r`` predictors jump back to t.
    """
    if n_steps < 1:
        raise ValueError(f"need at least one step, got {n_steps}")
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    if resample < 0:
        raise ValueError(f"resample must be >= 0, got {resample}")
    per = 2 if method == "pc" else 1
    reps = resample + 1
    i = np.repeat(np.arange(n_steps), per * reps)
    t = 1.0 - i / n_steps
    s = 1.0 - (i + 1) / n_steps
    one = np.array([True, False]) if per == 2 else np.array([False])  # corrector pattern of one repetition
    corrector = np.tile(one, n_steps * reps)
    jump_one = np.concatenate([np.repeat(np.arange(reps) < resample, per)])  # predictors of the first r repetitions
    renoise = np.tile(jump_one, n_steps) & ~corrector
    n_sub = len(t)
    total = -(-n_sub // chunk) * chunk
    pad = total - n_sub
    active = np.concatenate([np.ones(n_sub, bool), np.zeros(pad, bool)])
    t = np.concatenate([t, np.zeros(pad)]).astype(np.float32)
    s = np.concatenate([s, np.zeros(pad)]).astype(np.float32)
    corrector = np.concatenate([corrector, np.zeros(pad, bool)])
    renoise = np.concatenate([renoise, np.zeros(pad, bool)])
    shape = (total // chunk, chunk)
    return TimeGrid(*(jnp.asarray(x.reshape(shape)) for x in (t, s, corrector, renoise, active)))
