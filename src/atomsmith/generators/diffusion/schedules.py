"""Noise schedules in continuous time t in [0, 1] and the wrapped-normal kernel on the torus.

* Fractional coordinates: variance-exploding wrapped normal (DiffCSP), ``F_t = (F_0 + sigma(t) eps) mod 1`` with a
  geometric ``sigma(t) = sigma_min^(1-t) sigma_max^t``. The transition density is the wrapped normal

      p(x | mu, s) = sum_k N(x - mu + k; 0, s^2)      (per dimension, k over integers)

  whose score is ``d/dx log p = sum_k w_k * (-(x - mu + k) / s^2)`` with ``w = softmax_k(-(x - mu + k)^2 / 2s^2)``.
  The network learns the score divided by ``sqrt(sigma_norm(s))``, ``sigma_norm(s) = E_{x~p}[score(x)^2]``
  (DiffCSP's normaliser; here computed by quadrature on a table of sigmas and interpolated in log sigma).
* Lattice parameters and relaxed one-hot species: variance-preserving DDPM with the cosine schedule
  ``alpha_bar(t) = cos^2(pi/2 (t + s)/(1 + s)) / cos^2(pi/2 s/(1 + s))``, ``x_t = sqrt(ab) x_0 + sqrt(1-ab) eps``.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

#: integer images summed in the wrapped-normal kernel (sigma <= 1 needs |k| <= 5 for float32 precision).
N_WRAP = 5


@dataclasses.dataclass(frozen=True)
class Schedules:
    """Schedule constants (all times in [0, 1]).

    Attributes:
      sigma_min, sigma_max: fractional-coordinate noise at t=0 and t=1 (DiffCSP: 0.005, 0.5).
      cosine_s: offset of the cosine alpha-bar schedule.
      t_min: smallest training time (avoids the singular sigma -> 0 end).
    """

    sigma_min: float = 0.005
    sigma_max: float = 0.5
    cosine_s: float = 0.008
    t_min: float = 1e-3

    def sigma(self, t):
        """Fractional noise scale ``[...]`` (dimensionless) at time ``t``."""
        return self.sigma_min ** (1.0 - t) * self.sigma_max ** t

    def alpha_bar(self, t):
        """Signal fraction of the VP (cosine) processes at time ``t``; 1 at t=0, ~0 at t=1."""
        s = self.cosine_s
        f = jnp.cos(0.5 * jnp.pi * (t + s) / (1.0 + s)) ** 2
        f0 = np.cos(0.5 * np.pi * s / (1.0 + s)) ** 2
        return jnp.clip(f / f0, 1e-5, 1.0)


#: bound of the clean estimate of the VP variables (standardised lattice parameters, relaxed one-hot species).
X0_CLIP = 5.0


def vp_clean_estimate(x, eps, alpha_bar):
    """Clean estimate of a VP variable from its noisy value and predicted noise,
    ``(x - sqrt(1 - ab) eps) / sqrt(ab)``, clipped to ``+-X0_CLIP`` (the samplers' steps and guidance use it)."""
    return jnp.clip((x - jnp.sqrt(1.0 - alpha_bar) * eps) / jnp.sqrt(alpha_bar), -X0_CLIP, X0_CLIP)


def vp_forward(x0, alpha_bar, noise):
    """Forward draw of a VP variable: ``x_t = sqrt(ab) x0 + sqrt(1 - ab) noise``.

    Args:
      x0: clean values (any shape).
      alpha_bar: signal fraction ``ab(t)`` (:meth:`Schedules.alpha_bar`), broadcasting against ``x0``.
      noise: standard normal draws, the shape of ``x0``.
    """
    return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * noise


def vp_renoise(x, alpha_bar_t, alpha_bar_s, noise):
    """Forward kernel of a VP variable from time ``s`` back to a later time ``t > s`` (RePaint's jump):
    ``sqrt(a) x + sqrt(1 - a) noise`` with ``a = ab(t) / ab(s)`` (``1 - a`` floored at 0).

    Args:
      x: values at time ``s`` (any shape).
      alpha_bar_t, alpha_bar_s: ``ab(t)`` and ``ab(s)``, broadcasting against ``x``.
      noise: standard normal draws, the shape of ``x``.
    """
    a = alpha_bar_t / alpha_bar_s
    return jnp.sqrt(a) * x + jnp.sqrt(jnp.maximum(1.0 - a, 0.0)) * noise


def vp_reverse_step(x, eps, alpha_bar_t, alpha_bar_s, noise, stochastic: bool = True):
    """One reverse step ``t -> s`` of a VP variable from its predicted noise: ancestral DDPM (posterior mean of
    ``q(x_s | x_t, x0_hat)`` plus ``noise`` scaled by the posterior std) or, when not ``stochastic``, DDIM
    (eta = 0, with ``eps`` made consistent with the clipped ``x0_hat``)."""
    x0 = vp_clean_estimate(x, eps, alpha_bar_t)
    if not stochastic:
        eps = (x - jnp.sqrt(alpha_bar_t) * x0) / jnp.sqrt(1 - alpha_bar_t)
        return jnp.sqrt(alpha_bar_s) * x0 + jnp.sqrt(1 - alpha_bar_s) * eps
    a_ts = alpha_bar_t / alpha_bar_s
    beta = 1 - a_ts
    mean = (jnp.sqrt(alpha_bar_s) * beta / (1 - alpha_bar_t)) * x0 + (jnp.sqrt(a_ts) * (1 - alpha_bar_s) / (1 - alpha_bar_t)) * x
    var = beta * (1 - alpha_bar_s) / (1 - alpha_bar_t)
    return mean + jnp.sqrt(jnp.maximum(var, 0.0)) * noise


def wrapped_normal_score(x, mu, sigma, n_wrap: int = N_WRAP):
    """Score ``d/dx log p(x | mu, sigma)`` of the wrapped normal on [0, 1); broadcasting shapes, fractional units."""
    k = jnp.arange(-n_wrap, n_wrap + 1, dtype=jnp.result_type(x, float))
    d = ((x - mu + 0.5) % 1.0 - 0.5)[..., None] + k  # wrap first so that few images suffice
    s2 = jnp.asarray(sigma)[..., None] ** 2
    logw = -(d ** 2) / (2.0 * s2)
    w = jnp.exp(logw - jnp.max(logw, axis=-1, keepdims=True))
    w = w / jnp.sum(w, axis=-1, keepdims=True)
    return jnp.sum(w * (-d / s2), axis=-1)


def _sigma_norm_table(sigma_min: float, sigma_max: float, n: int = 256, grid: int = 4001) -> tuple[np.ndarray, np.ndarray]:
    """``E[score^2]`` of the wrapped normal for ``n`` log-spaced sigmas, by quadrature over one period (float64)."""
    sigmas = np.geomspace(sigma_min * 0.5, sigma_max * 2.0, n)
    out = np.empty(n)
    k = np.arange(-10, 11)
    for i, s in enumerate(sigmas):
        # quadrature on [-1/2, 1/2) with enough points to resolve the narrowest kernel
        m = max(grid, int(20.0 / s))
        x = (np.arange(m) + 0.5) / m - 0.5
        d = x[:, None] + k[None, :]
        logg = -(d ** 2) / (2 * s * s)
        shift = logg.max(1, keepdims=True)
        g = np.exp(logg - shift)
        p = g.sum(1) * np.exp(shift[:, 0]) / (np.sqrt(2 * np.pi) * s)
        score = (g * (-d / (s * s))).sum(1) / g.sum(1)
        out[i] = np.sum(p * score ** 2) / m
    return sigmas, out


class SigmaNorm:
    """``sigma_norm(sigma) = E[score^2]`` interpolated in log-log space (jit friendly)."""

    def __init__(self, sigma_min: float, sigma_max: float) -> None:
        sigmas, values = _sigma_norm_table(sigma_min, sigma_max)
        self.log_sigmas = jnp.asarray(np.log(sigmas), jnp.float32)
        self.log_values = jnp.asarray(np.log(values), jnp.float32)

    def __call__(self, sigma):
        return jnp.exp(jnp.interp(jnp.log(sigma), self.log_sigmas, self.log_values))


def time_features(t, dim: int = 16):
    """Sinusoidal embedding ``[..., dim]`` of ``t`` in [0, 1] (log-spaced frequencies 1..1000)."""
    half = dim // 2
    freqs = jnp.exp(jnp.linspace(0.0, jnp.log(1000.0), half))
    angles = jnp.asarray(t)[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
