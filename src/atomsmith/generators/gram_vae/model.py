"""A trained Gram VAE: configuration, normaliser and parameters together, with the user-facing verbs
(encode, decode, reconstruct, sample, interpolate, infill); the checkpoint round trip, latent draws and shape
checks are the shared :class:`~atomsmith.generators.environments.model.EnvironmentVAE`'s.

Environments are ``[m, n, 3]`` float arrays of neighbour vectors in Å (centre at the origin). Decoded environments
are returned in a canonical frame (principal axes of the inversion, or the decoder's own frame for the coordinate
decoder), neighbours ordered by distance, canonical mirror image (see representation.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.environments import ops
from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.environments.latent_prior import LatentMixture, fit_mixture
from atomsmith.generators.environments.model import EnvironmentVAE
from atomsmith.generators.environments.options import EnvironmentOptions
from atomsmith.generators.protocol import FixedNeighbors, InvalidRequestError
from atomsmith.generators.gram_vae.network import GramVAENetwork, init_params
from atomsmith.generators.gram_vae.representation import GramNormalizer, canonical_mirror, gram_matrix, \
    gram_to_coordinates

CHECKPOINT_KIND = "gram-vae"


@dataclasses.dataclass(frozen=True, eq=False)
class GramVAE(EnvironmentVAE, kind=CHECKPOINT_KIND, config_type=GramVAEConfig, network_type=GramVAENetwork,
              init_params=init_params):
    """A Gram VAE ready to use: the fields of :class:`~atomsmith.generators.environments.model.EnvironmentVAE`
    (``config``, ``params``, ``coord_scale`` Å, ``metadata``, ``latent_mixture``) plus ``normalizer``, the Gram
    normalisation fitted on the training environments (a keyword argument)."""

    normalizer: GramNormalizer = dataclasses.field(kw_only=True)

    # ------------------------------------------------------------------ construction and io
    @classmethod
    def initialize(cls, config: GramVAEConfig, normalizer: GramNormalizer, key: jax.Array) -> GramVAE:
        """Random initial parameters; ``coord_scale`` is the rms neighbour distance of the normaliser."""
        scale = float(np.sqrt(normalizer.mu_diag))
        return cls(config, init_params(config, key, scale), scale, normalizer=normalizer)

    def _extra_metadata(self) -> dict[str, Any]:
        return {"normalizer": self.normalizer.to_dict()}

    @classmethod
    def _extra_fields(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {"normalizer": GramNormalizer.from_dict(meta["normalizer"])}

    def with_latent_mixture(self, vectors: Any, n_components: int = 16, seed: int = 0) -> GramVAE:
        """A copy that samples from a Gaussian mixture fitted to the posterior means of ``vectors`` ``[m, n, 3]``
        (the training environments)."""
        mean, _ = self.encode(vectors)
        return self.replace(latent_mixture=fit_mixture(mean, n_components, seed=seed))

    # ------------------------------------------------------------------ network access (jitted)
    @functools.cached_property
    def _encode_jit(self):
        net = self._net
        return jax.jit(lambda p, f: net.apply({"params": p}, f, method=GramVAENetwork.encode))

    def check_environments(self, vectors: Any, name: str = "environment") -> np.ndarray:
        """``[m, n, 3]`` float64 (a single ``[n, 3]`` is promoted); raises :class:`InvalidRequestError`."""
        return self._check_vectors(vectors, name)

    # ------------------------------------------------------------------ verbs
    def features(self, vectors: Any) -> np.ndarray:
        """Normalised packed Gram features ``[m, F]`` of environments ``[m, n, 3]`` (distance-ordered first)."""
        arr = self.check_environments(vectors)
        arr = np.stack([ops.sort_by_distance(e) for e in arr])
        return np.asarray(self.normalizer.normalize(gram_matrix(arr)), np.float32)

    def encode(self, vectors: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior ``(mean [m, d], std [m, d])`` of environments ``[m, n, 3]`` Å. Invariant to rotations,
        reflections and (through distance ordering, or by construction for the shared encoder) relabelling of
        the neighbours."""
        arr = self.check_environments(vectors)
        arr = np.stack([ops.sort_by_distance(e) for e in arr]).astype(np.float32)
        inputs = self.features(arr) if self.config.encoder == "mlp" else arr
        means, stds = [], []
        for start in range(0, len(inputs), 1024):
            mean, log_std = self._encode_jit(self.params, jnp.asarray(inputs[start:start + 1024]))
            means.append(np.asarray(mean, np.float64))
            stds.append(np.exp(np.asarray(log_std, np.float64)))
        return np.concatenate(means), np.concatenate(stds)

    def decode_raw(self, z: Any) -> np.ndarray:
        """Decoder output for latents ``[m, d]``: normalised Gram features ``[m, F]`` or coordinates ``[m, n, 3]``."""
        z = self._check_latents(z)
        return np.asarray(self._decode_jit(self.params, jnp.asarray(z)), np.float64)

    def decode_gram(self, z: Any) -> np.ndarray:
        """Decoded Gram matrices ``[m, n, n]`` Å^2."""
        raw = self.decode_raw(z)
        if self.config.decoder == "coords":
            return gram_matrix(raw)
        return np.asarray(self.normalizer.denormalize(raw), np.float64)

    def decode(self, z: Any, ordered: bool = True) -> np.ndarray:
        """Decoded environments ``[m, n, 3]`` Å: distance-ordered with the canonical mirror image, or with
        ``ordered=False`` in the decoder's own slot order (row ``i`` is slot ``i`` of the decoded Gram matrix)."""
        raw = self.decode_raw(z)
        coords = raw if self.config.decoder == "coords" else gram_to_coordinates(
            np.asarray(self.normalizer.denormalize(raw), np.float64)).coordinates
        if not ordered:
            return coords
        coords = np.stack([ops.sort_by_distance(c) for c in coords])
        return canonical_mirror(coords)

    def reconstruct(self, vectors: Any) -> np.ndarray:
        """Decode the posterior mean of each environment: ``[m, n, 3] -> [m, n, 3]`` Å."""
        mean, _ = self.encode(vectors)
        return self.decode(mean)

    def _draw(self, key: jax.Array, n: int, options: EnvironmentOptions) -> tuple[np.ndarray, np.ndarray]:
        envs = self.sample_environments(key, n, options.temperature, options.latents)
        return envs, np.full((len(envs), envs.shape[1] + 1), 14)  # Si: the Gram VAE carries no species

    def _infill(self, request: FixedNeighbors, n: int, key: jax.Array, options: EnvironmentOptions):
        from atomsmith.generators.gram_vae.infill import infill

        if request.numbers is not None:
            raise InvalidRequestError(f"{options.label or self.kind} describes Si environments without species: "
                                      "hold neighbours without atomic numbers")
        return infill(self, request.vectors, n, key, options.infill)

    def interpolate(self, a: Any, b: Any, steps: int = 9, spherical: bool = False) -> np.ndarray:
        """Environments along the straight (or spherical) latent path between the posterior means of ``a`` and
        ``b`` (``[n, 3]`` each): ``[steps, n, 3]`` Å, each frame aligned (O(3) + assignment) to the previous one
        and the first to ``a``, so the frames form a smooth trajectory."""
        from atomsmith.generators.gram_vae.interpolate import interpolate

        return interpolate(self, a, b, steps, spherical)
