"""Training of the equivariant VAE with the shared loop (:func:`atomsmith.training.loop.fit`); no augmentation."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from atomsmith.generators.eq_vae.config import EqVAEConfig
from atomsmith.generators.eq_vae.data import EnvironmentSet
from atomsmith.generators.eq_vae.losses import make_eval_fn, make_loss_fn
from atomsmith.generators.eq_vae.model import EqVAE
from atomsmith.generators.eq_vae.network import species_index
from atomsmith.training.loop import TrainConfig, count_params, fit


def as_batch(config: EqVAEConfig, data: EnvironmentSet) -> dict[str, np.ndarray]:
    """Arrays the loss takes: ``vectors``, ``numbers`` (atomic) and ``species`` (vocabulary indices)."""
    return {"vectors": data.vectors, "numbers": data.numbers, "species": species_index(config, data.numbers)}


def make_batches(arrays: Mapping[str, np.ndarray], batch_size: int, seed: int):
    """``epoch -> list of batches``: a deterministic shuffle per epoch (last partial batch dropped)."""
    m = len(arrays["vectors"])
    if m < batch_size:
        raise ValueError(f"only {m} training environments for batch size {batch_size}")

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(m)
        return [{k: v[order[i:i + batch_size]] for k, v in arrays.items()}
                for i in range(0, m - batch_size + 1, batch_size)]

    return batches


def train_eq_vae(train: EnvironmentSet, val: EnvironmentSet, config: EqVAEConfig, train_config: TrainConfig,
                 batch_size: int = 128, checkpoint_path: str | os.PathLike | None = None,
                 metadata: Mapping[str, Any] | None = None, progress: bool = True, resume: bool = True
                 ) -> tuple[EqVAE, dict]:
    """Fit an equivariant VAE on ``train`` environments, keeping the EMA weights with the lowest validation loss.
    Returns the model and a summary dict (history, timing, sizes). Raises ``ValueError`` for environments of the
    wrong size or with elements outside ``config.species``."""
    for name, data in (("training", train), ("validation", val)):
        if data.n_neighbors != config.n_neighbors:
            raise ValueError(f"{name} environments have {data.n_neighbors} neighbours, the config "
                             f"{config.n_neighbors}")
    train, val = train.distance_ordered(), val.distance_ordered()
    coord_scale = float(np.sqrt(np.mean(np.sum(train.vectors.astype(np.float64) ** 2, axis=-1))))
    model = EqVAE.initialize(config, jax.random.PRNGKey(train_config.seed), coord_scale)
    loss_fn = make_loss_fn(config, coord_scale)
    eval_fn = make_eval_fn(config, coord_scale, as_batch(config, val))
    t0 = time.perf_counter()
    result = fit(loss_fn, model.params, make_batches(as_batch(config, train), batch_size, train_config.seed),
                 train_config, eval_fn=eval_fn, eval_metric="loss", checkpoint_path=checkpoint_path,
                 kind="eq-vae", metadata={"config": config.to_dict(), **dict(metadata or {})},
                 progress=progress, resume=resume)
    seconds = time.perf_counter() - t0
    final = {k: float(v) for k, v in eval_fn(result.best_params).items()}
    summary = {"n_train": len(train), "n_val": len(val), "batch_size": batch_size,
               "steps": int(result.state.step), "seconds": seconds, "n_params": count_params(result.best_params),
               "val": final, "stopped_early": result.stopped_early,
               "train_config": dataclasses.asdict(train_config)}
    trained = model.replace(params=result.best_params, metadata={**dict(metadata or {}), "training": summary})
    return trained, {**summary, "history": result.history}
