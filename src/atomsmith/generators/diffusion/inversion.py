"""Crystal latents by probability-flow inversion: ``encode`` a crystal to the t = 1 prior, ``decode`` it back.

**Decode** is the existing probability-flow sampler (``method="ode"`` of :mod:`.samplers`) started from a given
state instead of a prior draw: per step ``t -> s`` (grid ``t_i = i / N``)

    F_s = (F_t + (sigma_t^2 - sigma_s^2) / 2 * score_F(x_t, t)) mod 1          (wrapped coordinates, VE)
    z_s = DDIM(z_t, eps_l(x_t, t))                                             (lattice parameters, VP, eta = 0)
    A_s = DDIM(A_t, eps_a(x_t, t))   (relaxed one-hot species)  or  A_s = A_t  (species held: structure prediction)

**Encode** inverts these steps one by one, from t = 0 (the crystal) to t = 1, on exactly the decoder's time grid,
so that decode(encode(x)) = x up to the solver tolerance and not only up to the discretisation error of the
ODE. Each inverse step solves ``D(x_t) = x_s`` for ``x_t`` (``D`` = the decoder step above, which evaluates the
network at ``x_t``) by a safeguarded fixed-point iteration started from ``x_t = x_s``:

    x <- x - R(x) / gamma,     R(x) = D(x) - x_s   (coordinates: the shortest wrapped difference on the torus)

``gamma`` is a per-component slope of ``D``: first its value for a constant network output (1 for the coordinates,
``sqrt(ab_s / ab_t)`` for the VP parts: this first iteration is the usual "DDIM inversion" with the output taken at
``(x_s, t)``), then the secant slope ``dR / dx`` of the last two iterates, kept in ``[0.5, 2 gamma_0]``. (The plain
iteration converges at the rate ``1 - D'/gamma_0``. For the lattice in the last step ``alpha_bar`` drops to its
floor 1e-5, so ``gamma_0`` is large while ``D'`` stays near 1 for a network whose noise prediction follows its input
at t = 1: from the schedule the rate is about 0.8 at 100 steps (derived, not measured); the secant slope fixes that.)

Iterations stop when every component's residual is below ``tol`` or after ``max_iters`` network evaluations; each
component keeps the value of the iterate where its residual was smallest (the first evaluation is at the start
``x_s`` itself, so ``max_iters = 2`` is about plain DDIM inversion), and the returned state is evaluated once more:
the largest residual of any step is reported per cell (``CrystalLatent.residual``; one network evaluation per step
on top of the iterations). The inversion is deterministic: no random numbers enter.

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
from atomsmith.generators.diffusion.schedules import SigmaNorm, vp_reverse_step
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
#: bounds of the secant slope relative to the constant-output slope (lower bound absolute, see module docstring).
SLOPE_FLOOR = 0.5
SLOPE_CEIL = 2.0


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
        """The ODE sampler's step ``t -> s`` (``make_chunk_runner(method="ode")`` without guidance or infilling)."""
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
        return frac_s, z_s, species_s, overflow

    def inverse_step(params, st: SamplerState, s, t, active, atom_mask, csp):
        b = st.frac.shape[0]
        dtype = st.frac.dtype
        m = atom_mask[..., None].astype(dtype)
        g_vp = jnp.sqrt(sched.alpha_bar(s) / sched.alpha_bar(t))  # slope of the VP step for a constant output
        g0 = (jnp.ones_like(st.frac), jnp.full_like(st.z, g_vp), jnp.full_like(st.species, g_vp))
        ceil = (SLOPE_CEIL, SLOPE_CEIL * g_vp, SLOPE_CEIL * g_vp)

        def residuals(x):
            frac_s, z_s, species_s, overflow = decoder_step(params, *x, t, s, atom_mask, csp)
            r = (wrapped_difference(frac_s, st.frac) * m, z_s - st.z, (species_s - st.species) * m)
            norm = jnp.maximum(jnp.max(jnp.abs(r[0]), axis=(1, 2)), jnp.max(jnp.abs(r[1]), axis=1))
            norm = jnp.maximum(norm, jnp.max(jnp.abs(r[2]), axis=(1, 2)))
            return r, norm, overflow

        def diff(i, a, b_):
            return wrapped_difference(a, b_) if i == 0 else a - b_

        def cond(carry):
            k, _, _, _, _, _, best_r, _ = carry
            unsolved = jnp.any(jnp.stack([jnp.any(r > tol) for r in best_r]))
            return (k < max_iters) & unsolved & active

        def body(carry):
            k, x, x_prev, r_prev, gamma, best, best_r, overflow = carry
            r, _, over = residuals(x)
            # each component keeps its best iterate: a component the decoder cannot reproduce (e.g. a lattice angle
            # its denoiser collapses onto the training value at t -> 0) must not hold back the others
            better = tuple(jnp.abs(ri) < bi for ri, bi in zip(r, best_r))
            best = tuple(jnp.where(bt, xi, bi) for bt, xi, bi in zip(better, x, best))
            best_r = tuple(jnp.minimum(jnp.abs(ri), bi) for ri, bi in zip(r, best_r))
            new_gamma = []
            for i in range(3):
                dx = diff(i, x[i], x_prev[i])
                slope = (r[i] - r_prev[i]) / jnp.where(jnp.abs(dx) > 1e-6, dx, 1.0)
                secant = jnp.where(slope > 0, jnp.clip(slope, SLOPE_FLOOR, ceil[i]), g0[i])
                new_gamma.append(jnp.where((k > 0) & (jnp.abs(dx) > 1e-6), secant, gamma[i]))
            step = tuple(r[i] / new_gamma[i] for i in range(3))
            x_new = ((x[0] - step[0]) % 1.0, x[1] - step[1], x[2] - step[2])
            return k + 1, x_new, x, r, tuple(new_gamma), best, best_r, overflow | over

        x0 = (st.frac, st.z, st.species)
        zeros = tuple(jnp.zeros_like(a) for a in x0)
        infs = tuple(jnp.full_like(a, jnp.inf) for a in x0)
        init = (jnp.zeros((), jnp.int32), x0, x0, zeros, g0, x0, infs, jnp.zeros((b,), bool))
        _, _, _, _, _, best, _, overflow = jax.lax.while_loop(cond, body, init)
        _, res, over = residuals(best)  # the residual of what is returned (components picked from different iterates)
        new = SamplerState(best[0], best[1], best[2], st.overflow | overflow | over)
        new = jax.tree_util.tree_map(lambda a, c: jnp.where(active, a, c), new, st)
        return new, jnp.where(active, res, 0.0)

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
