"""Latent interpolation between two crystals with a diffusion model (probability-flow latents, :mod:`.inversion`).

    path = interpolate(model, a, b, steps=9)       # a CrystalPath: decoded frames a -> b
    report = round_trip(model, crystals)           # decode(encode(x)) against x

**Steps.** (1) ``b`` is re-described to line up with ``a`` (:mod:`.correspondence`: cell axes, origin, atom
order; the same atom count is required). (2) Both are encoded to t = 1 (:func:`.inversion.encode`). (3) The path
``tau = 0 .. 1`` (``steps`` frames, both ends included) runs

* along the torus geodesic for the coordinates: ``F(tau) = F_a + tau * wrap(F_b - F_a) mod 1``, the shortest way
  around the cell for each atom, so no atom crosses the whole cell between two frames;
* spherically for the Gaussian parts (lattice parameters, relaxed one-hot species): the direction is slerped and
  the norm interpolated linearly (the environment VAEs' ``spherical`` path,
  :func:`atomsmith.generators.environments.interpolation.latent_path`), which keeps every point at the typical radius of
  a standard normal; ``spherical=False`` gives the straight line.

(4) Every latent on the path is decoded by the probability-flow sampler (:func:`.inversion.decode`); the ends are the
two latents themselves, so the first and last frames are decode(encode(a)) and decode(encode(b)) and differ from the
inputs by the round-trip error reported in :attr:`CrystalPath.end_rms`.

**Species** (``species=``):

* ``"latent"`` (default for relaxed one-hot species, the models shipped before issue 16): the species are encoded
  with the rest and slerped; every frame's species are the decoded ones.
* ``"held"`` (default, and the only choice, for absorbing species, which have no continuous latent): structure-
  prediction mode, species held along the ODE. For the same composition every frame carries it. For different
  compositions of the same atom count, frames with ``tau < 1/2`` carry ``a``'s species and frames with
  ``tau >= 1/2`` their partners' in ``b`` (the composition switches once, at the midpoint).

**Guided interpolation.** With an ``objective`` (a shared guidance objective, e.g.
``PropertyTarget(predictor, 0.3)``), decoding uses the sampler's gradient guidance (:mod:`.conditioning`) with
strength ``guidance_scale * sin(pi tau)``: zero at the ends, so they still decode to the inputs, largest halfway.

Frames are returned with fractional coordinates *unwrapped* from frame to frame (each frame's coordinates are the
previous frame's plus the shortest wrapped displacement), so a viewer sees atoms move continuously, also across the
cell boundary; the first frame's coordinates are in ``[0, 1)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion import inversion as inv
from atomsmith.generators.diffusion.correspondence import Correspondence, match_atoms, wrap
from atomsmith.generators.diffusion.species import GaussianSpecies, species_process
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures.crystal import Crystal

SPECIES_MODES = ("latent", "held")


@dataclasses.dataclass(frozen=True)
class CrystalPath:
    """Decoded crystals along a latent path.

    Attributes:
      frames: ``T`` crystals from (the reconstruction of) ``first`` to ``second``; properties ``step``, ``t``;
        coordinates unwrapped frame to frame (module docstring).
      t: ``[T]`` path parameter in ``[0, 1]``.
      latents: the ``T`` latents decoded.
      first: the first input; second: the second input re-described to line up with the first (same structure).
      correspondence: how ``second`` was re-described (:class:`~.correspondence.Correspondence`).
      end_rms: StructureMatcher RMS (normalised, CSP tolerances) of the first frame against ``first`` and of the last
        frame against ``second``; ``None`` where they do not match.
      end_error: largest fractional-coordinate error (wrapped) of the two end frames against their inputs, atom by atom.
      residual: the two inversions' largest fixed-point residuals.
      species: ``"latent"`` or ``"held"``; switch: the frame index where a held composition switches (``None``: same
        composition or latent species).
    """

    frames: list[Crystal]
    t: np.ndarray
    latents: inv.CrystalLatent
    first: Crystal
    second: Crystal
    correspondence: Correspondence
    end_rms: tuple[float | None, float | None]
    end_error: tuple[float, float]
    residual: tuple[float, float]
    species: str
    switch: int | None = None

    def __len__(self) -> int:
        return len(self.frames)


# ---------------------------------------------------------------------------------------------- paths (jitted)
def slerp(a: jax.Array, b: jax.Array, tau: jax.Array, spherical: bool = True) -> jax.Array:
    """``[T, *shape]`` points from ``a`` to ``b`` (``*shape`` each, flattened as one vector): slerp of the directions
    with linearly interpolated norms, or the straight line; exactly ``a`` and ``b`` at ``tau`` = 0 and 1."""
    shape = a.shape
    a, b = a.reshape(-1), b.reshape(-1)
    tt = tau[:, None]
    line = (1.0 - tt) * a + tt * b
    if spherical:
        na, nb = jnp.linalg.norm(a), jnp.linalg.norm(b)
        ua, ub = a / jnp.maximum(na, 1e-12), b / jnp.maximum(nb, 1e-12)
        omega = jnp.arccos(jnp.clip(jnp.dot(ua, ub), -1.0, 1.0))
        small = (omega < 1e-4) | (omega > jnp.pi - 1e-3)  # (anti)parallel: no unique great circle, go straight
        sin = jnp.where(small, 1.0, jnp.sin(omega))
        arc = (jnp.sin((1.0 - tt) * omega) * ua + jnp.sin(tt * omega) * ub) / sin * ((1.0 - tt) * na + tt * nb)
        line = jnp.where((na < 1e-9) | (nb < 1e-9) | small, line, arc)
    out = jnp.where(tau[:, None] == 0.0, a, jnp.where(tau[:, None] == 1.0, b, line))
    return out.reshape((-1,) + shape)


def torus_path(fa: jax.Array, fb: jax.Array, tau: jax.Array) -> jax.Array:
    """``[T, A, 3]`` fractional coordinates along the shortest wrapped path from ``fa`` to ``fb`` (``[A, 3]``
    each), in ``[0, 1)``; exactly ``fa`` and ``fb mod 1`` at the ends."""
    tt = tau[:, None, None]
    out = (fa + tt * inv.wrapped_difference(fb, fa)) % 1.0
    return jnp.where(tt == 0.0, fa % 1.0, jnp.where(tt == 1.0, fb % 1.0, out))


_slerp = jax.jit(slerp, static_argnames=("spherical",))
_torus_path = jax.jit(torus_path)


def latent_path(a: inv.CrystalLatent, b: inv.CrystalLatent, steps: int, spherical: bool = True,
                species_a: np.ndarray | None = None, species_b: np.ndarray | None = None
                ) -> tuple[inv.CrystalLatent, np.ndarray]:
    """``(latents [steps], tau [steps])`` between two single-cell latents (module docstring). With held species
    (``a.csp``) each frame's species input is ``species_a`` for ``tau < 1/2`` and ``species_b`` after (default: the
    latents' own)."""
    if len(a) != 1 or len(b) != 1 or a.csp != b.csp or a.steps != b.steps or a.n_atoms != b.n_atoms:
        raise InvalidRequestError("latent_path takes two single-cell latents made the same way")
    tau_np = np.linspace(0.0, 1.0, steps)
    tau = jnp.asarray(tau_np, jnp.float32)
    frac = np.asarray(_torus_path(jnp.asarray(a.frac[0]), jnp.asarray(b.frac[0]), tau))
    z = np.asarray(_slerp(jnp.asarray(a.z[0]), jnp.asarray(b.z[0]), tau, spherical=spherical))
    if a.csp:
        sa = a.species[0] if species_a is None else species_a
        sb = b.species[0] if species_b is None else species_b
        species = np.where((tau_np < 0.5)[:, None, None], sa[None], sb[None]).astype(np.float32)
    else:
        species = np.asarray(_slerp(jnp.asarray(a.species[0]), jnp.asarray(b.species[0]), tau, spherical=spherical))
    residual = np.full(steps, np.nan, np.float32)
    residual[0], residual[-1] = a.residual[0], b.residual[0]
    overflow = np.zeros(steps, bool)
    return inv.CrystalLatent(frac, z, species, a.csp, a.steps, residual, overflow), tau_np


