"""Property predictors: the shared encoder plus one readout head, with per-species normalisation.

A :class:`Predictor` is a frozen pytree (``params`` and ``normalizer`` are leaves, ``config`` is static), so it can be
passed through ``jax.jit`` / ``jax.grad`` and closed over by guidance objectives. Calling it on a
:class:`~atomsmith.graphs.batching.GraphBatch` returns physical-unit predictions:

* structure scalar ``[G]``, atom scalar ``[N]``;
* structure tensor ``[G, 3, ...]``, atom tensor ``[N, 3, ...]`` (Cartesian, in the batch's frame).

The output is differentiable with respect to ``batch.frac_coords``, ``batch.lattices`` and the optional continuous
``species [N, n_species]`` weights (which replace the one-hot of ``batch.numbers`` in the encoder and the normaliser).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.batching import GraphBatch, batch_graphs, fixed_sizes
from atomsmith.graphs.neighbors import PeriodicGraph, neighbor_list
from atomsmith.nn.encoder import Encoder, EncoderConfig
from atomsmith.nn.readouts import ReadoutConfig, Readout, check_encoder_irreps, combine, required_irreps, to_cartesian
from atomsmith.predictors.applicability import TrainingDomain
from atomsmith.predictors.normalization import Normalizer
from atomsmith.predictors.targets import default_readout
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

LossName = Literal["mse", "mae", "huber"]
#: ``kind`` of predictor checkpoints.
CHECKPOINT_KIND = "predictor"


@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    """A predictor: which target, which head, which encoder, which loss.

    Attributes:
      target: property name (``crystal.properties`` or ``crystal.site_properties`` key).
      readout: the head (level, pooling, tensor type, acoustic sum rule, width).
      encoder: the shared encoder's config; its output must contain the irreps the head needs.
      loss: training loss on normalised residuals: ``"mse"``, ``"mae"`` or ``"huber"`` (``huber_delta``).
    """

    target: str
    readout: ReadoutConfig = ReadoutConfig()
    encoder: EncoderConfig = EncoderConfig()
    loss: LossName = "mse"
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in ("mse", "mae", "huber"):
            raise ValueError(f"loss must be 'mse', 'mae' or 'huber', got {self.loss!r}")
        check_encoder_irreps(self.encoder.irreps_out or self.encoder.irreps_hidden, self.readout)

    @classmethod
    def for_target(cls, target: str, encoder: EncoderConfig | None = None, readout: ReadoutConfig | None = None,
                   **kwargs: Any) -> PredictorConfig:
        """Default head for ``target``; the encoder's output irreps are extended with what the head needs."""
        readout = readout or default_readout(target)
        encoder = with_required_irreps(encoder or EncoderConfig(), readout)
        return cls(target=target, readout=readout, encoder=encoder, **kwargs)

    @property
    def irreps(self) -> str:
        """Irreps of the per-atom output coefficients (``"1x0e"`` for scalars)."""
        return str(self.readout.irreps_out)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "irreps": self.irreps}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictorConfig:
        enc = dict(data["encoder"])
        enc["radial_hidden"] = tuple(enc.get("radial_hidden", ()))
        return cls(target=data["target"], readout=ReadoutConfig(**data["readout"]), encoder=EncoderConfig(**enc),
                   loss=data.get("loss", "mse"), huber_delta=data.get("huber_delta", 1.0))


def with_required_irreps(encoder: EncoderConfig, readout: ReadoutConfig, multiplicity: int = 8) -> EncoderConfig:
    """``encoder`` with ``irreps_out`` extended by any irrep the head needs (``multiplicity`` copies each)."""
    import e3nn_jax as e3nn

    out = e3nn.Irreps(encoder.irreps_out or encoder.irreps_hidden)
    have = {ir for _, ir in out}
    missing = [ir for ir in required_irreps(readout) if ir not in have]
    if not missing:
        return encoder
    extended = (out + e3nn.Irreps([(multiplicity, ir) for ir in missing])).sort().irreps.simplify()
    return dataclasses.replace(encoder, irreps_out=str(extended))


class PredictorNet(nn.Module):
    """Encoder + readout coefficients: ``(batch, species) -> [N, D]`` raw per-atom outputs (normalised units)."""

    config: PredictorConfig

    @nn.compact
    def __call__(self, batch: GraphBatch, species: jax.Array | None = None) -> jax.Array:
        features = Encoder(self.config.encoder, name="encoder")(batch, species)
        return Readout(self.config.readout, name="readout").coefficients(features).array


