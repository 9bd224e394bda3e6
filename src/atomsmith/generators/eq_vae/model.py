"""A trained equivariant VAE: configuration and parameters together, with the user-facing verbs (encode, decode,
reconstruct, sample, interpolate, infill); the checkpoint round trip, latent draws and shape checks are the shared
:class:`~atomsmith.generators.environments.model.EnvironmentVAE`'s.

Environments are ``[m, n, 3]`` float arrays of neighbour vectors in Å (centre at the origin) with optional atomic
numbers ``[m, n + 1]`` (centre first; all Si when omitted for a Si-only model). Unlike the Gram VAE, decoding can
happen in the *input's own frame* (the encoder's equivariant frame), so reconstructions need no alignment and
mirror images are reproduced as mirror images.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.eq_vae.config import EqVAEConfig
from atomsmith.generators.eq_vae.network import EqVAENetwork, init_params, species_index, to_input_frame
from atomsmith.generators.environments.latent_prior import LatentMixture, fit_mixture
from atomsmith.generators.environments.model import EnvironmentVAE
from atomsmith.generators.environments.options import EnvironmentOptions
from atomsmith.generators.protocol import FixedNeighbors, InvalidRequestError

CHECKPOINT_KIND = "eq-vae"
_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Decoded environments.

    Attributes:
      vectors: ``[m, n, 3]`` Å, in the requested frame (canonical frame when none was given).
      numbers: ``[m, n + 1]`` most likely atomic numbers, centre first.
    """

    vectors: np.ndarray
    numbers: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class EqVAE(EnvironmentVAE, kind=CHECKPOINT_KIND, config_type=EqVAEConfig, network_type=EqVAENetwork,
            init_params=init_params):
    """An equivariant VAE ready to use: the fields of :class:`~atomsmith.generators.environments.model.EnvironmentVAE`
    (``config``, ``params``, ``coord_scale`` Å, the rms neighbour distance of the training data, ``metadata``,
    ``latent_mixture``)."""

    #: decodings keep their handedness (the frame is O(3)-equivariant), so trajectories align in SO(3)
    mirror_aware: ClassVar[bool] = True

    # ------------------------------------------------------------------ construction and io
    @classmethod
    def initialize(cls, config: EqVAEConfig, key: jax.Array, coord_scale: float = 3.0) -> EqVAE:
        return cls(config, init_params(config, key, coord_scale), coord_scale)

    def with_latent_mixture(self, vectors: Any, numbers: Any = None, n_components: int = 16, seed: int = 0
                            ) -> EqVAE:
        """A copy that samples from a Gaussian mixture fitted to the posterior means of the given (training)
        environments."""
        mean, _ = self.encode(vectors, numbers)
        return self.replace(latent_mixture=fit_mixture(mean, n_components, seed=seed))

    # ------------------------------------------------------------------ network access (jitted)
    @functools.cached_property
    def _encode_jit(self):
        net = self._net
        return jax.jit(lambda p, x, z: net.apply({"params": p}, x, z, method=EqVAENetwork.encode))

    def check_environments(self, vectors: Any, numbers: Any = None, name: str = "environment"
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``([m, n, 3] float64, [m, n + 1] int)`` (a single environment is promoted); numbers default to the
        model's only element. Raises :class:`InvalidRequestError` with the reason."""
        arr = self._check_vectors(vectors, name)
        if numbers is None:
            if self.config.n_species != 1:
                raise InvalidRequestError(f"{name}: this model knows several elements {list(self.config.species)}; "
                                          "give the atomic numbers (centre first)")
            z = np.full((arr.shape[0], arr.shape[1] + 1), self.config.species[0], np.int32)
        else:
            z = np.asarray(numbers, np.int32)
            if z.ndim == 1:
                z = z[None]
            if z.shape != (arr.shape[0], arr.shape[1] + 1):
                raise InvalidRequestError(f"{name}: numbers must be [m, n_neighbors + 1] (centre first), got "
                                          f"{z.shape} for {arr.shape[0]} environment(s)")
            try:
                species_index(self.config, z)
            except ValueError as exc:
                raise InvalidRequestError(f"{name}: {exc}") from None
        return arr, z

    # ------------------------------------------------------------------ verbs
    def encode_with_frames(self, vectors: Any, numbers: Any = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior ``mean [m, d]``, ``std [m, d]`` (invariant under O(3) and relabelling of the neighbours) and
        the equivariant frames ``[m, 3, 3]`` (orthogonal, ``det = ±1``; rotating the input by ``Q`` gives
        ``Q R``)."""
        arr, z = self.check_environments(vectors, numbers)
        out = [self._encode_jit(self.params, jnp.asarray(arr[i:i + _CHUNK], jnp.float32),
                                jnp.asarray(z[i:i + _CHUNK])) for i in range(0, len(arr), _CHUNK)]
        mean, log_std, frame = (np.concatenate([np.asarray(o[j], np.float64) for o in out]) for j in range(3))
        return mean, np.exp(log_std), frame

    def encode(self, vectors: Any, numbers: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior ``(mean [m, d], std [m, d])`` of environments ``[m, n, 3]`` Å."""
        mean, std, _ = self.encode_with_frames(vectors, numbers)
        return mean, std

    def decode_full(self, z: Any, frames: Any = None, ordered: bool = True) -> Decoded:
        """Environments and species of latents ``[m, d]``: in the given frames ``[m, 3, 3]`` (or one frame
        ``[3, 3]`` for all) or in the canonical frame. ``ordered`` sorts neighbours (with their species) by
        distance; otherwise rows follow the decoder's slots."""
        z = self._check_latents(z)
        coords, centre_logits, logits = self._decode_jit(self.params, jnp.asarray(z))
        coords = np.asarray(coords, np.float64)
        if frames is not None:
            frames = np.broadcast_to(np.asarray(frames, np.float64), (len(z), 3, 3))
            coords = np.asarray(to_input_frame(coords, frames))
        vocab = np.asarray(self.config.species)
        numbers = np.concatenate([vocab[np.argmax(np.asarray(centre_logits), -1)][:, None],
                                  vocab[np.argmax(np.asarray(logits), -1)]], axis=1).astype(np.int32)
        if ordered:
            order = np.argsort(np.linalg.norm(coords, axis=-1), axis=1, kind="stable")
            coords = np.take_along_axis(coords, order[:, :, None], axis=1)
            numbers[:, 1:] = np.take_along_axis(numbers[:, 1:], order, axis=1)
        return Decoded(coords, numbers)

    def decode(self, z: Any, ordered: bool = True, frames: Any = None) -> np.ndarray:
        """Decoded environments ``[m, n, 3]`` Å (see :meth:`decode_full`)."""
        return self.decode_full(z, frames, ordered).vectors

    def reconstruct(self, vectors: Any, numbers: Any = None) -> np.ndarray:
        """Decode the posterior mean of each environment *in its own frame*: ``[m, n, 3] -> [m, n, 3]`` Å
        (directly comparable with the input: no alignment, only the neighbour labels may differ)."""
        mean, _, frames = self.encode_with_frames(vectors, numbers)
        return self.decode(mean, frames=frames)

    def _draw(self, key: jax.Array, n: int, options: EnvironmentOptions) -> tuple[np.ndarray, np.ndarray]:
        decoded = self.decode_full(self.sample_latents(key, n, options.temperature, options.latents))
        return decoded.vectors, decoded.numbers

    def _infill(self, request: FixedNeighbors, n: int, key: jax.Array, options: EnvironmentOptions):
        from atomsmith.generators.eq_vae.infill import infill

        return infill(self, request.vectors, n, key, options.infill, numbers=request.numbers)

    def interpolate(self, a: Any, b: Any, steps: int = 9, spherical: bool = False) -> np.ndarray:
        """Environments ``[steps, n, 3]`` Å along the latent path between the posterior means of ``a`` and ``b``,
        the first in ``a``'s own frame, each next one aligned (SO(3) + relabelling) to the previous one (see
        :mod:`atomsmith.generators.environments.interpolation`)."""
        from atomsmith.generators.environments.interpolation import interpolate

        return interpolate(self, a, b, steps, spherical).frames
