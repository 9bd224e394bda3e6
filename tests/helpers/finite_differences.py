"""Float64 central finite-difference check of guidance gradients along random directions (shared by the guidance
tests)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_objective_gradients(objective, batch, species, result, label: str = "", eps: float = 1e-6,
                              seed: int = 7):
    """Compare ``result`` (:func:`atomsmith.guidance.value_and_grad` of ``objective``) with central differences of
    ``sum(objective)`` along random directions of fractional coordinates, lattice and species weights (padding
    masked). Fails if a probe's gradient is ~0 (a vacuous check) or differs by more than 1e-6 (relative to
    max(1, |fd|)). Call inside ``jax.enable_x64(True)`` with a float64 batch. Returns ``(rng, lattice direction,
    jitted summed objective f(frac, lattices, species))`` for further probes."""
    @jax.jit
    def f(frac, lattices, sp):
        return jnp.sum(objective(batch.replace(frac_coords=frac, lattices=lattices), sp))

    rng = np.random.default_rng(seed)
    node_mask = np.asarray(batch.node_mask)[:, None]
    d_frac = jnp.asarray(rng.normal(size=batch.frac_coords.shape) * node_mask)
    d_lat = jnp.asarray(rng.normal(size=batch.lattices.shape) * np.asarray(batch.graph_mask)[:, None, None])
    d_sp = jnp.asarray(rng.normal(size=species.shape) * node_mask)
    for what, grad, direction, args in [
        ("frac", result.frac_coords, d_frac, lambda e: (batch.frac_coords + e * d_frac, batch.lattices, species)),
        ("lattice", result.lattices, d_lat, lambda e: (batch.frac_coords, batch.lattices + e * d_lat, species)),
        ("species", result.species_weights, d_sp, lambda e: (batch.frac_coords, batch.lattices, species + e * d_sp)),
    ]:
        fd = float((f(*args(eps)) - f(*args(-eps))) / (2 * eps))
        analytic = float(jnp.sum(grad * direction))
        assert abs(analytic) > 1e-6, (label, what, "gradient is ~0 along the probe: vacuous")
        assert abs(analytic - fd) <= 1e-6 * max(1.0, abs(fd)), (label, what, analytic, fd)
    return rng, d_lat, f
