"""A trained Gram VAE: configuration, normaliser and parameters together, with the user-facing verbs
(encode, decode, reconstruct, sample, interpolate, infill) and the checkpoint round trip.

Environments are ``[m, n, 3]`` float arrays of neighbour vectors in Å (centre at the origin). Decoded environments
are returned in a canonical frame (principal axes of the inversion, or the decoder's own frame for the coordinate
decoder), neighbours ordered by distance, canonical mirror image (see representation.py).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.environments import ops
from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.environments.latent_prior import LatentMixture, draw_latents, fit_mixture
from atomsmith.generators.protocol import InvalidRequestError  # noqa: F401  (re-exported: part of this API)
from atomsmith.generators.gram_vae.network import GramVAENetwork, init_params
from atomsmith.generators.gram_vae.representation import GramNormalizer, canonical_mirror, gram_matrix, \
    gram_to_coordinates
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

CHECKPOINT_KIND = "gram-vae"


@dataclasses.dataclass(frozen=True, eq=False)
class GramVAE:
    """A Gram VAE ready to use.

    Attributes:
      config: architecture and loss.
      normalizer: Gram normalisation fitted on the training environments.
      params: network parameters (flax ``params`` collection).
      coord_scale: unit of the coordinate decoder's output, Å.
      metadata: provenance (how it was trained, metrics), stored in the checkpoint.
      latent_mixture: optional Gaussian mixture fitted to the training posterior means; when present, sampling
        draws from it instead of N(0, I) (see :mod:`atomsmith.generators.environments.latent_prior`).
    """

    kind: ClassVar[str] = CHECKPOINT_KIND

    config: GramVAEConfig
    normalizer: GramNormalizer
    params: Any
    coord_scale: float = 3.0
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    latent_mixture: LatentMixture | None = None

    # ------------------------------------------------------------------ construction and io
    @classmethod
    def initialize(cls, config: GramVAEConfig, normalizer: GramNormalizer, key: jax.Array) -> GramVAE:
        """Random initial parameters; ``coord_scale`` is the rms neighbour distance of the normaliser."""
        scale = float(np.sqrt(normalizer.mu_diag))
        return cls(config, normalizer, init_params(config, key, scale), scale)

    def replace(self, **changes: Any) -> GramVAE:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write a ``gram-vae`` checkpoint (atomsmith.training.checkpoint format)."""
        meta = {**dict(self.metadata), **dict(metadata or {}), "model": CHECKPOINT_KIND,
                "config": self.config.to_dict(), "normalizer": self.normalizer.to_dict(),
                "coord_scale": self.coord_scale,
                "latent_mixture": self.latent_mixture.to_dict() if self.latent_mixture is not None else None}
        return ckpt.save(path, {"params": self.params}, kind=CHECKPOINT_KIND, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GramVAE:
        """Read a ``gram-vae`` checkpoint; raises the checkpoint module's typed errors if it is corrupt or of
        another kind, ``CheckpointMismatchError`` if its parameters do not fit its own config."""
        header = ckpt.read_header(path)
        if header.get("kind") != CHECKPOINT_KIND:
            raise ckpt.CheckpointMismatchError(
                f"{path} holds a {header.get('kind')!r} checkpoint, expected {CHECKPOINT_KIND!r}")
        meta = header["metadata"]
        config = GramVAEConfig.from_dict(meta["config"])
        normalizer = GramNormalizer.from_dict(meta["normalizer"])
        scale = float(meta["coord_scale"])
        # shapes only (abstract evaluation): nothing is compiled before the file is verified
        template = {"params": jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0), scale))}
        state, meta = ckpt.load(path, kind=CHECKPOINT_KIND, target=template)
        mixture = LatentMixture.from_dict(meta["latent_mixture"]) if meta.get("latent_mixture") else None
        meta = {k: v for k, v in meta.items() if k != "latent_mixture"}
        return cls(config, normalizer, state["params"], scale, meta, mixture)

    def with_latent_mixture(self, vectors: Any, n_components: int = 16, seed: int = 0) -> GramVAE:
        """A copy that samples from a Gaussian mixture fitted to the posterior means of ``vectors`` ``[m, n, 3]``
        (the training environments)."""
        mean, _ = self.encode(vectors)
        return self.replace(latent_mixture=fit_mixture(mean, n_components, seed=seed))

    # ------------------------------------------------------------------ network access (jitted)
    @functools.cached_property
    def _net(self) -> GramVAENetwork:
        return GramVAENetwork(self.config, self.coord_scale)

    @functools.cached_property
    def _encode_jit(self):
        net = self._net
        return jax.jit(lambda p, f: net.apply({"params": p}, f, method=GramVAENetwork.encode))

    @functools.cached_property
    def _decode_jit(self):
        net = self._net
        return jax.jit(lambda p, z: net.apply({"params": p}, z, method=GramVAENetwork.decode))

    @property
    def n_neighbors(self) -> int:
        return self.config.n_neighbors

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def check_environments(self, vectors: Any, name: str = "environment") -> np.ndarray:
        """``[m, n, 3]`` float64 (a single ``[n, 3]`` is promoted); raises :class:`InvalidRequestError`."""
        arr = np.asarray(vectors, np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise InvalidRequestError(f"{name} must be [n_neighbors, 3] or [m, n_neighbors, 3], got {arr.shape}")
        if arr.shape[1] != self.n_neighbors:
            raise InvalidRequestError(
                f"{name} has {arr.shape[1]} neighbours; this model describes environments of exactly "
                f"{self.n_neighbors} neighbours within {self.config.r_cut} Å")
        if not np.all(np.isfinite(arr)):
            raise InvalidRequestError(f"{name} contains non-finite coordinates")
        return arr

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
        z = np.atleast_2d(np.asarray(z, np.float32))
        if z.shape[-1] != self.latent_dim:
            raise InvalidRequestError(f"latents must have dimension {self.latent_dim}, got {z.shape[-1]}")
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

    def sample_latents(self, key: jax.Array, n: int, temperature: float = 1.0, source: str = "auto"
                       ) -> np.ndarray:
        """``[n, d]`` latent draws (distrax): from the fitted latent mixture (``source="mixture"``, or ``"auto"``
        when one is fitted) or from the prior N(0, I) (``"prior"``); spreads scaled by ``temperature``."""
        return draw_latents(key, n, self.latent_dim, self.latent_mixture, temperature, source)

    def sample_environments(self, key: jax.Array, n: int, temperature: float = 1.0, source: str = "auto"
                            ) -> np.ndarray:
        """``n`` generated environments ``[n, n_neighbors, 3]`` Å (latents drawn as in :meth:`sample_latents`,
        decoded, inverted)."""
        return self.decode(self.sample_latents(key, n, temperature, source))

    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None,
               guidance: Sequence[Any] | None = None, fixed: Any = None) -> list[Crystal]:
        """The generator protocol: ``n`` environments as clusters (centre atom 0, then neighbours; Si) in a cubic
        box. ``fixed`` (``[k, 3]`` Å neighbour vectors) holds those atoms and generates the rest (infilling).
        Conditions and guidance are not supported by this model."""
        if conditions:
            raise NotImplementedError("the Gram VAE is unconditional")
        if guidance:
            raise NotImplementedError("the Gram VAE does not support guidance")
        if fixed is not None:
            from atomsmith.generators.gram_vae.infill import infill

            envs = infill(self, fixed, n, key).environments
        else:
            envs = self.sample_environments(key, n)
        return [ops.environment_to_crystal(e, source="gram-vae") for e in envs]

    def interpolate(self, a: Any, b: Any, steps: int = 9, spherical: bool = False) -> np.ndarray:
        """Environments along the straight (or spherical) latent path between the posterior means of ``a`` and
        ``b`` (``[n, 3]`` each): ``[steps, n, 3]`` Å, each frame aligned (O(3) + assignment) to the previous one
        and the first to ``a``, so the frames form a smooth trajectory."""
        from atomsmith.generators.gram_vae.interpolate import interpolate

        return interpolate(self, a, b, steps, spherical)
