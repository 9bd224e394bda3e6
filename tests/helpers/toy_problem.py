"""A tiny linear regression for tests of the shared training loop: 64 points, 4 batches of 16 per epoch, batch order
deterministic in the epoch, a loss with a little key-dependent noise (so the RNG stream matters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def linear_problem():
    """``(loss_fn, params, batches, eval_fn)`` for :func:`atomsmith.training.loop.fit`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(64)
        for k in range(0, 64, 16):
            idx = order[k:k + 16]
            yield x[idx], y[idx]

    def loss_fn(params, batch, key):
        xb, yb = batch
        noise = 1e-3 * jax.random.normal(key, yb.shape)
        pred = xb @ params["w"] + params["b"]
        loss = jnp.mean((pred - yb + noise) ** 2)
        return loss, {"mse": loss}

    def eval_fn(params):
        return {"loss": jnp.mean((x @ params["w"] + params["b"] - y) ** 2)}

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    return loss_fn, params, batches, eval_fn
