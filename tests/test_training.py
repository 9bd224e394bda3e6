"""The shared training loop and checkpoint format: resume equals uninterrupted, corruption is detected."""

import jax
import numpy as np
import pytest

from atomsmith.training import checkpoint as ckpt
from atomsmith.training.loop import TrainConfig, fit
from tests.helpers.toy_problem import linear_problem


_problem = linear_problem


def test_fit_learns_and_resume_is_identical(tmp_path):
    loss_fn, params, batches, eval_fn = _problem()
    cfg = TrainConfig(learning_rate=0.05, warmup_steps=5, max_steps=150, eval_every=50, checkpoint_every=7,
                      ema_decay=0.9)
    full = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, progress=False)
    assert full.best_metric < 0.05

    path = tmp_path / "train.ckpt"
    part = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False, stop_after=23)
    assert int(part.state.step) == 23
    resumed = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False)
    assert int(resumed.state.step) == 150
    for a, b in zip(jax.tree_util.tree_leaves(full.state.params), jax.tree_util.tree_leaves(resumed.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.best_metric == pytest.approx(full.best_metric)


def test_early_stopping(tmp_path):
    loss_fn, params, batches, _ = _problem()
    cfg = TrainConfig(learning_rate=0.05, max_steps=400, eval_every=4, patience=2, warmup_steps=1)
    calls = []

    def flat_eval(p):
        calls.append(1)
        return {"loss": 1.0}  # never improves after the first evaluation

    result = fit(loss_fn, params, batches, cfg, eval_fn=flat_eval, progress=False)
    assert result.stopped_early and int(result.state.step) == 12


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    state = {"a": np.arange(5.0), "nested": {"b": np.ones((2, 3), np.float32)}}
    path = ckpt.save(tmp_path / "m.ckpt", state, kind="predictor", metadata={"config": {"target": "heat_ref"}})
    loaded, meta = ckpt.load(path, kind="predictor", expect={"config.target": "heat_ref"}, target=state)
    np.testing.assert_array_equal(loaded["nested"]["b"], state["nested"]["b"])
    with pytest.raises(ckpt.CheckpointMismatchError, match="expected 'diffusion'"):
        ckpt.load(path, kind="diffusion")
    with pytest.raises(ckpt.CheckpointMismatchError, match="config.target"):
        ckpt.load(path, expect={"config.target": "band_gap"})
    with pytest.raises(ckpt.CheckpointMismatchError, match="shape"):
        ckpt.load(path, target={"a": np.arange(4.0), "nested": {"b": np.ones((2, 3))}})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ckpt.CorruptCheckpointError, match="checksum"):
        ckpt.load(bad)
    (tmp_path / "trunc.ckpt").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ckpt.CorruptCheckpointError, match="truncated"):
        ckpt.load(tmp_path / "trunc.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"hello world")
    with pytest.raises(ckpt.CorruptCheckpointError, match="not an atomsmith checkpoint"):
        ckpt.load(tmp_path / "junk.ckpt")


def test_atomic_save_refuses_overwrite(tmp_path):
    path = ckpt.save(tmp_path / "m.ckpt", {"a": np.zeros(2)}, kind="x")
    with pytest.raises(FileExistsError):
        ckpt.save(path, {"a": np.zeros(2)}, kind="x", overwrite=False)
