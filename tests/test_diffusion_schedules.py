"""Schedules, the wrapped-normal score and the lattice representation against independent float64 references."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.generators.diffusion.lattice import LatticeNormalizer, matrix_from_parameters, parameters_from_matrix
from atomsmith.generators.diffusion.schedules import Schedules, SigmaNorm, wrapped_normal_score


def _log_wrapped_normal(x, mu, sigma):
    k = np.arange(-30, 31)
    e = -((x - mu + k) ** 2) / (2 * sigma ** 2)
    return e.max() + np.log(np.sum(np.exp(e - e.max())))


@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.5, 1.0])
def test_wrapped_normal_score_matches_finite_differences(sigma):
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, mu = rng.random(), rng.random()
        h = 1e-6 * sigma
        fd = (_log_wrapped_normal(x + h, mu, sigma) - _log_wrapped_normal(x - h, mu, sigma)) / (2 * h)
        got = float(wrapped_normal_score(jnp.float32(x), jnp.float32(mu), jnp.float32(sigma)))
        assert abs(got - fd) <= 1e-3 * max(abs(fd), 1.0 / sigma), (sigma, x, mu, got, fd)


def test_wrapped_normal_score_is_periodic():
    x = jnp.array([0.1, 0.9, 0.45])
    a = wrapped_normal_score(x, 0.3, 0.2)
    b = wrapped_normal_score(x + 3.0, 0.3 - 1.0, 0.2)
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("sigma", [0.005, 0.05, 0.3])
def test_sigma_norm_matches_monte_carlo(sigma):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=200_000) * sigma) % 1.0
    mc = float(np.mean(np.asarray(wrapped_normal_score(jnp.asarray(x, jnp.float32), 0.0, sigma)) ** 2))
    got = float(SigmaNorm(0.005, 0.5)(jnp.float32(sigma)))
    assert got == pytest.approx(mc, rel=0.03)


def test_schedule_endpoints():
    s = Schedules()
    assert float(s.sigma(0.0)) == pytest.approx(s.sigma_min)
    assert float(s.sigma(1.0)) == pytest.approx(s.sigma_max)
    assert float(s.alpha_bar(0.0)) == pytest.approx(1.0)
    assert float(s.alpha_bar(1.0)) < 1e-3
    t = np.linspace(0, 1, 50)
    assert np.all(np.diff(np.asarray(s.alpha_bar(jnp.asarray(t)))) <= 1e-7)


def test_lattice_parameters_round_trip_keep_the_metric():
    rng = np.random.default_rng(2)
    for _ in range(20):
        lattice = np.eye(3) * 4 + rng.normal(size=(3, 3)) * 0.5
        if np.linalg.det(lattice) <= 0:
            continue
        back = np.asarray(matrix_from_parameters(jnp.asarray(parameters_from_matrix(lattice), jnp.float32)))
        np.testing.assert_allclose(back @ back.T, lattice @ lattice.T, rtol=1e-4, atol=1e-4)
        assert np.linalg.det(back) > 0


def test_lattice_parameters_are_rotation_invariant():
    rng = np.random.default_rng(3)
    lattice = np.eye(3) * 4 + rng.normal(size=(3, 3)) * 0.5
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    np.testing.assert_allclose(parameters_from_matrix(lattice @ q.T), parameters_from_matrix(lattice), atol=1e-8)


def test_normalizer_standardises_and_floors_spread():
    lattices = np.stack([np.eye(3) * a for a in (3.8, 4.0, 4.2)])
    norm = LatticeNormalizer.fit(lattices)
    z = np.asarray(norm.encode(jnp.asarray(lattices, jnp.float32)))
    np.testing.assert_allclose(z[:, :3].mean(0), 0.0, atol=1e-5)
    assert norm.std[3] == 5.0  # cubic cells: the angle spread is floored, not zero
    np.testing.assert_allclose(np.asarray(norm.decode(jnp.asarray(z))), lattices, atol=1e-4)
