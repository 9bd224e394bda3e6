"""Crystal latents by probability-flow inversion: ``encode`` a crystal to the t = 1 prior, ``decode`` it back.

**Decode** is the existing probability-flow sampler (``method="ode"`` of :mod:`.samplers`) started from a given
state instead of a prior draw: per step ``t -> s`` (grid ``t_i = i / N``)

    F_s = (F_t + (sigma_t^2 - sigma_s^2) / 2 * score_F(x_t, t)) mod 1          (wrapped coordinates, VE)
    z_s = DDIM(z_t, eps_l(x_t, t))                                             (lattice parameters, VP, eta = 0)
    A_s = DDIM(A_t, eps_a(x_t, t))   (relaxed one-hot species)  or  A_s = A_t  (species held: structure prediction)

**Encode** inverts these steps one by one, from t = 0 (the crystal) to t = 1, on exactly the decoder's time grid,
so that decode(encode(x)) = x up to the solver tolerance and not only up to the discretisation error of the
ODE. Each inverse step solves ``D(x_t) = x_s`` for ``x_t`` (``D`` = the decoder step above, which evaluates the
network at ``x_t``) by a fixed-point iteration started from ``x_t = x_s``:

    x <- G(x),     G(x) = the step inverted with the network outputs frozen at x

(coordinates: ``x_s - (sigma_t^2 - sigma_s^2)/2 * score_F(x, t)`` on the torus; VP parts: the DDIM step inverted
exactly, including the clip of the clean estimate, :func:`vp_inverse_step`), accelerated per cell by Anderson
mixing of the last ``ANDERSON_MEMORY`` iterates. The first update, ``G(x_s)``, is the usual "DDIM inversion" with the
output taken at ``(x_s, t)``. (Why not a secant in ``x``: in the last step ``alpha_bar`` sits on its floor 1e-5, the
clean estimate is clipped outside a window of width ``2 X0_CLIP sqrt(1e-5)`` and the step jumps by about
``2 X0_CLIP sqrt(ab_s)`` (1.26 at 12 steps) across it; a secant in ``x`` lands on the wrong side of that kink and
stalls with exactly that residual. ``G`` has no such kink; a per-component secant also misreads coupled
components, Anderson mixing does not.)

Iterations stop when every cell's largest residual ``|D(x) - x_s|`` is below ``tol`` or after ``max_iters``
network evaluations; each cell keeps the whole iterate with the smallest summed residual (the first evaluation is at
the start ``x_s`` itself, so ``max_iters = 2`` is plain DDIM inversion), and that iterate's largest residual
(evaluated, not estimated) is the step's; the largest over all steps is reported per cell
(``CrystalLatent.residual``). The inversion is deterministic: no random numbers enter.

Species. Relaxed one-hot species (``GaussianSpecies``, the models shipped before issue 16) have a continuous latent
and may be encoded with the rest (``csp=False``). Absorbing (masked) species have none: the forward process only
masks, the prior is "all MASK" for every crystal, and the reverse reveals are random. Their crystals are encoded
and decoded in structure-prediction mode (``csp=True``: species held clean, the network's structure-prediction
flag on), which is also available for relaxed one-hot models.

Shapes: ``B`` cells with ``A`` atoms each (one atom count per call), ``K`` species classes, ``C`` species channels
(``K``, or ``K + 1`` with MASK). Fractional coordinates are dimensionless; lattices in Å.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.network import ScoreNetwork
from atomsmith.generators.diffusion.samplers import SamplerState, time_grid
from atomsmith.generators.diffusion.schedules import X0_CLIP, SigmaNorm, vp_reverse_step
from atomsmith.generators.diffusion.species import GaussianSpecies, species_process
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.graphs.batching import bucket_size
from atomsmith.structures.crystal import Crystal

#: default number of ODE steps of encoding and decoding (one network evaluation per decoding step).
DEFAULT_ODE_STEPS = 100
#: default largest residual accepted per inverse step (fractional coordinates; standardised lattice parameters).
DEFAULT_TOL = 1e-5
#: default network evaluations per inverse step at most.
DEFAULT_MAX_ITERS = 30
#: inverse steps per ``lax.scan`` chunk (every chunk has this length, so any step count uses one compilation).
CHUNK = 20
#: past iterates used by the Anderson acceleration of each inverse step's fixed-point iteration.
ANDERSON_MEMORY = 5
#: the clipped branch of the DDIM step is inverted only where its slope sqrt((1-ab_s)/(1-ab_t)) exceeds this
#: (it is ~0 only for the step to s = 0, where a clipped clean estimate cannot be reached).
CLIPPED_SLOPE_MIN = 0.1


def wrapped_difference(x, y):
    """Shortest signed difference ``x - y`` on the unit torus, in ``[-1/2, 1/2)`` (broadcasting, fractional)."""
    return (x - y + 0.5) % 1.0 - 0.5


@dataclasses.dataclass(frozen=True)
class CrystalLatent:
    """Latents of ``B`` cells with ``A`` atoms at t = 1.

    Attributes:
      frac: ``[B, A, 3]`` latent fractional coordinates on the torus, in ``[0, 1)``.
      z: ``[B, 6]`` latent standardised lattice parameters (a Gaussian latent).
      species: ``[B, A, C]`` the species input: latent relaxed one-hot (``csp=False``) or the clean species held
        along the ODE (``csp=True``, the network's input form).
      csp: species held (structure-prediction mode) rather than encoded.
      steps: ODE steps the latent was made with; decode with the same number.
      residual: ``[B]`` largest fixed-point residual of any inverse step (``nan`` where the latent was not made
        by :func:`encode`).
      overflow: ``[B]`` True where some step's neighbour list overflowed.
    """

    frac: np.ndarray
    z: np.ndarray
    species: np.ndarray
    csp: bool
    steps: int
    residual: np.ndarray
    overflow: np.ndarray

    def __len__(self) -> int:
        return int(self.frac.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.frac.shape[1])

    def rows(self, idx: Sequence[int] | np.ndarray) -> CrystalLatent:
        """The latents of cells ``idx``."""
        idx = np.asarray(idx, np.int64)
        return dataclasses.replace(self, frac=self.frac[idx], z=self.z[idx], species=self.species[idx],
                                   residual=self.residual[idx], overflow=self.overflow[idx])


# ---------------------------------------------------------------------------------------------- the jitted solver
def vp_inverse_step(x_s, eps, alpha_bar_t, alpha_bar_s):
    """The ``x_t`` with ``vp_reverse_step(x_t, eps, ab_t, ab_s, stochastic=False) == x_s`` for this fixed ``eps``
    (the DDIM step inverted exactly, including the clip of the clean estimate at ``+-X0_CLIP``).

    The DDIM step is piecewise linear in ``x_t``: slope ``sqrt(ab_s / ab_t)`` where the clean estimate is inside the
    clip, ``sqrt((1 - ab_s) / (1 - ab_t))`` where it is clipped. At the last step ``ab_t`` sits on its floor 1e-5, so
    the inside window is only ``2 X0_CLIP sqrt(ab_t)`` wide and the step jumps by about ``2 X0_CLIP sqrt(ab_s)``
    across it: a secant in ``x_t`` cannot cross that kink, the exact inverse can. Where ``1 - ab_s`` is ~0 (the step
    to s = 0) a clipped target is unreachable and the window's edge is returned."""
    a_t, c_t = jnp.sqrt(alpha_bar_t), jnp.sqrt(1.0 - alpha_bar_t)
    a_s, c_s = jnp.sqrt(alpha_bar_s), jnp.sqrt(1.0 - alpha_bar_s)
    u = (x_s - c_s * eps) / a_s  # the clean estimate that reproduces x_s
    sg = jnp.sign(u)
    inside = a_t * jnp.clip(u, -X0_CLIP, X0_CLIP) + c_t * eps
    outside = a_t * X0_CLIP * sg + c_t * (x_s - a_s * X0_CLIP * sg) / jnp.maximum(c_s, 1e-30)
    return jnp.where((jnp.abs(u) <= X0_CLIP) | (c_s <= CLIPPED_SLOPE_MIN * c_t), inside, outside)


def make_inverse_runner(config: DiffusionConfig, max_iters: int = DEFAULT_MAX_ITERS, tol: float = DEFAULT_TOL):
    """Jitted ``run(params, state, s, t, active, atom_mask, csp) -> (state, residual [B])`` over one chunk of inverse
    steps ``s -> t`` (each field ``[CHUNK]``; inactive steps are no-ops), see the module docstring.

    ``state``: a :class:`~atomsmith.generators.diffusion.samplers.SamplerState` at the chunk's first ``s``;
    ``csp``: bool scalar (species held). Returns the state at the chunk's last ``t`` and each cell's largest residual.
    """
    if max_iters < 2:
        raise ValueError(f"max_iters must be >= 2 (the first evaluation is at the start x_s), got {max_iters}")
    net = ScoreNetwork(config)
    sched = config.schedules
    sigma_norm = SigmaNorm(sched.sigma_min, sched.sigma_max)
    process = species_process(config)
    latent_species = isinstance(process, GaussianSpecies)

    def decoder_step(params, frac, z, species, t, s, atom_mask, csp):
        """The ODE sampler's step ``t -> s`` (``make_chunk_runner(method="ode")`` without guidance or infilling),
        with the network's lattice and species outputs."""
        b = frac.shape[0]
        dtype = frac.dtype
        m = atom_mask[..., None].astype(dtype)
        coord, eps_l, eps_a, overflow = net.apply(params, frac, config.lattice.decode(z), species, atom_mask,
                                                  jnp.full((b,), t), jnp.full((b,), csp, dtype))
        sf = coord * jnp.sqrt(sigma_norm(sched.sigma(t)))
        d2 = sched.sigma(t) ** 2 - sched.sigma(s) ** 2
        frac_s = (frac + 0.5 * d2 * sf * m) % 1.0
        z_s = vp_reverse_step(z, eps_l, sched.alpha_bar(t), sched.alpha_bar(s), jnp.zeros_like(z), False)
        if latent_species:
            species_s = process.step(species, eps_a, t, s, jax.random.PRNGKey(0), False) * m
            species_s = jnp.where(csp, species, species_s)
        else:
            species_s = species
        return frac_s, z_s, species_s, eps_l, eps_a, overflow

    def inverse_step(params, st: SamplerState, s, t, active, atom_mask, csp):
        b = st.frac.shape[0]
        dtype = st.frac.dtype
        m = atom_mask[..., None].astype(dtype)
        ab_t, ab_s = sched.alpha_bar(t), sched.alpha_bar(s)
        shapes = [a.shape for a in (st.frac, st.z, st.species)]
        sizes = [int(np.prod(sh[1:])) for sh in shapes]
        n = sum(sizes)

        def flat(parts):
            return jnp.concatenate([p.reshape(b, -1) for p in parts], axis=1)

        def unflat(v):
            out, o = [], 0
            for sh, size in zip(shapes, sizes):
                out.append(v[:, o:o + size].reshape(sh))
                o += size
            return out

        def evaluate(x):
            """Residuals ``D(x) - x_s`` and the plain fixed-point step ``G(x) - x`` (``G``: the step inverted
            with the network outputs frozen at ``x``; exact for the VP parts, see :func:`vp_inverse_step`)."""
            frac_s, z_s, species_s, eps_l, eps_a, overflow = decoder_step(params, *x, t, s, atom_mask, csp)
            r = (wrapped_difference(frac_s, st.frac) * m, z_s - st.z, (species_s - st.species) * m)
            f_species = jnp.zeros_like(x[2])
            if latent_species:
                f_species = (vp_inverse_step(st.species, eps_a, ab_t, ab_s) - x[2]) * m
                f_species = jnp.where(csp, jnp.zeros_like(f_species), f_species)
            f = (-r[0], vp_inverse_step(st.z, eps_l, ab_t, ab_s) - x[1], f_species)
            return r, f, overflow

        def cond(carry):
            k, best_max, active_ = carry[0], carry[8], carry[-1]
            return (k < max_iters) & jnp.any(best_max > tol) & active_

        def body(carry):
            k, x, x_prev, f_prev, dX, dF, have, best, best_max, best_l1, overflow, active_ = carry
            r, f, over = evaluate(x)
            # the whole iterate with the smallest summed residual is kept per cell (components are coupled through
            # the network, so mixing components of different iterates breaks the consistency at t ~ 1; a component
            # the decoder cannot reproduce adds a constant to every iterate's sum and does not hold back the rest)
            absr = [jnp.abs(ri).reshape(b, -1) for ri in r]
            l1 = sum(a.sum(axis=1) for a in absr)
            mx = jnp.max(jnp.stack([a.max(axis=1) for a in absr]), axis=0)
            better = l1 < best_l1
            best = tuple(jnp.where(better.reshape((-1,) + (1,) * (xi.ndim - 1)), xi, bi) for xi, bi in zip(x, best))
            best_max = jnp.where(better, mx, best_max)
            best_l1 = jnp.where(better, l1, best_l1)
            # Anderson acceleration (type II, memory ANDERSON_MEMORY) of the fixed point x = G(x), per cell
            fv = flat(f)
            dx = flat((wrapped_difference(x[0], x_prev[0]), x[1] - x_prev[1], x[2] - x_prev[2]))
            j = jnp.maximum(k - 1, 0) % ANDERSON_MEMORY
            upd = k > 0
            dX = jnp.where(upd, dX.at[:, j].set(dx), dX)
            dF = jnp.where(upd, dF.at[:, j].set(fv - f_prev), dF)
            have = jnp.where(upd, have.at[j].set(True), have)
            hm = have.astype(dtype)
            fm, xm = dF * hm[None, :, None], dX * hm[None, :, None]
            gram = jnp.einsum("bin,bjn->bij", fm, fm)
            rhs = jnp.einsum("bin,bn->bi", fm, fv)
            reg = 1e-8 * jnp.trace(gram, axis1=1, axis2=2) + 1e-30
            eye = jnp.eye(ANDERSON_MEMORY, dtype=dtype)
            gram = gram + reg[:, None, None] * eye + jnp.diag(1.0 - hm)[None]  # unused slots: coefficient 0
            gam = jnp.linalg.solve(gram, rhs[..., None])[..., 0]
            gam = jnp.where(jnp.isfinite(gam), gam, 0.0)
            x_new = unflat(flat(x) + fv - jnp.einsum("bi,bin->bn", gam, xm + fm))
            x_new = (x_new[0] % 1.0, x_new[1], x_new[2])
            return (k + 1, x_new, x, fv, dX, dF, have, best, best_max, best_l1, overflow | over, active_)

        x0 = (st.frac, st.z, st.species)
        mem = ANDERSON_MEMORY
        init = (jnp.zeros((), jnp.int32), x0, x0, jnp.zeros((b, n), dtype), jnp.zeros((b, mem, n), dtype),
                jnp.zeros((b, mem, n), dtype), jnp.zeros((mem,), bool), x0, jnp.full((b,), jnp.inf, dtype),
                jnp.full((b,), jnp.inf, dtype), jnp.zeros((b,), bool), jnp.asarray(active))
        out = jax.lax.while_loop(cond, body, init)
        best, best_max, overflow = out[7], out[8], out[10]
        new = SamplerState(best[0], best[1], best[2], st.overflow | overflow)
        new = jax.tree_util.tree_map(lambda a, c: jnp.where(active, a, c), new, st)
        return new, jnp.where(active, best_max, 0.0)

    @jax.jit
    def run(params, state: SamplerState, s, t, active, atom_mask, csp):
        def body(carry, xs):
            st, worst = carry
            si, ti, act = xs
            new, res = inverse_step(params, st, si, ti, act, atom_mask, csp)
            return (new, jnp.maximum(worst, res)), None

        worst = jnp.zeros((state.frac.shape[0],), state.frac.dtype)
        (state, worst), _ = jax.lax.scan(body, (state, worst), (s, t, active))
        return state, worst

    return run


def inverse_grid(n_steps: int, chunk: int = CHUNK) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(s, t, active)``, each ``[n_chunks, chunk]``: the ODE sampler's steps ``t -> s`` (:func:`time_grid`, the
    same float32 times) in reverse order, from ``s = 0`` up to ``t = 1``; the tail is padded inactive."""
    grid = time_grid(n_steps, n_steps, "ode")
    t = np.asarray(grid.t).reshape(-1)[::-1]
    s = np.asarray(grid.s).reshape(-1)[::-1]
    total = -(-n_steps // chunk) * chunk
    pad = total - n_steps
    active = np.concatenate([np.ones(n_steps, bool), np.zeros(pad, bool)])
    s = np.concatenate([s, np.ones(pad, np.float32)]).astype(np.float32)
    t = np.concatenate([t, np.ones(pad, np.float32)]).astype(np.float32)
    shape = (total // chunk, chunk)
    return jnp.asarray(s.reshape(shape)), jnp.asarray(t.reshape(shape)), jnp.asarray(active.reshape(shape))


# ---------------------------------------------------------------------------------------------- host side
def default_csp(model: Any) -> bool:
    """Whether species are held (structure-prediction mode) by default: always for absorbing species (no latent),
    never for relaxed one-hot species (their latent is encoded with the rest)."""
    return not isinstance(species_process(model.config), GaussianSpecies)


def check_csp(model: Any, csp: bool | None) -> bool:
    """``csp`` resolved (None: :func:`default_csp`); :class:`InvalidRequestError` for encoded absorbing species."""
    if csp is None:
        return default_csp(model)
    if not csp and default_csp(model):
        raise InvalidRequestError("this model's species diffuse by masking (absorbing species), which has no "
                                  "continuous latent: species are held along the ODE (csp=True)")
    return bool(csp)


def species_onehot(model: Any, numbers: np.ndarray) -> np.ndarray:
    """``[..., K]`` one-hot over the model's vocabulary of atomic numbers ``[...]`` (ValueError naming an element
    outside it)."""
    numbers = np.asarray(numbers)
    idx = np.vectorize(model._index, otypes=[np.int64])(numbers) if numbers.size else numbers.astype(np.int64)
    return np.eye(model.config.n_species, dtype=np.float32)[idx]


def _check_same_size(crystals: Sequence[Crystal]) -> int:
    if not crystals:
        raise InvalidRequestError("no crystals given")
    sizes = {c.n_atoms for c in crystals}
    if len(sizes) != 1:
        raise InvalidRequestError(f"one call encodes crystals of one atom count, got {sorted(sizes)}")
    return sizes.pop()


def _inverse_runner(model: Any, capacity: int, max_iters: int, tol: float):
    cache = model.__dict__.setdefault("_inverse_runners", {})
    key = (int(capacity), int(max_iters), float(tol))
    if key not in cache:
        config = dataclasses.replace(model.config, max_edges_per_cell=int(capacity))
        cache[key] = make_inverse_runner(config, max_iters, tol)
    return cache[key]


def _padded(rows: np.ndarray, b: int) -> np.ndarray:
    """``rows`` ``[n, ...]`` padded to ``b`` rows by repeating the first."""
    return np.concatenate([rows, np.repeat(rows[:1], b - len(rows), axis=0)]) if b > len(rows) else rows


def encode(model: Any, crystals: Sequence[Crystal], *, steps: int = DEFAULT_ODE_STEPS, csp: bool | None = None,
           max_iters: int = DEFAULT_MAX_ITERS, tol: float = DEFAULT_TOL, batch_size: int = 64) -> CrystalLatent:
    """Latents of ``crystals`` (one atom count) by inverting the probability-flow sampler (module docstring).

    Args:
      model: a :class:`~atomsmith.generators.diffusion.DiffusionModel`.
      crystals: cells of the same number of atoms ``A``; any orientation (only the six lattice parameters enter).
      steps: ODE steps (decode with the same number).
      csp: hold the species (structure-prediction mode); default: :func:`default_csp`.
      max_iters, tol: fixed-point budget and tolerance of each inverse step.
      batch_size: cells solved together (fixed shapes; a smaller last batch is padded to a bucketed size).
    Returns:
      a :class:`CrystalLatent` of ``len(crystals)`` cells.
    Raises:
      InvalidRequestError for mixed atom counts, encoded absorbing species, ``steps < 1``; ValueError for an element
      outside the model's vocabulary.
    """
    if steps < 1:
        raise InvalidRequestError(f"steps must be >= 1, got {steps}")
    csp = check_csp(model, csp)
    n_atoms = _check_same_size(crystals)
    process = species_process(model.config)
    frac_all = np.stack([np.asarray(c.frac_coords, np.float64) % 1.0 for c in crystals]).astype(np.float32)
    lattices = np.stack([np.asarray(c.lattice, np.float32) for c in crystals])
    z_all = np.asarray(model.config.lattice.encode(jnp.asarray(lattices)), np.float32)
    species_all = np.asarray(process.clean_input(jnp.asarray(np.stack([species_onehot(model, c.numbers)
                                                                        for c in crystals]))), np.float32)
    run = _inverse_runner(model, model._capacity(n_atoms), max_iters, tol)
    s_grid, t_grid, active = inverse_grid(steps)
    out_f, out_z, out_a, out_r, out_o = [], [], [], [], []
    n = len(crystals)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        b = bucket_size(stop - start, minimum=4) if stop - start < batch_size else batch_size
        state = SamplerState(jnp.asarray(_padded(frac_all[start:stop], b)), jnp.asarray(_padded(z_all[start:stop], b)),
                             jnp.asarray(_padded(species_all[start:stop], b)), jnp.zeros((b,), bool))
        atom_mask = jnp.ones((b, n_atoms), bool)
        worst = np.zeros(b, np.float32)
        for c in range(s_grid.shape[0]):
            state, res = run(model.params, state, s_grid[c], t_grid[c], active[c], atom_mask, jnp.asarray(csp))
            worst = np.maximum(worst, np.asarray(res))
        k = stop - start
        out_f.append(np.asarray(state.frac)[:k] % 1.0)
        out_z.append(np.asarray(state.z)[:k])
        out_a.append(np.asarray(state.species)[:k])
        out_r.append(worst[:k])
        out_o.append(np.asarray(state.overflow)[:k])
    return CrystalLatent(np.concatenate(out_f), np.concatenate(out_z), np.concatenate(out_a), csp, int(steps),
                         np.concatenate(out_r), np.concatenate(out_o))


def decode(model: Any, latent: CrystalLatent, *, guide: Any = None, guidance_scale: Any = None,
           batch_size: int = 64) -> list[Crystal]:
    """Crystals from latents: the probability-flow sampler (``method="ode"``) run from ``latent`` for
    ``latent.steps`` steps, in structure-prediction mode when ``latent.csp``.

    Args:
      model: the :class:`~atomsmith.generators.diffusion.DiffusionModel` that made the latents.
      latent: the start states.
      guide: a :class:`~atomsmith.generators.diffusion.conditioning.Guide` (gradient guidance inside the ODE, see
        :mod:`.conditioning`) or ``None``; ``guidance_scale``: ``[B]`` its strength per cell (default: the guide's).
    Returns:
      ``len(latent)`` crystals in the standard orientation (a along x), fractional coordinates in ``[0, 1)``;
      with a guide each has the property ``guidance_objective`` (the objective at its last denoised estimate).
    """
    from atomsmith.generators.diffusion.conditioning import Infill, guidance_spec
    from atomsmith.generators.diffusion.model import STEP_LR

    n, n_atoms = len(latent), latent.n_atoms
    capacity = model._capacity(n_atoms)
    run = model._runner("ode", STEP_LR, capacity)
    grid = time_grid(latent.steps, min(CHUNK, latent.steps), "ode")
    keys = jnp.zeros(grid.t.shape + (2,), jnp.uint32)  # the ODE step draws nothing it uses
    elements = np.asarray(model.config.elements)
    process = species_process(model.config)
    if guide is not None:
        guide = guide.replace(spec=guidance_spec(guide.spec.cutoff, model.config.encoder.cutoff, capacity,
                                                 model.config.n_images))
    scales = None if guidance_scale is None else np.broadcast_to(np.asarray(guidance_scale, np.float32), (n,))
    out: list[Crystal] = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        b = bucket_size(stop - start, minimum=4) if stop - start < batch_size else batch_size
        rows = latent.rows(np.arange(start, stop))
        state = SamplerState(jnp.asarray(_padded(rows.frac.astype(np.float32), b)),
                             jnp.asarray(_padded(rows.z.astype(np.float32), b)),
                             jnp.asarray(_padded(rows.species.astype(np.float32), b)), jnp.zeros((b,), bool))
        atom_mask = jnp.ones((b, n_atoms), bool)
        guide_b = None
        if guide is not None:
            guide_b = guide if scales is None else guide.replace(scale=jnp.asarray(_padded(scales[start:stop], b)))
        infill = Infill.none(b, n_atoms, model.config.n_species)
        values = None
        for c in range(grid.t.shape[0]):
            state, values = run(model.params, state, grid.chunk(c), keys[c], atom_mask, jnp.asarray(latent.csp),
                                guide_b, infill, None)
        lattices = np.asarray(model.config.lattice.decode(state.z), np.float64)
        frac = np.asarray(state.frac, np.float64) % 1.0
        frac[frac >= 1.0] = 0.0
        numbers = elements[np.asarray(process.indices(state.species))]
        for row in range(stop - start):
            props = {} if guide is None else {"guidance_objective": float(np.asarray(values)[row])}
            out.append(Crystal(lattices[row], frac[row], numbers[row], properties=props))
    return out