@flax.struct.dataclass
class Predictor:
    """A trained (or freshly initialised) property predictor; see the module docstring."""

    #: checkpoint kind (:mod:`atomsmith.pretrained.kinds`).
    kind: ClassVar[str] = CHECKPOINT_KIND

    config: PredictorConfig = flax.struct.field(pytree_node=False)
    params: Any
    normalizer: Normalizer
    #: what the training set covered (:mod:`atomsmith.predictors.applicability`); ``None`` when not recorded.
    domain: TrainingDomain | None = flax.struct.field(pytree_node=False, default=None)

    @property
    def target(self) -> str:
        return self.config.target

    def species_one_hot(self, batch: GraphBatch) -> jax.Array:
        return jax.nn.one_hot(batch.numbers, self.config.encoder.n_species)

    def coefficients(self, batch: GraphBatch, species: jax.Array | None = None) -> jax.Array:
        """Physical-unit irreps coefficients: ``[G, D]`` (structure) or ``[N, D]`` (atom)."""
        raw = PredictorNet(self.config).apply({"params": self.params}, batch, species)
        weights = self.species_one_hot(batch) if species is None else species
        scale, shift = self.normalizer.per_atom(weights.astype(raw.dtype))
        return combine(raw, batch, self.config.readout, scale=scale, shift=shift)

    def __call__(self, batch: GraphBatch, species: jax.Array | None = None) -> jax.Array:
        """Physical-unit predictions (see module docstring for shapes)."""
        return to_cartesian(self.coefficients(batch, species), self.config.readout)

    def predict(self, crystals: Sequence[Crystal], batch_size: int = 32,
                graphs: Sequence[PeriodicGraph] | None = None) -> list[np.ndarray]:
        """Host convenience: one NumPy array per crystal (``()``, ``[3, ...]``, or per atom ``[n, ...]``)."""
        crystals = list(crystals)
        if not crystals:
            return []
        cutoff = self.config.encoder.cutoff
        if graphs is None:
            graphs = [neighbor_list(c, cutoff) for c in crystals]
        sizes = fixed_sizes(crystals, graphs, batch_size)
        out: list[np.ndarray] = []
        for start in range(0, len(crystals), batch_size):
            chunk, chunk_graphs = crystals[start:start + batch_size], graphs[start:start + batch_size]
            batch = batch_graphs(chunk, chunk_graphs, cutoff, sizes)
            values = np.asarray(_apply(self, batch), np.float64)
            if self.config.readout.level == "structure":
                out.extend(values[k] for k in range(len(chunk)))
            else:
                offset = 0
                for crystal in chunk:
                    out.append(values[offset:offset + crystal.n_atoms])
                    offset += crystal.n_atoms
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> Predictor:
        """The predictor of a checkpoint (:func:`load_predictor` without its metadata)."""
        return load_predictor(path)[0]

    def save(self, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the predictor (params, normaliser, config and ``metadata``) as one checkpoint, atomically."""
        state = {"params": self.params, "normalizer": {"shift": self.normalizer.shift, "scale": self.normalizer.scale}}
        meta = {**dict(metadata or {}), "config": self.config.to_dict()}
        if self.domain is not None:
            meta["domain"] = self.domain.to_dict()
        return ckpt.save(path, state, kind=CHECKPOINT_KIND, metadata=meta)


@jax.jit
def _apply(predictor: Predictor, batch: GraphBatch) -> jax.Array:
    return predictor(batch)


def example_batch(config: PredictorConfig) -> GraphBatch:
    """A one-atom batch for parameter initialisation."""
    crystal = Crystal(np.eye(3) * 3.0, np.zeros((1, 3)), np.array([1]))
    return batch_graphs([crystal], cutoff=config.encoder.cutoff)


def init_predictor(config: PredictorConfig, key: jax.Array, normalizer: Normalizer | None = None) -> Predictor:
    """Fresh parameters (identity normaliser unless one is given)."""
    params = jax.jit(PredictorNet(config).init)(key, example_batch(config))["params"]  # jit: eager e3nn is slow
    normalizer = normalizer or Normalizer.identity(config.encoder.n_species, config.readout.irreps_out.dim)
    return Predictor(config=config, params=params, normalizer=normalizer)


def load_predictor(path: str | os.PathLike, *, target: str | None = None,
                   irreps: str | None = None) -> tuple[Predictor, dict]:
    """Load a predictor checkpoint; returns ``(predictor, metadata)``.

    Raises :class:`~atomsmith.training.checkpoint.CorruptCheckpointError` for damaged files and
    :class:`~atomsmith.training.checkpoint.CheckpointMismatchError` when the file is another kind of checkpoint or
    its target / output irreps differ from ``target`` / ``irreps`` (when given), or its parameters do not fit.
    """
    header = ckpt.read_header(path)
    if header.get("kind") != CHECKPOINT_KIND:
        raise ckpt.CheckpointMismatchError(f"{path} holds a {header.get('kind')!r} checkpoint, expected "
                                           f"{CHECKPOINT_KIND!r}")
    try:
        config = PredictorConfig.from_dict(header["metadata"]["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ckpt.CheckpointMismatchError(f"{path}: predictor config in the metadata is unusable ({exc})") from exc
    expect: dict[str, Any] = {}
    if target is not None:
        expect["config.target"] = target
    if irreps is not None:
        import e3nn_jax as e3nn

        expect["config.irreps"] = str(e3nn.Irreps(irreps))
    # parameter shapes only (abstract evaluation: no compilation, no arrays)
    params = jax.eval_shape(PredictorNet(config).init, jax.random.PRNGKey(0), example_batch(config))["params"]
    n_species, dim = config.encoder.n_species, config.readout.irreps_out.dim
    state_template = {"params": params, "normalizer": {"shift": np.zeros((n_species, dim), np.float32),
                                                       "scale": np.zeros((n_species,), np.float32)}}
    state, metadata = ckpt.load(path, kind=CHECKPOINT_KIND, expect=expect, target=state_template)
    normalizer = Normalizer(shift=jnp.asarray(state["normalizer"]["shift"]),
                            scale=jnp.asarray(state["normalizer"]["scale"]))
    params = jax.tree_util.tree_map(jnp.asarray, state["params"])
    try:
        domain = TrainingDomain.from_dict(metadata["domain"]) if metadata.get("domain") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ckpt.CheckpointMismatchError(f"{path}: training domain in the metadata is unusable ({exc})") from exc
    return Predictor(config=config, params=params, normalizer=normalizer, domain=domain), metadata
