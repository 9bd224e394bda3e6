"""The Γ dynamical-stability objective (atomsmith.guidance.stability): its batch Hessian against the host Hessian of
atomsmith.physics.phonons, its value against a NumPy eigen-decomposition, zero for diamond, positive for planar
silicene (which buckles), gradients against finite differences, and the guidance protocol (sums, padding)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs
from atomsmith.guidance import SWEnergyTarget, value_and_grad
from atomsmith.guidance.stability import GammaStability, gamma_hessians, spectral_penalty
from atomsmith.physics import phonons
from atomsmith.structures.crystal import Crystal

CUTOFF = 3.8  # covers SW's 3.77 Å


def diamond(a: float = 5.431) -> Crystal:
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    return Crystal(np.eye(3) * a, basis, [14] * 8)


def planar_silicene(a: float = 3.86, vacuum: float = 12.0) -> Crystal:
    """Flat honeycomb Si: a stationary point by symmetry whose out-of-plane optical mode at Γ (one sublattice up,
    the other down) is unstable, since buckling brings the 120° bond angles towards tetrahedral (real silicene is
    buckled)."""
    lattice = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, vacuum]])
    return Crystal(lattice, [[1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]], [14, 14])


def rattled(crystal: Crystal, seed: int, noise: float = 0.08) -> Crystal:
    rng = np.random.default_rng(seed)
    return Crystal.from_cartesian(crystal.lattice, crystal.positions + noise * rng.normal(size=(crystal.n_atoms, 3)),
                                  crystal.numbers)


def _batch(crystals):
    return batch_graphs(crystals, cutoff=CUTOFF, dtype=np.float64)


def reference_penalty(crystal: Crystal, margin: float = 0.0, scale: float = 1.0) -> float:
    """NumPy: eigenvalues of the host Hessian on the complement of the rigid translations."""
    n = crystal.n_atoms
    h = phonons.hessian(crystal).reshape(3 * n, 3 * n)
    translations = np.tile(np.eye(3), (n, 1)) / np.sqrt(n)  # [3n, 3]
    q, _ = np.linalg.qr(np.concatenate([translations, np.eye(3 * n)], axis=1))
    complement = q[:, 3:3 * n]  # orthonormal, orthogonal to the translations
    eig = np.linalg.eigvalsh(complement.T @ h @ complement)
    return float(np.sum(np.maximum(margin - eig, 0.0) ** 2) / scale ** 2)


def test_batch_hessians_equal_the_host_hessians():
    crystals = [rattled(diamond(), 0), rattled(planar_silicene(), 1), rattled(diamond().supercell((2, 1, 1)), 2)]
    with jax.enable_x64(True):
        hessians, valid, bad = jax.jit(gamma_hessians, static_argnames="max_atoms")(_batch(crystals), max_atoms=16)
    hessians, valid = np.asarray(hessians), np.asarray(valid)
    assert not np.any(np.asarray(bad)[:3])
    for g, crystal in enumerate(crystals):
        n3 = 3 * crystal.n_atoms
        assert valid[g].sum() == n3
        expected = phonons.hessian(crystal).reshape(n3, n3)
        np.testing.assert_allclose(hessians[g, :n3, :n3], expected, atol=1e-9 * np.abs(expected).max())
        assert np.all(hessians[g, n3:, :] == 0) and np.all(hessians[g, :, n3:] == 0)


def test_value_matches_numpy_zero_for_diamond_positive_for_planar_silicene():
    crystals = [diamond(), planar_silicene(), rattled(diamond(), 3)]
    with jax.enable_x64(True):
        batch = _batch(crystals)
        plain = np.asarray(jax.jit(lambda o, b: o(b))(GammaStability(max_atoms=8), batch))
        soft = np.asarray(jax.jit(lambda o, b: o(b))(GammaStability(margin=8.0, scale=2.0, max_atoms=8), batch))
    assert plain[0] == 0.0  # relaxed diamond: every optical eigenvalue positive, acoustic modes excluded
    assert plain[1] > 0.1  # planar silicene: the buckling mode
    assert np.all(plain[3:] == 0.0) and np.all(soft[3:] == 0.0)  # padding structures
    for g, crystal in enumerate(crystals):
        assert plain[g] == pytest.approx(reference_penalty(crystal), rel=1e-6, abs=1e-10)
        assert soft[g] == pytest.approx(reference_penalty(crystal, 8.0, 2.0), rel=1e-6, abs=1e-10)
    assert soft[0] > 0.0  # the transverse acoustic X modes of diamond (6.65 THz) are 5.1 eV/Å^2 < margin


def test_gradient_matches_finite_differences():
    crystals = [rattled(planar_silicene(), 4, noise=0.03), diamond()]
    objective = GammaStability(margin=2.0, max_atoms=8)
    with jax.enable_x64(True):
        batch = _batch(crystals)
        grads = jax.jit(value_and_grad)(objective, batch)
        assert np.all(np.isfinite(np.asarray(grads.frac_coords)))
        assert np.all(np.isfinite(np.asarray(grads.lattices)))
        rng = np.random.default_rng(0)
        d_frac = jnp.asarray(rng.normal(size=batch.frac_coords.shape) * np.asarray(batch.node_mask)[:, None] * 1e-3)
        d_lat = jnp.asarray(rng.normal(size=batch.lattices.shape) * 1e-2)
        f = jax.jit(lambda fr, la: jnp.sum(objective(batch.replace(frac_coords=fr, lattices=la))))
        eps = 1e-4
        fd = (f(batch.frac_coords + eps * d_frac, batch.lattices + eps * d_lat)
              - f(batch.frac_coords - eps * d_frac, batch.lattices - eps * d_lat)) / (2 * eps)
        analytic = jnp.sum(grads.frac_coords * d_frac) + jnp.sum(grads.lattices * d_lat)
    assert float(analytic) == pytest.approx(float(fd), rel=1e-4)
    assert abs(float(analytic)) > 1e-6  # the direction does change the value


def test_spectral_penalty_gradient_is_finite_at_degenerate_eigenvalues():
    # diag(-1, -1, 2): a doubly degenerate negative eigenvalue (differentiating eigh itself divides by zero there);
    # d/dH sum relu(-lambda)^2 = V diag(-2 relu(-lambda)) V^T = diag(-2, -2, 0)
    h = jnp.diag(jnp.array([-1.0, -1.0, 2.0]))
    g = jax.grad(spectral_penalty)(h, 0.0)
    np.testing.assert_allclose(np.asarray(g), np.diag([-2.0, -2.0, 0.0]), atol=1e-6)
    assert float(spectral_penalty(h, 0.0)) == pytest.approx(2.0)


def test_adds_up_with_other_objectives_and_flags_oversized_structures():
    crystals = [planar_silicene(), diamond()]
    with jax.enable_x64(True):
        batch = _batch(crystals)
        stability = GammaStability(max_atoms=8)
        energy = SWEnergyTarget(-4.0, core=0.0)
        total = np.asarray((2.0 * stability + energy)(batch))
        np.testing.assert_allclose(total, 2.0 * np.asarray(stability(batch)) + np.asarray(energy(batch)))
        small = np.asarray(GammaStability(max_atoms=4)(batch))
    assert np.isnan(small[1]) and np.isfinite(small[0])  # 8 atoms do not fit max_atoms=4
