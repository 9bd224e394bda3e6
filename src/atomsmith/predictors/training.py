"""Training and evaluation of property predictors with the shared loop (:func:`atomsmith.training.loop.fit`).

* Targets are converted once to irreps coefficients; the loss compares per-atom (or pooled) coefficients on the
  normalised scale ``(prediction - target) / scale`` (per species for per-atom targets; per structure, and per
  atom for sum pooling, for structure targets). Because the change of basis is orthonormal, the squared error on
  coefficients equals the squared Frobenius error of the Cartesian tensors (projected onto their symmetry).
* Batches are padded to one fixed shape, so each run compiles the step once; the order of each epoch is a
  deterministic function of ``(seed, epoch)``, which makes interrupted runs resume exactly.
* Validation uses the EMA weights; the early-stopping metric is the Cartesian component MAE (scalars) or RMSE
  (tensors). The best EMA weights are returned and written as a predictor checkpoint with its provenance.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from atomsmith.graphs.batching import GraphBatch, batch_graphs, fixed_sizes
from atomsmith.graphs.neighbors import PeriodicGraph, neighbor_list
from atomsmith.nn.readouts import combine
from atomsmith.predictors.applicability import TrainingDomain
from atomsmith.predictors.model import Predictor, PredictorConfig, PredictorNet, init_predictor
from atomsmith.predictors.normalization import Normalizer, fit_normalizer, to_coefficients
from atomsmith.predictors.targets import target_values
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import FitResult, TrainConfig, count_params, fit

TARGET_KEY = "__target__"


@dataclasses.dataclass(frozen=True)
class PredictorData:
    """Structures, their neighbour lists and their target coefficients (host arrays).

    Attributes:
      crystals: the structures.
      graphs: neighbour lists at the encoder cutoff.
      values: Cartesian targets, per structure ``[*shape]`` or ``[n_atoms, *shape]``.
      coefficients: the same as irreps coefficients ``[D]`` or ``[n_atoms, D]`` (float32).
    """

    crystals: list[Crystal]
    graphs: list[PeriodicGraph]
    values: list[np.ndarray]
    coefficients: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.crystals)

    @classmethod
    def build(cls, crystals: Sequence[Crystal], config: PredictorConfig,
              graphs: Sequence[PeriodicGraph] | None = None) -> PredictorData:
        crystals = list(crystals)
        values = target_values(crystals, config.target, config.readout)
        graphs = list(graphs) if graphs is not None else [neighbor_list(c, config.encoder.cutoff) for c in crystals]
        coeffs = [to_coefficients(v, config.readout).astype(np.float32) for v in values]
        return cls(crystals, graphs, values, coeffs)

    def subset(self, indices: Sequence[int]) -> PredictorData:
        idx = list(indices)
        return PredictorData([self.crystals[i] for i in idx], [self.graphs[i] for i in idx],
                             [self.values[i] for i in idx], [self.coefficients[i] for i in idx])


def make_batch(data: PredictorData, indices: Sequence[int], config: PredictorConfig,
               sizes: tuple[int, int, int]) -> GraphBatch:
    """A padded batch carrying the target coefficients (``properties`` or ``site_properties[TARGET_KEY]``)."""
    idx = list(indices)
    batch = batch_graphs([data.crystals[i] for i in idx], [data.graphs[i] for i in idx], config.encoder.cutoff, sizes)
    dim = config.readout.irreps_out.dim
    if config.readout.level == "structure":
        y = np.zeros((batch.n_graphs, dim), np.float32)
        y[:len(idx)] = np.stack([data.coefficients[i] for i in idx])
        return batch.replace(properties={TARGET_KEY: jnp.asarray(y)})
    y = np.zeros((batch.n_nodes, dim), np.float32)
    offset = 0
    for i in idx:
        n = data.crystals[i].n_atoms
        y[offset:offset + n] = data.coefficients[i]
        offset += n
    return batch.replace(site_properties={TARGET_KEY: jnp.asarray(y)})


def make_loss_fn(config: PredictorConfig, normalizer: Normalizer) -> Callable:
    """``loss_fn(params, batch, key) -> (loss, metrics)`` on normalised residuals (see module docstring)."""
    readout = config.readout

    def per_element(residual: jax.Array) -> jax.Array:
        if config.loss == "mse":
            return residual ** 2
        if config.loss == "mae":
            return jnp.abs(residual)
        return optax.huber_loss(residual, delta=config.huber_delta) / config.huber_delta

    def loss_fn(params: Any, batch: GraphBatch, key: jax.Array):
        del key
        raw = PredictorNet(config).apply({"params": params}, batch)
        species = jax.nn.one_hot(batch.numbers, config.encoder.n_species)
        scale, shift = normalizer.per_atom(species)
        pred = combine(raw, batch, readout, scale=scale, shift=shift)
        if readout.level == "structure":
            y = batch.properties[TARGET_KEY]
            mask = batch.graph_mask
            denom = normalizer.scale[0]  # one global scale for structure targets
            if readout.pooling == "sum":  # extensive: compare per atom
                denom = denom * jnp.maximum(batch.n_atoms, 1).astype(pred.dtype)[:, None]
            residual = (pred - y) / denom
        else:
            y = batch.site_properties[TARGET_KEY]
            mask = batch.node_mask
            residual = (pred - y) / scale[:, None]
        per = per_element(residual).mean(axis=-1)
        count = jnp.maximum(mask.sum(), 1)
        loss = jnp.sum(jnp.where(mask, per, 0.0)) / count
        abs_err = jnp.sum(jnp.where(mask, jnp.abs(residual).mean(axis=-1), 0.0)) / count
        return loss, {"norm_mae": abs_err}

    return loss_fn


def metrics(pred: Sequence[np.ndarray], true: Sequence[np.ndarray], n_components: int = 1) -> dict[str, float]:
    """Component-wise MAE, RMSE and R^2 over all values (Cartesian components; per-atom values are pooled).

    ``n_components`` is ``3**rank`` (1 for scalars). ``r2 = 1 - sum (p - t)^2 / sum (t - mean_c t)^2`` with
    ``mean_c`` the mean of each Cartesian component over all values.
    """
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} predictions for {len(true)} targets")
    p = np.concatenate([np.asarray(x, np.float64).reshape(-1, n_components) for x in pred])
    t = np.concatenate([np.asarray(x, np.float64).reshape(-1, n_components) for x in true])
    err = p - t
    ss_res = float(np.sum(err ** 2))
    ss_tot = float(np.sum((t - t.mean(axis=0)) ** 2))
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"), "n_values": int(t.shape[0])}


def n_components(config: PredictorConfig) -> int:
    return int(np.prod(config.readout.output_shape, dtype=int))


@dataclasses.dataclass
class TrainedPredictor:
    predictor: Predictor
    fit: FitResult
    n_params: int


def train_predictor(config: PredictorConfig, train: PredictorData, val: PredictorData | None,
                    train_config: TrainConfig, *,
                    batch_size: int = 32, checkpoint_path: str | os.PathLike | None = None,
                    output_path: str | os.PathLike | None = None, metadata: Mapping[str, Any] | None = None,
                    progress: bool = True, resume: bool = True, stop_after: int | None = None) -> TrainedPredictor:
    """Fit a predictor with the shared loop (AdamW + warm-up/cosine, EMA, early stopping, resumable checkpoints).

    Args:
      config: model and target.
      train, val: data (see :meth:`PredictorData.build`); the normaliser is fitted on ``train``. With
        ``val=None`` there is no validation (no early stopping): the final EMA weights are returned.
      train_config: optimisation settings (``eval_every`` validation evaluations drive early stopping).
      checkpoint_path: training-state checkpoint for resumption (written atomically).
      output_path: where to write the final predictor checkpoint (best EMA weights) with ``metadata``.
      stop_after: stop after this many steps in this call (tests of resumption).
    """
    if len(train) == 0 or (val is not None and len(val) == 0):
        raise ValueError(f"need training (and, unless val=None, validation) structures, got {len(train)} and "
                         f"{len(val) if val is not None else None}")
    normalizer = fit_normalizer(train.crystals, train.values, config.readout, config.encoder.n_species)
    key = jax.random.PRNGKey(train_config.seed)
    predictor = init_predictor(config, key, normalizer)
    bs = min(batch_size, len(train))
    sizes = fixed_sizes(train.crystals, train.graphs, bs)
    val_batches = []
    if val is not None:
        val_bs = min(batch_size, len(val))
        val_sizes = fixed_sizes(val.crystals, val.graphs, val_bs)
        val_batches = [make_batch(val, range(s, min(s + val_bs, len(val))), config, val_sizes)
                       for s in range(0, len(val), val_bs)]
    seed = train_config.seed

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(len(train))
        n_full = len(order) // bs  # drop the ragged last batch: every step sees bs structures
        for k in range(max(n_full, 1)):
            yield make_batch(train, order[k * bs:(k + 1) * bs], config, sizes)

    def eval_fn(params: Any) -> dict[str, float]:
        model = Predictor(config=config, params=params, normalizer=normalizer)
        pred = predict_batches(model, val_batches, val)
        m = metrics(pred, val.values, n_components(config))
        return {"mae": m["mae"], "rmse": m["rmse"], "r2": m["r2"]}

    eval_metric = "mae" if config.readout.spec is None else "rmse"
    domain = TrainingDomain.from_crystals(train.crystals, train.values if config.readout.level == "structure"
                                          else None)
    meta = {**dict(metadata or {}), "config": config.to_dict(), "n_train": len(train),
            "n_val": len(val) if val is not None else 0, "batch_size": bs}
    result = fit(make_loss_fn(config, normalizer), predictor.params, batches, train_config,
                 eval_fn=eval_fn if val is not None else None,
                 eval_metric=eval_metric, checkpoint_path=checkpoint_path, kind="predictor", metadata=meta,
                 progress=progress, resume=resume, stop_after=stop_after)
    best = Predictor(config=config, params=result.best_params, normalizer=normalizer, domain=domain)
    if output_path is not None and stop_after is None:
        history = [h for h in result.history if any(k.startswith("val_") for k in h)]
        best.save(output_path, {**meta, "train_config": dataclasses.asdict(train_config),
                                "best_val": {eval_metric: result.best_metric}, "val_history": history,
                                "steps": int(result.state.step), "stopped_early": result.stopped_early})
    return TrainedPredictor(best, result, count_params(result.best_params))


_jit_apply = jax.jit(lambda predictor, batch: predictor(batch))


def predict_batches(predictor: Predictor, batches: Sequence[GraphBatch], data: PredictorData) -> list[np.ndarray]:
    """Predictions for ``data`` already cut into ``batches`` (in order), one array per structure."""
    out: list[np.ndarray] = []
    k = 0
    for batch in batches:
        values = np.asarray(_jit_apply(predictor, batch), np.float64)
        n_real = int(np.sum(np.asarray(batch.graph_mask)))
        if predictor.config.readout.level == "structure":
            out.extend(values[j] for j in range(n_real))
            k += n_real
        else:
            offset = 0
            for _ in range(n_real):
                n = data.crystals[k].n_atoms
                out.append(values[offset:offset + n])
                offset += n
                k += 1
    return out


def evaluate(predictor: Predictor, data: PredictorData, batch_size: int = 32) -> tuple[dict[str, float],
                                                                                     list[np.ndarray]]:
    """Component MAE / RMSE / R^2 of ``predictor`` on ``data``; also returns the predictions."""
    pred = predictor.predict(data.crystals, batch_size=batch_size, graphs=data.graphs)
    return metrics(pred, data.values, n_components(predictor.config)), pred


def save_path(directory: str | os.PathLike, name: str) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path / name