# ---------------------------------------------------------------------------------------------- helpers
def species_mode(model: Any, species: str | None) -> str:
    """``species`` resolved against the model (module docstring); :class:`InvalidRequestError` when impossible."""
    gaussian = isinstance(species_process(model.config), GaussianSpecies)
    if species is None:
        return "latent" if gaussian else "held"
    if species not in SPECIES_MODES:
        raise InvalidRequestError(f"unknown species mode {species!r}; choose one of {', '.join(SPECIES_MODES)}")
    if species == "latent" and not gaussian:
        raise InvalidRequestError("this model's species diffuse by masking (absorbing species), which has no "
                                  "continuous latent: use species='held'")
    return species


def unwrap_frames(frames: Sequence[Crystal]) -> list[Crystal]:
    """The frames with fractional coordinates unwrapped from frame to frame (the first kept as it is)."""
    out: list[Crystal] = []
    prev = None
    for frame in frames:
        frac = np.asarray(frame.frac_coords, np.float64)
        if prev is not None:
            frac = prev + wrap(frac - prev)
        out.append(frame.replace(frac_coords=frac))
        prev = frac
    return out


def max_wrapped_error(x: Crystal, y: Crystal) -> float:
    """Largest wrapped fractional difference between atom ``i`` of ``x`` and of ``y`` (same atom order)."""
    return float(np.max(np.abs(wrap(np.asarray(x.frac_coords) - np.asarray(y.frac_coords)))))


