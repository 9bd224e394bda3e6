"""Shared helpers of the predictor benchmarks: baselines, metrics files and plots."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: Training states and unshipped checkpoints (git-ignored ``scratch/`` at the repository root).
SCRATCH = HERE.parents[1] / "scratch" / "predictors"
SCRATCH.mkdir(parents=True, exist_ok=True)


def composition_fractions(crystals, n_species: int = 119) -> np.ndarray:
    """``[G, n_species]`` element fractions."""
    x = np.zeros((len(crystals), n_species))
    for k, c in enumerate(crystals):
        np.add.at(x[k], c.numbers, 1.0 / c.n_atoms)
    return x


def composition_mlp(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                    test_x: np.ndarray, *, hidden: int = 128, steps: int = 4000, seed: int = 0) -> np.ndarray:
    """A composition-only model: MLP on element fractions, trained with the shared loop (AdamW, EMA, early stop).

    The targets are standardised; early stopping uses the validation MAE. Returns test predictions.
    """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from atomsmith.training.loop import TrainConfig, fit

    mean, std = float(train_y.mean()), float(train_y.std())

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(2):
                x = nn.silu(nn.Dense(hidden)(x))
            return nn.Dense(1)(x)[..., 0]

    model = MLP()
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, train_x.shape[1])))
    tx, ty = jnp.asarray(train_x, jnp.float32), jnp.asarray((train_y - mean) / std, jnp.float32)
    vx = jnp.asarray(val_x, jnp.float32)

    bs = min(128, len(train_x))

    def batches(epoch):
        order = np.random.default_rng([seed, epoch]).permutation(len(train_x))
        for k in range(0, len(order) - bs + 1, bs):
            idx = order[k:k + bs]
            yield tx[idx], ty[idx]

    def loss_fn(p, batch, key):
        x, y = batch
        loss = jnp.mean(jnp.abs(model.apply(p, x) - y))
        return loss, {}

    eval_apply = jax.jit(model.apply)

    def eval_fn(p):
        return {"mae": float(np.mean(np.abs(np.asarray(eval_apply(p, vx)) * std + mean - val_y)))}

    cfg = TrainConfig(learning_rate=3e-3, max_steps=steps, warmup_steps=100, eval_every=200, patience=6,
                      ema_decay=0.99, weight_decay=1e-4)
    result = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, eval_metric="mae", progress=False)
    return np.asarray(eval_apply(result.best_params, jnp.asarray(test_x, jnp.float32))) * std + mean


def linear_composition(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, ridge: float = 1e-6):
    """Ridge least squares on element fractions (the predictors' own normaliser baseline)."""
    present = np.flatnonzero(train_x.sum(axis=0))
    a = train_x[:, present]
    w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(len(present)), a.T @ train_y)
    return test_x[:, present] @ w


def environment() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    import jax

    return {"python": platform.python_version(), "jax": jax.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "git_commit": commit, "command": " ".join(sys.argv),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(path: Path, data: dict) -> None:
    from atomsmith.structures.io import atomic_write

    with atomic_write(path, overwrite=True) as handle:
        json.dump(data, handle, indent=1, default=float)
        handle.write("\n")


def parity_plot(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path: Path, units: str) -> None:
    """One parity panel per ``(title, true, predicted)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    for ax, (title, true, pred) in zip(axes[0], panels):
        true, pred = np.ravel(true), np.ravel(pred)
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(true, pred, s=3, alpha=0.35, edgecolors="none")
        ax.set_xlabel(f"reference ({units})")
        ax.set_ylabel(f"predicted ({units})")
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
