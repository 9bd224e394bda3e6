"""Interrupted training resumes to exactly the parameters of an uninterrupted run with the same seed.

``test_training.py`` checks this for the shared loop on a toy linear model (``stop_after``, parameters only);
here a real model trainer goes through it (a predictor stopped mid-epoch and between checkpoints, final checkpoint
file included), and the loop is interrupted by Ctrl-C (``KeyboardInterrupt`` while fetching a batch, which makes
``fit`` save where it is) and resumed. Step, parameters, EMA, optimiser state, RNG key, best parameters, best
metric and validation history must be identical (bitwise).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.nn.encoder import EncoderConfig
from atomsmith.nn.readouts import ReadoutConfig
from atomsmith.predictors import PredictorConfig, PredictorData, load_predictor, train_predictor
from atomsmith.training import checkpoint as ckpt
from atomsmith.training.loop import TrainConfig, fit
from tests.helpers.toy_problem import linear_problem
from tests.helpers.symmetry import random_crystal


def _assert_same_tree(a, b) -> None:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _assert_same_fit(full, resumed) -> None:
    assert int(resumed.state.step) == int(full.state.step)
    _assert_same_tree(full.state.params, resumed.state.params)
    _assert_same_tree(full.state.ema_params, resumed.state.ema_params)
    _assert_same_tree(full.state.opt_state, resumed.state.opt_state)
    _assert_same_tree(full.state.key, resumed.state.key)
    _assert_same_tree(full.best_params, resumed.best_params)
    assert resumed.best_metric == full.best_metric
    # the whole logged history (validation entries and running averages of the training metrics) is identical
    assert [repr(sorted(h.items())) for h in resumed.history] == [repr(sorted(h.items())) for h in full.history]


def _cells(n: int, seed: int, with_y: bool = False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        crystal = random_crystal(rng, n_atoms=3, numbers=rng.choice([8, 14], size=3), size=3.5, skew=0.2,
                                 min_distance=1.0)
        y = float(np.mean(crystal.numbers == 14) + 0.01 * crystal.volume)
        out.append(crystal.with_properties(y=y) if with_y else crystal)
    return out


def test_predictor_resume_equals_uninterrupted(tmp_path):
    config = PredictorConfig(target="y", readout=ReadoutConfig(level="structure", pooling="mean", width=8),
                             encoder=EncoderConfig.tiny(irreps_hidden="8x0e+2x1o", n_layers=1, cutoff=3.0,
                                                        radial_hidden=(8,)))
    train = PredictorData.build(_cells(12, 0, with_y=True), config)
    val = PredictorData.build(_cells(4, 1, with_y=True), config)
    # 3 batches per epoch: stopping after 5 steps stops inside the second epoch, between checkpoints (every 4)
    tc = TrainConfig(learning_rate=1e-2, warmup_steps=2, max_steps=8, eval_every=3, checkpoint_every=4,
                     ema_decay=0.9, seed=3)
    kwargs = dict(batch_size=4, progress=False, metadata={"seed": 3})
    full = train_predictor(config, train, val, tc, checkpoint_path=tmp_path / "a.train.ckpt",
                           output_path=tmp_path / "a.ckpt", **kwargs)
    part = train_predictor(config, train, val, tc, checkpoint_path=tmp_path / "b.train.ckpt",
                           output_path=tmp_path / "b.ckpt", stop_after=5, **kwargs)
    assert int(part.fit.state.step) == 5
    resumed = train_predictor(config, train, val, tc, checkpoint_path=tmp_path / "b.train.ckpt",
                              output_path=tmp_path / "b.ckpt", **kwargs)
    _assert_same_fit(full.fit, resumed.fit)
    a, _ = load_predictor(tmp_path / "a.ckpt")
    b, _ = load_predictor(tmp_path / "b.ckpt")
    _assert_same_tree(a.params, b.params)


_toy = linear_problem  # the linear model of test_training.py


def test_resume_after_ctrl_c_equals_uninterrupted(tmp_path):
    """Ctrl-C (KeyboardInterrupt while the next batch is fetched, mid-epoch, between checkpoints): ``fit`` saves
    where it is, and a rerun continues to the same result."""
    loss_fn, params, batches, eval_fn = _toy()
    cfg = TrainConfig(learning_rate=0.05, warmup_steps=3, max_steps=30, eval_every=5, checkpoint_every=8,
                      ema_decay=0.9)
    full = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, progress=False)
    fetched = {"n": 0}

    def interrupted(epoch):
        for batch in batches(epoch):
            if fetched["n"] == 14:  # after 14 steps: epoch 3, batch 2; last checkpoint at step 8
                raise KeyboardInterrupt
            fetched["n"] += 1
            yield batch

    path = tmp_path / "m.train.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(loss_fn, params, interrupted, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False)
    assert ckpt.read_header(path)["metadata"]["loop"]["batch"] == 2, "fit must save its state when interrupted"
    resumed = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False)
    _assert_same_fit(full, resumed)


def test_resumed_training_history_is_identical(tmp_path):
    loss_fn, params, batches, eval_fn = _toy()
    cfg = TrainConfig(learning_rate=0.05, warmup_steps=3, max_steps=40, eval_every=20, checkpoint_every=0)
    full = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, progress=False)
    path = tmp_path / "m.train.ckpt"
    fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False, stop_after=13)
    resumed = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False)
    assert resumed.history == full.history