def lattice_errors(x: Crystal, y: Crystal) -> tuple[float, float]:
    """``(largest length difference Å, largest angle difference degrees)`` of two cells' parameters."""
    px, py = np.asarray(x.lattice_parameters), np.asarray(y.lattice_parameters)
    return float(np.max(np.abs(px[:3] - py[:3]))), float(np.max(np.abs(px[3:] - py[3:])))


def _rms(x: Crystal, y: Crystal) -> float | None:
    from atomsmith.metrics.matching import rms_dist

    return rms_dist(x, y)


# ---------------------------------------------------------------------------------------------- interpolation
def interpolate(model: Any, a: Crystal, b: Crystal, *, steps: int = 9, ode_steps: int = inv.DEFAULT_ODE_STEPS,
                species: str | None = None, spherical: bool = True, relabel_axes: bool = True,
                objective: Any = None, guidance_scale: float = 10.0,
                max_iters: int = inv.DEFAULT_MAX_ITERS, tol: float = inv.DEFAULT_TOL) -> CrystalPath:
    """Decoded crystals along the latent path from ``a`` to ``b`` (module docstring).

    Args:
      model: a :class:`~atomsmith.generators.diffusion.DiffusionModel`.
      a, b: crystals with the same number of atoms, every element in the model's vocabulary.
      steps: frames including both ends (>= 2).
      ode_steps: probability-flow steps of encoding and decoding.
      species: ``"latent"`` or ``"held"`` (default: by the model's species process).
      spherical: spherical (default) or straight paths for the Gaussian parts.
      relabel_axes: also try relabelling ``b``'s cell axes when matching atoms (:mod:`.correspondence`).
      objective: a shared guidance objective for guided decoding (``None``: plain interpolation).
      guidance_scale: its peak strength (at the midpoint; zero at the ends).
      max_iters, tol: the inversion's fixed-point budget and tolerance.
    Raises:
      InvalidRequestError for ``steps < 2``, different atom counts or an impossible species mode; ValueError for an
      element outside the model's vocabulary.
    """
    if steps < 2:
        raise InvalidRequestError(f"steps must be >= 2 (both end points are included), got {steps}")
    mode = species_mode(model, species)
    for crystal in (a, b):
        inv.species_onehot(model, crystal.numbers)  # vocabulary check before any work
    corr = match_atoms(a, b, relabel_axes=relabel_axes)
    b_aligned = corr.apply(b)
    csp = mode == "held"
    latents = inv.encode(model, [a, b_aligned], steps=ode_steps, csp=csp, max_iters=max_iters, tol=tol)
    la, lb = latents.rows([0]), latents.rows([1])
    path, tau = latent_path(la, lb, steps, spherical=spherical)
    guide, scales = None, None
    if objective is not None:
        guide = model._guide(objective, guidance_scale, (1.0, 1.0, 1.0), None, steps)
        scales = (guidance_scale * np.sin(np.pi * tau)).astype(np.float32)
        scales[0] = scales[-1] = 0.0
    decoded = inv.decode(model, path, guide=guide, guidance_scale=scales)
    switch = None
    if csp and not np.array_equal(np.asarray(a.numbers), np.asarray(b_aligned.numbers)):
        switch = int(np.argmax(tau >= 0.5))
    frames = [f.with_properties(step=i, t=float(tau[i])) for i, f in enumerate(unwrap_frames(decoded))]
    end_rms = (_rms(decoded[0], a), _rms(decoded[-1], b_aligned))
    end_error = (max_wrapped_error(decoded[0], a), max_wrapped_error(decoded[-1], b_aligned))
    return CrystalPath(frames, tau, path, a, b_aligned, corr, end_rms, end_error,
                       (float(la.residual[0]), float(lb.residual[0])), mode, switch)


