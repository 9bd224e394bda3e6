"""Guidance and infilling inside the reverse diffusion (the sampler's two conditioning hooks).

**Gradient guidance on the denoised estimate.** At every sub-step the network's outputs give a clean-data estimate
(Tweedie): ``F0 = F + sigma_t^2 s_F`` for the coordinates (VE, the wrapped kernel's score; exact for sigma << 1),
``x0 = (x - sqrt(1 - ab) eps) / sqrt(ab)`` for lattice parameters and species (VP). A shared guidance
:class:`~atomsmith.guidance.Objective` ``L`` (lower is better; property targets, ranges, several at once, minimum
distances) is evaluated on that estimate - a clean crystal, so predictors trained on clean data work unchanged - and
its gradient moves the estimate by ``-w * Var_t * dL/dx0`` with ``Var_t`` the posterior variance of the clean value
given the noisy one (``min(sigma_t^2, 1/12)`` on the torus, ``1 - ab`` for unit-variance VP variables). That is
classifier guidance with ``log p(y | x_t) = -w L(x0_hat(x_t))`` and ``dx0/dx_t`` taken as its Gaussian-prior value
(we do not backpropagate through the score network: one predictor forward + backward per step instead of a
second pass through the larger score network). In score / epsilon form:

    s_F   <- s_F - w * min(1, 1 / (12 sigma_t^2)) * dL/dF0
    eps   <- eps + w * sqrt(ab (1 - ab)) * dL/dx0          (lattice parameters z and species)

``w`` (``scale``) is in units of 1/L; with ``PropertyTarget(scale=s)`` a property error of ``s`` costs 1.

Species enter the objective as continuous weights over atomic numbers (``[N, 119]``, as the predictors take them):
``softmax(x0_species / temperature)`` over the model's vocabulary, scattered to the vocabulary's atomic numbers,
with ``x0_species`` the relaxed one-hot estimate or, for absorbing species, the predicted log-probabilities (revealed
atoms: their species). For absorbing species guidance moves the predicted logits, ``logits - w dL/dlog p``.

**Classifier-free guidance.** A model trained with property inputs (``config.properties``, hidden at random during
training) gives a conditional and an unconditional output at every step; the sampler uses
``out_u + w (out_c - out_u)`` for the coordinate score and both epsilons (Ho & Salimans 2022), with ``w`` the
guidance factor (1 = plain conditional sampling, > 1 sharper). :class:`PropertyCondition` carries the requested
values.

**Infilling (RePaint replacement).** Held atoms (coordinates, species) and optionally the lattice are replaced after
every sub-step by a draw from the forward process of their known clean values at the sub-step's end time, so the
free atoms are generated around them; with ``resample = r`` each step is repeated ``r`` extra times, going back to
``t`` by the forward kernel in between (Lugmayr et al. 2022, jump length 1).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.graph import dense_graph
from atomsmith.generators.diffusion.schedules import vp_clean_estimate, vp_forward, vp_renoise
from atomsmith.graphs.neighbors_jax import NeighborSpec
from atomsmith.nn.encoder import N_ELEMENTS


#: cap on the norm of one atom's objective gradient w.r.t. its fractional coordinates (guards against overflow).
MAX_ATOM_GRAD = 1e6


@flax.struct.dataclass
class Guide:
    """Gradient guidance inside the sampler (a pytree: changing targets or the scale does not recompile).

    Attributes:
      objective: a shared guidance objective ``(batch, species_weights) -> [G]``.
      scale: ``w`` (scalar or ``[B]``), see the module docstring.
      weights: ``[3]`` multipliers of the coordinate, lattice and species parts (default all 1).
      elements: ``[K]`` atomic numbers of the model's species vocabulary.
      temperature: softmax temperature turning the denoised relaxed one-hot into species weights.
      spec: neighbour list of the objective's graph (static: cutoff, capacity, images).
    """

    objective: Any
    scale: Any
    weights: Any
    elements: Any
    temperature: Any = 0.1
    spec: NeighborSpec = flax.struct.field(pytree_node=False, default=None)


@flax.struct.dataclass
class PropertyCondition:
    """Classifier-free guidance request for ``B`` cells: standardised ``values [B,P]``, ``mask [B,P]`` (1 = given)
    and the guidance factor ``factor`` (scalar or ``[B]``)."""

    values: jax.Array
    mask: jax.Array
    factor: Any


def combine_cfg(cond_out, uncond_out, factor):
    """``u + w (c - u)`` on each network output array (coordinate score ``[B,A,3]``, epsilons ``[B,6]``,
    ``[B,A,K]``); ``factor`` is a scalar or ``[B]``."""
    def mix(c, u):
        w = jnp.reshape(jnp.broadcast_to(jnp.asarray(factor, c.dtype), (c.shape[0],)), (-1,) + (1,) * (c.ndim - 1))
        return u + w * (c - u)

    return tuple(mix(c, u) for c, u in zip(cond_out, uncond_out))


@flax.struct.dataclass
class Infill:
    """Held atoms of ``B`` cells with ``A`` slots: clean ``frac [B,A,3]``, one-hot ``species [B,A,K]``, ``mask [B,A]``
    (True = held), standardised lattice parameters ``z [B,6]`` and ``hold_lattice [B]``."""

    frac: jax.Array
    species: jax.Array
    mask: jax.Array
    z: jax.Array
    hold_lattice: jax.Array

    @classmethod
    def none(cls, n_cells: int, n_atoms: int, n_species: int) -> Infill:
        """Nothing held (one compiled sampler serves both cases)."""
        return cls(jnp.zeros((n_cells, n_atoms, 3)), jnp.zeros((n_cells, n_atoms, n_species)),
                   jnp.zeros((n_cells, n_atoms), bool), jnp.zeros((n_cells, 6)), jnp.zeros((n_cells,), bool))


def species_weights(species0: jax.Array, atom_mask: jax.Array, elements: jax.Array, temperature) -> jax.Array:
    """Denoised relaxed one-hot ``[B, A, K]`` -> weights over atomic numbers ``[B*A, 119]`` (0 on padding)."""
    probs = jax.nn.softmax(species0 / temperature, axis=-1) * atom_mask[..., None]
    b, a, k = species0.shape
    out = jnp.zeros((b * a, N_ELEMENTS), species0.dtype)
    return out.at[:, elements].set(probs.reshape(b * a, k))


def objective_on_dense(guide: Guide, frac: jax.Array, lattice: jax.Array, species0: jax.Array,
                       atom_mask: jax.Array) -> jax.Array:
    """``[B]`` objective values of dense cells (``frac [B,A,3]``, ``lattice [B,3,3]`` Å, relaxed species)."""
    graph, _ = dense_graph(frac, lattice, atom_mask, guide.spec)
    weights = species_weights(species0, atom_mask, guide.elements, guide.temperature)
    return guide.objective(graph, weights)


def guided_outputs(guide: Guide, frac, z, species, sf, eps_l, eps_a, t, sig_t, ab_t, atom_mask, decode, csp,
                   process, infill: Infill | None = None):
    """Apply gradient guidance to the network outputs (see module docstring).

    Args:
      frac ``[B,A,3]``, z ``[B,6]``, species ``[B,A,C]``: the noisy state at time t.
      sf: ``[B,A,3]`` coordinate score (fractional units, not normalised); eps_l ``[B,6]``; eps_a ``[B,A,K]``
      (the species output: logits or epsilon, see :mod:`.species`).
      t, sig_t, ab_t: scalars at t. decode: ``z -> lattice [B,3,3]``. csp: bool scalar (species held: no species
      term). process: the species process (its clean estimate and how guidance moves its output).
      infill: held atoms / cell: a held cell is evaluated as itself, not as the network's estimate of it.
    Returns:
      ``(sf, eps_l, eps_a, values [B])`` with values = the objective at the denoised estimate.
    """
    frac0 = frac + sig_t ** 2 * sf
    z0 = vp_clean_estimate(z, eps_l, ab_t)
    sp0 = process.clean_estimate(species, eps_a, t, csp)
    if infill is not None:
        z0 = jnp.where(infill.hold_lattice[:, None], infill.z, z0)

    def total(f, zz, sp):
        values = objective_on_dense(guide, f, decode(zz), sp, atom_mask)
        return jnp.sum(values), values

    (_, values), (g_f, g_z, g_a) = jax.value_and_grad(total, argnums=(0, 1, 2), has_aux=True)(frac0, z0, sp0)
    # a degenerate estimate (two atoms on top of each other under a repulsive objective) must not poison the state:
    # non-finite entries are dropped and each atom's coordinate gradient is capped at MAX_ATOM_GRAD (fractional^-1)
    g_f, g_z, g_a = (jnp.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0) for g in (g_f, g_z, g_a))
    norm = jnp.linalg.norm(g_f, axis=-1, keepdims=True)
    g_f = g_f * jnp.minimum(1.0, MAX_ATOM_GRAD / jnp.maximum(norm, 1e-30))
    w = jnp.asarray(guide.scale, frac.dtype)
    w_b = jnp.broadcast_to(w, (frac.shape[0],))
    wc, wl, ws = (jnp.asarray(guide.weights, frac.dtype)[i] for i in range(3))
    m = atom_mask[..., None].astype(frac.dtype)
    var_ratio = jnp.minimum(1.0, 1.0 / (12.0 * sig_t ** 2))
    sf = sf - (wc * w_b * var_ratio)[:, None, None] * g_f * m
    vp = jnp.sqrt(ab_t * (1.0 - ab_t))
    eps_l = eps_l + (wl * w_b * vp)[:, None] * g_z
    eps_a = jnp.where(csp, eps_a, process.guide(eps_a, g_a * m, (ws * w_b)[:, None, None], t))
    return sf, eps_l, eps_a, values


def replace_held(infill: Infill, frac, z, species, t, sched, process, key):
    """Put the held atoms (and lattice) back at time ``t``: coordinates and lattice at a fresh forward-process draw
    (``sched``), species as the species ``process`` holds them (:meth:`held`)."""
    k1, k2, k3 = jax.random.split(key, 3)
    sigma, ab = sched.sigma(t), sched.alpha_bar(t)
    f_held = (infill.frac + sigma * jax.random.normal(k1, frac.shape)) % 1.0
    a_held = process.held(infill.species, t, k2)
    z_held = vp_forward(infill.z, ab, jax.random.normal(k3, z.shape))
    held = infill.mask[..., None]
    return (jnp.where(held, f_held, frac), jnp.where(infill.hold_lattice[:, None], z_held, z),
            jnp.where(held, a_held, species))


def renoise(frac, z, species, s, t, sched, process, atom_mask, key):
    """Forward kernel from ``s`` back to ``t > s`` (RePaint's jump): VE for coordinates, VP for z, the species
    process's own kernel for species."""
    k1, k2, k3 = jax.random.split(key, 3)
    m = atom_mask[..., None].astype(frac.dtype)
    sig_s, sig_t = sched.sigma(s), sched.sigma(t)
    frac = (frac + jnp.sqrt(jnp.maximum(sig_t ** 2 - sig_s ** 2, 0.0)) * jax.random.normal(k1, frac.shape) * m) % 1.0
    z = vp_renoise(z, sched.alpha_bar(t), sched.alpha_bar(s), jax.random.normal(k2, z.shape))
    species = process.renoise(species, s, t, k3) * m
    return frac, z, species


def guidance_spec(cutoff: float, model_cutoff: float, model_max_edges: int, n_images: tuple[int, int, int]
                  ) -> NeighborSpec:
    """Neighbour list for the objective's graph: the model's capacity scaled by ``(cutoff / model_cutoff)^3``."""
    ratio = max(1.0, float(cutoff) / float(model_cutoff))
    capacity = int(np.ceil(model_max_edges * ratio ** 3))
    images = tuple(int(np.ceil(n * ratio)) for n in n_images)
    return NeighborSpec(float(cutoff), capacity, images)
