"""The checkpointed environment model: what the Gram VAE and the equivariant VAE objects share.

Both are frozen dataclasses holding ``config``, ``params`` (flax ``params`` collection), ``coord_scale`` (Å, the
unit of the decoder's coordinate output), ``metadata`` (provenance) and an optional ``latent_mixture``
(:mod:`atomsmith.generators.environments.latent_prior`). :class:`EnvironmentVAE` gives them one checkpoint round
trip (:meth:`~EnvironmentVAE.save` / :meth:`~EnvironmentVAE.load`, format of :mod:`atomsmith.training.checkpoint`),
the latent draws, the jitted decoder and the shape check of neighbour vectors. A subclass names ``kind`` (its
checkpoint kind), ``config_type`` (the config class, with ``to_dict`` / ``from_dict``), ``network_type`` (the flax
module, with ``decode``) and ``init_params(config, key, coord_scale)``; a model with more fields than the five
shared ones stores them through :meth:`~EnvironmentVAE._extra_metadata` / :meth:`~EnvironmentVAE._extra_fields`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from atomsmith.generators.environments import ops
from atomsmith.generators.environments.infill import InfillResult
from atomsmith.generators.environments.latent_prior import LatentMixture, draw_latents
from atomsmith.generators.environments.options import EnvironmentOptions
from atomsmith.generators.protocol import Capabilities, FixedAtoms, FixedNeighbors, GeneratorBase, \
    InvalidRequestError
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

__all__ = ["EnvironmentVAE"]


@dataclasses.dataclass(frozen=True, eq=False)
class EnvironmentVAE(GeneratorBase):
    """Base class of the environment VAE model objects (see the module docstring), and their generator protocol:
    ``sample(key, n, *, fixed=None, options=None, **settings)`` draws ``n`` environments as clusters (centre atom
    first, then its neighbours, in a cubic box; properties ``source`` and ``index``), or with
    ``fixed=FixedNeighbors(...)`` (or a ``[k, 3]`` array of neighbour vectors, Å) holds those neighbours and
    generates the rest (properties ``sample``, ``fit_rmsd`` Å, ``k``; site property ``fixed``). Settings:
    :class:`~atomsmith.generators.environments.options.EnvironmentOptions`. A subclass names its parts in
    the class statement: ``class GramVAE(EnvironmentVAE, kind="gram-vae", config_type=GramVAEConfig,
    network_type=GramVAENetwork, init_params=init_params)``.

    Attributes:
      config: architecture and loss.
      params: network parameters (flax ``params`` collection).
      coord_scale: unit of the decoder's coordinate output, Å (the rms neighbour distance of the training data).
      metadata: provenance (how it was trained, metrics), stored in the checkpoint.
      latent_mixture: optional Gaussian mixture fitted to the training posterior means; when present, sampling
        draws from it instead of N(0, I) (:mod:`atomsmith.generators.environments.latent_prior`).
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities(
        fixed_neighbors=True, produces="environments",
        about="samples local environments (a centre atom and its neighbours); composition, cell and property "
              "guidance apply to crystal generators (e.g. perov-5, a-si)")
    options_type: ClassVar[type] = EnvironmentOptions
    config_type: ClassVar[type]
    network_type: ClassVar[type]
    init_params: ClassVar[Callable[..., Any]]

    config: Any
    params: Any
    coord_scale: float = 3.0
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    latent_mixture: LatentMixture | None = None

    def __init_subclass__(cls, *, kind: str, config_type: type, network_type: type,
                          init_params: Callable[..., Any], **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind, cls.config_type, cls.network_type = kind, config_type, network_type
        cls.init_params = staticmethod(init_params)

    # ------------------------------------------------------------------ construction and io
    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)

    def _extra_metadata(self) -> dict[str, Any]:
        """Fields beyond the shared ones, as JSON metadata (stored right after ``config``)."""
        return {}

    @classmethod
    def _extra_fields(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments that :meth:`_extra_metadata` stored."""
        return {}

    def save(self, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write a checkpoint of this model's ``kind`` (atomsmith.training.checkpoint format)."""
        meta = {**dict(self.metadata), **dict(metadata or {}), "model": self.kind,
                "config": self.config.to_dict(), **self._extra_metadata(), "coord_scale": self.coord_scale,
                "latent_mixture": self.latent_mixture.to_dict() if self.latent_mixture is not None else None}
        return ckpt.save(path, {"params": self.params}, kind=self.kind, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Read a checkpoint of this model's ``kind``; raises the checkpoint module's typed errors if it is corrupt
        or of another kind, ``CheckpointMismatchError`` if its parameters do not fit its own config."""
        header = ckpt.read_header(path)
        if header.get("kind") != cls.kind:
            raise ckpt.CheckpointMismatchError(
                f"{path} holds a {header.get('kind')!r} checkpoint, expected {cls.kind!r}")
        meta = header["metadata"]
        config = cls.config_type.from_dict(meta["config"])
        extra = cls._extra_fields(meta)
        scale = float(meta["coord_scale"])
        init = cls.init_params
        # shapes only (abstract evaluation): nothing is compiled before the file is verified
        template = {"params": jax.eval_shape(lambda: init(config, jax.random.PRNGKey(0), scale))}
        state, meta = ckpt.load(path, kind=cls.kind, target=template)
        mixture = LatentMixture.from_dict(meta["latent_mixture"]) if meta.get("latent_mixture") else None
        meta = {k: v for k, v in meta.items() if k != "latent_mixture"}
        return cls(config=config, params=state["params"], coord_scale=scale, metadata=meta, latent_mixture=mixture,
                   **extra)

    # ------------------------------------------------------------------ network access (jitted)
    @functools.cached_property
    def _net(self) -> Any:
        return self.network_type(self.config, self.coord_scale)

    @functools.cached_property
    def _decode_jit(self):
        net, decode = self._net, self.network_type.decode
        return jax.jit(lambda p, z: net.apply({"params": p}, z, method=decode))

    @property
    def n_neighbors(self) -> int:
        return self.config.n_neighbors

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def _check_vectors(self, vectors: Any, name: str) -> np.ndarray:
        """Neighbour vectors as ``[m, n, 3]`` float64 (a single ``[n, 3]`` is promoted); raises
        :class:`InvalidRequestError` for another shape, another neighbour count or non-finite coordinates."""
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

    def _check_latents(self, z: Any) -> np.ndarray:
        """Latents as ``[m, d]`` float32; raises :class:`InvalidRequestError` for another dimension."""
        z = np.atleast_2d(np.asarray(z, np.float32))
        if z.shape[-1] != self.latent_dim:
            raise InvalidRequestError(f"latents must have dimension {self.latent_dim}, got {z.shape[-1]}")
        return z

    # ------------------------------------------------------------------ latent draws
    def sample_latents(self, key: jax.Array, n: int, temperature: float = 1.0, source: str = "auto"
                       ) -> np.ndarray:
        """``[n, d]`` latent draws (distrax): from the fitted latent mixture (``source="mixture"``, or ``"auto"``
        when one is fitted) or from the prior N(0, I) (``"prior"``); spreads scaled by ``temperature``."""
        return draw_latents(key, n, self.latent_dim, self.latent_mixture, temperature, source)

    def sample_environments(self, key: jax.Array, n: int, temperature: float = 1.0, source: str = "auto"
                            ) -> np.ndarray:
        """``n`` generated environments ``[n, n_neighbors, 3]`` Å (latents drawn as in :meth:`sample_latents`,
        decoded in the canonical frame, closest first)."""
        return self.decode(self.sample_latents(key, n, temperature, source))

    # ------------------------------------------------------------------ the generator protocol
    def _as_request(self, fixed: Any) -> Any:
        """A ``[k, 3]`` array of neighbour vectors (Å) is a :class:`FixedNeighbors` request."""
        if fixed is None or isinstance(fixed, (FixedNeighbors, FixedAtoms)):
            return fixed
        if isinstance(fixed, (list, tuple)) and fixed and isinstance(fixed[0], FixedAtoms):
            return fixed  # crystal requests: refused by check_request with the model's name
        return FixedNeighbors(fixed)

    def _draw(self, key: jax.Array, n: int, options: EnvironmentOptions) -> tuple[np.ndarray, np.ndarray]:
        """``n`` generated environments ``[n, m, 3]`` Å and their atomic numbers ``[n, m + 1]`` (centre first)."""
        raise NotImplementedError

    def _infill(self, request: FixedNeighbors, n: int, key: jax.Array, options: EnvironmentOptions
                ) -> InfillResult:
        """``n`` completions of the held neighbours (a result with ``numbers`` when the model decodes species)."""
        raise NotImplementedError

    def _sample(self, key: jax.Array, n: int, conditions: Any, guidance: Any, fixed: FixedNeighbors | None,
                options: EnvironmentOptions) -> list[Crystal]:
        label = options.label or self.kind
        if fixed is None:
            envs, numbers = self._draw(key, n, options)
            return [ops.environment_to_crystal(e, centre_number=int(z[0]), neighbor_numbers=z[1:],
                                               source=f"{label} sample", index=i)
                    for i, (e, z) in enumerate(zip(envs, numbers))]
        result = self._infill(fixed, n, key, options)
        size = self.n_neighbors
        k = result.environments.shape[1] - result.generated.shape[1]
        numbers = getattr(result, "numbers", None)
        out = []
        for i, env in enumerate(result.environments):
            z = np.full(size + 1, 14) if numbers is None else np.asarray(numbers[i])  # no species decoded: Si
            c = ops.environment_to_crystal(env, centre_number=int(z[0]), neighbor_numbers=z[1:], sample=i,
                                           fit_rmsd=float(result.fit_rmsd[i]), k=k, source=f"{label} infill")
            out.append(c.replace(site_properties={"fixed": np.r_[1, np.ones(k, int), np.zeros(size - k, int)]}))
        return out