def round_trip(model: Any, crystals: Sequence[Crystal], *, ode_steps: int = inv.DEFAULT_ODE_STEPS,
               species: str | None = None, max_iters: int = inv.DEFAULT_MAX_ITERS, tol: float = inv.DEFAULT_TOL,
               batch_size: int = 64, matcher: bool = True) -> dict[str, Any]:
    """decode(encode(x)) against x for every crystal (grouped by atom count; one fixed-shape batch per group).

    Returns a dict of per-crystal lists: ``rms`` (StructureMatcher RMS, normalised, CSP tolerances; ``None`` where
    no match; only with ``matcher``), ``frac_error`` (largest wrapped fractional error, same atom order),
    ``length_error`` (Å) and ``angle_error`` (degrees) of the cell parameters, ``species_ok`` (decoded species equal
    the input's), ``residual`` (the inversion's largest fixed-point residual); and ``decoded`` (the crystals).
    """
    mode = species_mode(model, species)
    crystals = list(crystals)
    decoded: list[Crystal | None] = [None] * len(crystals)
    residual = np.full(len(crystals), np.nan)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(crystals):
        groups.setdefault(c.n_atoms, []).append(i)
    for _, idx in sorted(groups.items()):
        latent = inv.encode(model, [crystals[i] for i in idx], steps=ode_steps, csp=mode == "held",
                            max_iters=max_iters, tol=tol, batch_size=batch_size)
        for i, x, r in zip(idx, inv.decode(model, latent, batch_size=batch_size), latent.residual):
            decoded[i], residual[i] = x, float(r)
    pairs = list(zip(crystals, decoded))
    out: dict[str, Any] = {"decoded": decoded, "residual": residual.tolist(),
                           "frac_error": [max_wrapped_error(y, x) for x, y in pairs],
                           "species_ok": [bool(np.array_equal(x.numbers, y.numbers)) for x, y in pairs]}
    errors = [lattice_errors(y, x) for x, y in pairs]
    out["length_error"] = [e[0] for e in errors]
    out["angle_error"] = [e[1] for e in errors]
    if matcher:
        out["rms"] = [_rms(y, x) for x, y in pairs]
    return out
