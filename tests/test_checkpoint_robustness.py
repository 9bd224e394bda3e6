"""Damaged checkpoints are detected by checksum and reported with a typed error naming the file, by every loader.

``test_training.py`` checks the format itself on one file (one flipped payload byte, a truncation, junk) and
``test_predictors.py`` the predictor loader; this file covers the gaps: every single-bit flip and every
truncation of a checkpoint (header included), and the loaders of every model kind (diffusion, Gram VAE,
equivariant VAE, predictor, ``pretrained.load_model`` by path) and of the training state ``fit`` resumes from.
"""

from __future__ import annotations

import numpy as np
import pytest

from atomsmith import pretrained
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.eq_vae.model import EqVAE
from atomsmith.generators.gram_vae.model import GramVAE
from atomsmith.predictors import load_predictor
from atomsmith.training import checkpoint as ckpt


def test_every_bit_flip_and_truncation_is_detected(tmp_path):
    """Before the header checksum, 69 of the 861 single-bit flips of such a file loaded silently (a changed kind
    or metadata value) and 67 raised KeyError."""
    path = ckpt.save(tmp_path / "small.ckpt", {"w": np.arange(4.0), "b": {"c": np.ones((2, 2), np.float32)}},
                     kind="predictor", metadata={"config": {"target": "y", "n": 3}, "note": "abc"})
    data = path.read_bytes()
    state, meta = ckpt.load(path)
    np.testing.assert_array_equal(state["w"], np.arange(4.0))
    bad = tmp_path / "bad.ckpt"
    for i in range(len(data)):
        for mask in (0x01, 0x20, 0x80):
            bad.write_bytes(data[:i] + bytes([data[i] ^ mask]) + data[i + 1:])
            with pytest.raises(ckpt.CorruptCheckpointError, match="bad.ckpt"):
                ckpt.load(bad)
    for cut in range(len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ckpt.CorruptCheckpointError, match="bad.ckpt"):
            ckpt.load(bad)
    bad.write_bytes(data + b"\x00")
    with pytest.raises(ckpt.CorruptCheckpointError, match="padded"):
        ckpt.load(bad)


def test_header_damage_is_named(tmp_path):
    path = ckpt.save(tmp_path / "m.ckpt", {"w": np.zeros(3)}, kind="diffusion", metadata={"config": {"a": 1}})
    data = path.read_bytes()
    changed = tmp_path / "changed.ckpt"
    changed.write_bytes(data.replace(b'"a": 1', b'"a": 2'))  # valid JSON, same length: only the checksum sees it
    with pytest.raises(ckpt.CorruptCheckpointError, match="changed.ckpt is corrupted: header checksum"):
        ckpt.read_header(changed)
    with pytest.raises(FileNotFoundError, match="is a directory"):
        ckpt.load(tmp_path)


def _damaged(tmp_path, source, how: str):
    data = source.read_bytes()
    path = tmp_path / f"{how}.ckpt"
    if how == "flipped":
        path.write_bytes(data[:-100] + bytes([data[-100] ^ 0x04]) + data[-99:])
    elif how == "truncated":
        path.write_bytes(data[: len(data) - 1000])
    else:  # wrong magic
        path.write_bytes(b"ATOMSMITH-CKPX\n" + data[15:])
    return path


LOADERS = {
    "perov-5": DiffusionModel.load,
    "gram-vae": GramVAE.load,
    "eq-vae": EqVAE.load,
    "perov-5-heat-ref": lambda path: load_predictor(path)[0],
}


_DAMAGE = [("flipped", "checksum"), ("truncated", "truncated"), ("magic", "magic")]


# EqVAE.load builds its parameter template (an e3nn init, ~10-40 s cold) before the payload is verified, so the eq-vae
# loader is only given the damage that its header read already catches.
@pytest.mark.parametrize("name, how, match", [*[(n, h, m) for n in LOADERS if n != "eq-vae" for h, m in _DAMAGE],
                                              ("eq-vae", "magic", "magic")])
def test_every_loader_reports_damage(tmp_path, name, how, match):
    path = _damaged(tmp_path, pretrained.path_of(name), how)
    for loader in (LOADERS[name], pretrained.load_model):
        with pytest.raises(ckpt.CorruptCheckpointError, match=match) as info:
            loader(path)
        assert str(path) in str(info.value)


def test_resaved_shipped_checkpoint_protects_its_metadata(tmp_path):
    """Shipped checkpoints predate the header checksum (they load without it); once re-saved, a changed metadata
    value (here the predictor's target) is caught instead of silently giving a model with the wrong label."""
    state, meta = ckpt.load(pretrained.path_of("perov-5-heat-ref"))
    path = ckpt.save(tmp_path / "resaved.ckpt", state, kind=ckpt.read_header(pretrained.path_of(
        "perov-5-heat-ref"))["kind"], metadata=meta)
    predictor, _ = load_predictor(path)
    assert predictor.target == "heat_ref"
    data = path.read_bytes()
    assert data.count(b'"heat_ref"') >= 1
    path.write_bytes(data.replace(b'"heat_ref"', b'"heat_reF"', 1))
    with pytest.raises(ckpt.CorruptCheckpointError, match="header checksum"):
        load_predictor(path)


def test_fit_refuses_a_damaged_training_state(tmp_path):
    """``fit`` resumes from OUT.train.ckpt; a damaged one is reported, not silently restarted or half-loaded."""
    import jax.numpy as jnp

    from atomsmith.training.loop import TrainConfig, fit

    def loss_fn(params, batch, key):
        loss = jnp.sum((params["w"] - batch) ** 2)
        return loss, {"mse": loss}

    def batches(epoch):
        yield jnp.ones(2)

    cfg = TrainConfig(learning_rate=0.1, warmup_steps=1, max_steps=4, checkpoint_every=1)
    path = tmp_path / "m.train.ckpt"
    fit(loss_fn, {"w": jnp.zeros(2)}, batches, cfg, checkpoint_path=path, progress=False, stop_after=2)
    data = path.read_bytes()
    path.write_bytes(data[:-20] + bytes([data[-20] ^ 0x01]) + data[-19:])
    with pytest.raises(ckpt.CorruptCheckpointError, match="m.train.ckpt"):
        fit(loss_fn, {"w": jnp.zeros(2)}, batches, cfg, checkpoint_path=path, progress=False)
