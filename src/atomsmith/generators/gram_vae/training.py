"""Training data and training of the Gram VAE with the shared loop (:func:`atomsmith.training.loop.fit`).

Data: the ``n`` nearest neighbours within ``r_cut`` of every atom of every cell (shared
:func:`atomsmith.graphs.environments.local_environments`), distance-ordered, as ``[m, n, 3]`` float32 Å. Splits are
by *cell*, so held-out environments come from cells the model never saw.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from atomsmith.generators.gram_vae.config import GramVAEConfig
from atomsmith.generators.gram_vae.losses import make_eval_fn, make_loss_fn
from atomsmith.generators.gram_vae.model import GramVAE
from atomsmith.generators.gram_vae.representation import GramNormalizer
from atomsmith.graphs.environments import local_environments
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import TrainConfig, count_params, fit


@dataclasses.dataclass(frozen=True)
class EnvironmentSplits:
    """Environments ``[m, n, 3]`` (float32, Å) of the train / validation / test cells, and the cell counts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    cells: Mapping[str, int]
    dropped: int


def environments_of(crystals: Sequence[Crystal], n_neighbors: int, r_cut: float) -> tuple[np.ndarray, int]:
    """All environments ``[m, n, 3]`` float32 of the given cells and the number of atoms dropped because they have
    fewer than ``n_neighbors`` neighbours within ``r_cut``."""
    out, dropped = [], 0
    for crystal in crystals:
        env = local_environments(crystal, n_neighbors, r_cut, strict=False)
        dropped += crystal.n_atoms - len(env.vectors)
        out.append(env.vectors.astype(np.float32))
    if not out:
        return np.zeros((0, n_neighbors, 3), np.float32), dropped
    return np.concatenate(out), dropped


def split_cells(crystals: Sequence[Crystal], n_neighbors: int, r_cut: float, val_fraction: float = 0.1,
                test_fraction: float = 0.1, seed: int = 0) -> EnvironmentSplits:
    """Split the *cells* at random (seeded) into train/val/test (at least one cell each when there are >= 3), then
    extract their environments."""
    n = len(crystals)
    if n < 3:
        raise ValueError(f"need at least 3 cells to split into train/val/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    n_test = max(1, int(round(test_fraction * n)))
    parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
    if not len(parts["train"]):
        raise ValueError("no training cells left after the validation/test split")
    arrays, dropped = {}, 0
    for name, idx in parts.items():
        arrays[name], d = environments_of([crystals[i] for i in idx], n_neighbors, r_cut)
        dropped += d
    return EnvironmentSplits(arrays["train"], arrays["val"], arrays["test"],
                             {k: len(v) for k, v in parts.items()}, dropped)


def distance_ordered(vectors: np.ndarray) -> np.ndarray:
    """Environments ``[m, n, 3]`` with each one's neighbours sorted by distance to the centre (float32)."""
    vectors = np.asarray(vectors, np.float32)
    order = np.argsort(np.linalg.norm(vectors, axis=-1), axis=1, kind="stable")
    return np.take_along_axis(vectors, order[:, :, None], axis=1)


def make_batches(vectors: np.ndarray, batch_size: int, seed: int):
    """``epoch -> list of [B, n, 3] batches``: a deterministic shuffle per epoch (last partial batch dropped)."""
    if len(vectors) < batch_size:
        raise ValueError(f"only {len(vectors)} training environments for batch size {batch_size}")

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(len(vectors))
        return [vectors[order[i:i + batch_size]] for i in range(0, len(order) - batch_size + 1, batch_size)]

    return batches


def train_gram_vae(train: np.ndarray, val: np.ndarray, config: GramVAEConfig, train_config: TrainConfig,
                   batch_size: int = 256, checkpoint_path: str | os.PathLike | None = None,
                   metadata: Mapping[str, Any] | None = None, progress: bool = True, resume: bool = True
                   ) -> tuple[GramVAE, dict]:
    """Fit a Gram VAE on ``train`` environments ``[m, n, 3]`` Å, selecting the EMA weights with the lowest
    validation loss (negative ELBO bound). Returns the model and a summary dict (history, timing, sizes)."""
    if train.ndim != 3 or train.shape[1] != config.n_neighbors or train.shape[2] != 3:
        raise ValueError(f"training environments must be [m, {config.n_neighbors}, 3], got {train.shape}")
    # canonical (distance) order, as at inference (GramVAE.encode) and as the shell-perm loss assumes
    train, val = distance_ordered(train), distance_ordered(val)
    normalizer = GramNormalizer.fit(train)
    model = GramVAE.initialize(config, normalizer, jax.random.PRNGKey(train_config.seed))
    loss_fn = make_loss_fn(config, normalizer, model.coord_scale)
    eval_fn = make_eval_fn(config, normalizer, model.coord_scale, val)
    t0 = time.perf_counter()
    result = fit(loss_fn, model.params, make_batches(train.astype(np.float32), batch_size, train_config.seed),
                 train_config, eval_fn=eval_fn, eval_metric="loss", checkpoint_path=checkpoint_path,
                 kind="gram-vae", metadata={"config": config.to_dict(), **dict(metadata or {})},
                 progress=progress, resume=resume)
    seconds = time.perf_counter() - t0
    final = {k: float(v) for k, v in eval_fn(result.best_params).items()}
    summary = {"n_train": int(len(train)), "n_val": int(len(val)), "batch_size": batch_size,
               "steps": int(result.state.step), "seconds": seconds, "n_params": count_params(result.best_params),
               "val": final, "stopped_early": result.stopped_early,
               "train_config": dataclasses.asdict(train_config)}
    trained = model.replace(params=result.best_params, metadata={**dict(metadata or {}), "training": summary})
    return trained, {**summary, "history": result.history}
