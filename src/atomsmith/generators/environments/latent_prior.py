"""Latent distributions for sampling: the N(0, I) prior of the VAE, or a Gaussian mixture fitted to the posterior
means of the training environments (the "aggregate posterior").

A VAE trained with a small KL weight reconstructs well but leaves its posterior far from N(0, I), so prior draws
land in holes of the latent space and decode to implausible environments. Fitting a full-covariance Gaussian
mixture to the encoded training set (EM, a few seconds) and sampling from it fixes this without retraining
(a standard two-stage VAE remedy). Both distributions are distrax objects.
"""

from __future__ import annotations

import dataclasses

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.protocol import InvalidRequestError


@dataclasses.dataclass(frozen=True)
class LatentMixture:
    """A Gaussian mixture in latent space: ``weights [K]``, ``means [K, d]``, ``covariances [K, d, d]``."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def distribution(self, temperature: float = 1.0) -> distrax.MixtureSameFamily:
        """The mixture as a distrax distribution (covariances scaled by ``temperature^2``)."""
        scale = np.linalg.cholesky(self.covariances) * temperature
        return distrax.MixtureSameFamily(
            distrax.Categorical(probs=jnp.asarray(self.weights, jnp.float32)),
            distrax.MultivariateNormalTri(jnp.asarray(self.means, jnp.float32), jnp.asarray(scale, jnp.float32)))

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(),
                "covariances": self.covariances.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> LatentMixture:
        return cls(np.asarray(data["weights"], np.float64), np.asarray(data["means"], np.float64),
                   np.asarray(data["covariances"], np.float64))


def fit_mixture(z: np.ndarray, n_components: int = 16, n_iter: int = 200, seed: int = 0, reg: float = 1e-4,
                tol: float = 1e-6) -> LatentMixture:
    """Maximum-likelihood Gaussian mixture (EM, full covariances, k-means++-style initialisation) of ``z [m, d]``.

    ``reg`` is added to every covariance diagonal (relative to the data variance) to keep them positive definite.
    Raises ``ValueError`` if there are fewer points than components.
    """
    z = np.asarray(z, np.float64)
    m, d = z.shape
    if m < n_components:
        raise ValueError(f"need at least {n_components} latents to fit {n_components} components, got {m}")
    rng = np.random.default_rng(seed)
    centres = [z[rng.integers(m)]]
    for _ in range(n_components - 1):  # k-means++ seeding
        d2 = np.min(np.sum((z[:, None] - np.array(centres)[None]) ** 2, -1), axis=1)
        centres.append(z[rng.choice(m, p=d2 / d2.sum())])
    means = np.array(centres)
    ridge = reg * np.mean(np.var(z, axis=0)) * np.eye(d)
    cov = np.repeat((np.cov(z.T) + ridge)[None], n_components, axis=0)
    weights = np.full(n_components, 1.0 / n_components)
    previous = -np.inf
    for _ in range(n_iter):
        log_r = _log_gauss(z, means, cov) + np.log(weights)  # [m, K]
        top = log_r.max(axis=1, keepdims=True)
        log_norm = top + np.log(np.exp(log_r - top).sum(axis=1, keepdims=True))
        resp = np.exp(log_r - log_norm)
        ll = float(log_norm.mean())
        nk = resp.sum(axis=0) + 1e-10
        weights = nk / m
        means = (resp.T @ z) / nk[:, None]
        diff = z[None] - means[:, None]  # [K, m, d]
        cov = np.einsum("km,kmi,kmj->kij", resp.T, diff, diff) / nk[:, None, None] + ridge
        if ll - previous < tol:
            break
        previous = ll
    return LatentMixture(weights, means, cov)


def _log_gauss(z: np.ndarray, means: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)  # [K, d, d]
    diff = z[None] - means[:, None]  # [K, m, d]
    sol = np.linalg.solve(chol[:, None], diff[..., None])[..., 0]  # [K, m, d]
    logdet = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    d = z.shape[1]
    return (-0.5 * np.sum(sol ** 2, -1) - 0.5 * (logdet[:, None] + d * np.log(2 * np.pi))).T


def prior(latent_dim: int, dtype=jnp.float32) -> distrax.MultivariateNormalDiag:
    """p(z) = N(0, I_d), the prior of every VAE here."""
    return distrax.MultivariateNormalDiag(jnp.zeros((latent_dim,), dtype), jnp.ones((latent_dim,), dtype))


def draw_latents(key: jax.Array, n: int, latent_dim: int, mixture: LatentMixture | None, temperature: float = 1.0,
                 source: str = "auto") -> np.ndarray:
    """``[n, latent_dim]`` latent draws: from ``mixture`` (``source="mixture"``, or ``"auto"`` when one is given) or
    from the prior N(0, I) (``"prior"``); spreads scaled by ``temperature``. Shared by both environment VAEs."""
    if n < 1:
        raise InvalidRequestError(f"number of samples must be >= 1, got {n}")
    if source not in ("auto", "prior", "mixture"):
        raise InvalidRequestError(f"source must be auto, prior or mixture, got {source!r}")
    if source == "mixture" and mixture is None:
        raise InvalidRequestError("this model has no fitted latent mixture (see with_latent_mixture)")
    if source != "prior" and mixture is not None:
        return np.asarray(mixture.distribution(temperature).sample(seed=key, sample_shape=(n,)), np.float64)
    return np.asarray(prior(latent_dim).sample(seed=key, sample_shape=(n,))) * temperature


def neg_log_prior_fn(mixture: LatentMixture | None):
    """``z [..., d] -> [...]``: the latent prior's negative log density for latent optimisation (infilling,
    refinement) of either VAE. With a fitted ``mixture`` it is shifted to ~0 at the main mode, like the N(0, I)
    case ``|z|^2 / 2`` at 0."""
    if mixture is None:
        return lambda z: 0.5 * jnp.sum(z ** 2, axis=-1)
    dist = mixture.distribution()
    log_norm = float(dist.log_prob(jnp.asarray(mixture.means[:1], jnp.float32))[0])
    return lambda z: log_norm - dist.log_prob(z)
