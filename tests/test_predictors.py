"""Predictors: normalisation, a tiny training run that learns, checkpoints (round trip, corruption, mismatch), CLI."""

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith.graphs.neighbors import neighbor_list
from atomsmith.nn.cartesian import NAMED_SPECS
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.nn.readouts import ReadoutConfig
from atomsmith.predictors import (
    MissingTargetError,
    PredictorConfig,
    PredictorData,
    evaluate,
    fit_normalizer,
    load_predictor,
    train_predictor,
)
from atomsmith.structures import io
from atomsmith.training import checkpoint as ckpt
from atomsmith.training.loop import TrainConfig
from tests.helpers.symmetry import random_crystal

ENCODER = EncoderConfig.tiny(irreps_hidden="16x0e+4x1o", n_layers=2, cutoff=3.5, radial_hidden=(16,))


def _synthetic(n, seed):
    """Crystals whose target mixes composition with a smooth geometric term: mean_i sum_j exp(-d_ij) (Å)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        numbers = rng.choice([8, 14], size=3)
        crystal = random_crystal(rng, n_atoms=3, numbers=numbers, size=3.0, skew=0.25, min_distance=1.0)
        d = neighbor_list(crystal, 3.5).distances(crystal)
        y = 0.3 * np.mean(crystal.numbers == 14) + np.sum(np.exp(-d)) / crystal.n_atoms
        out.append(crystal.with_properties(y=y))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = PredictorConfig(target="y", readout=ReadoutConfig(level="structure", pooling="mean", width=16),
                             encoder=ENCODER)
    train = PredictorData.build(_synthetic(96, 0), config)
    val = PredictorData.build(_synthetic(24, 1), config)
    directory = tmp_path_factory.mktemp("predictor")
    tc = TrainConfig(learning_rate=1e-2, warmup_steps=10, max_steps=150, eval_every=50, checkpoint_every=50,
                     ema_decay=0.9)
    result = train_predictor(config, train, val, tc, batch_size=16, checkpoint_path=directory / "train.ckpt",
                             output_path=directory / "model.ckpt", metadata={"dataset": "synthetic", "seed": 0},
                             progress=False)
    return result, val, directory / "model.ckpt"


def test_training_beats_composition_baseline(trained):
    result, val, _ = trained
    metrics, _ = evaluate(result.predictor, val, batch_size=8)
    # the normaliser alone is the best linear composition model: its error is the baseline to beat
    base = result.predictor.replace(params=jax.tree_util.tree_map(np.zeros_like, result.predictor.params))
    baseline, _ = evaluate(base, val, batch_size=8)
    assert np.isfinite(metrics["mae"]) and metrics["mae"] < 0.6 * baseline["mae"], (metrics, baseline)
    assert result.fit.best_metric == pytest.approx(min(h["val_mae"] for h in result.fit.history if "val_mae" in h))


def test_checkpoint_round_trip_and_metadata(trained):
    result, val, path = trained
    loaded, meta = load_predictor(path, target="y", irreps="0e")
    a = result.predictor.predict(val.crystals[:5])
    b = loaded.predict(val.crystals[:5])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert meta["config"]["target"] == "y" and meta["config"]["irreps"] == "1x0e"
    assert meta["config"]["encoder"]["irreps_hidden"] == ENCODER.irreps_hidden
    assert meta["dataset"] == "synthetic" and meta["seed"] == 0 and "mae" in meta["best_val"]
    assert meta["train_config"]["max_steps"] == 150


def test_mismatched_and_corrupted_checkpoints(trained, tmp_path):
    _, _, path = trained
    with pytest.raises(ckpt.CheckpointMismatchError, match="config.target is 'y', expected 'born_charges'"):
        load_predictor(path, target="born_charges")
    with pytest.raises(ckpt.CheckpointMismatchError, match="config.irreps"):
        load_predictor(path, irreps="0e+1e+2e")
    other = ckpt.save(tmp_path / "diffusion.ckpt", {"w": np.zeros(3)}, kind="diffusion")
    with pytest.raises(ckpt.CheckpointMismatchError, match="expected 'predictor'"):
        load_predictor(other)
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[-10] ^= 0x55
    (tmp_path / "flipped.ckpt").write_bytes(bytes(flipped))
    with pytest.raises(ckpt.CorruptCheckpointError, match="checksum"):
        load_predictor(tmp_path / "flipped.ckpt")
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CorruptCheckpointError):
        load_predictor(tmp_path / "truncated.ckpt")
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(ckpt.CorruptCheckpointError, match="magic"):
        load_predictor(tmp_path / "text.ckpt")
    # valid file whose recorded config no longer matches its parameters (e.g. edited metadata): shape error
    state, meta = ckpt.load(path)
    meta["config"]["readout"]["width"] = 4
    ckpt.save(tmp_path / "edited.ckpt", state, kind="predictor", metadata=meta)
    with pytest.raises(ckpt.CheckpointMismatchError, match="shape|parameter tree"):
        load_predictor(tmp_path / "edited.ckpt")


def test_cli_predict(trained, tmp_path):
    from atomsmith.cli.main import app

    result, val, path = trained
    files = []
    for k, crystal in enumerate(val.crystals[:2]):
        files.append(tmp_path / f"s{k}.cif")
        io.write(files[-1], crystal)
    runner = CliRunner()
    out = runner.invoke(app, ["predict", "--model", str(path), "--json", *map(str, files)])
    assert out.exit_code == 0, out.output
    values = [row["value"] for row in json.loads(out.stdout)]
    expected = result.predictor.predict([io.read_one(f) for f in files])
    np.testing.assert_allclose(values, np.asarray(expected), rtol=1e-5)
    table = runner.invoke(app, ["predict", "--model", str(path), str(files[0])])
    assert table.exit_code == 0 and "y =" in table.stdout
    bad = runner.invoke(app, ["predict", "--model", str(tmp_path / "missing.ckpt"), str(files[0])])
    assert bad.exit_code == 2 and "--model" in bad.output


def test_normalizer_tables():
    rng = np.random.default_rng(3)
    crystals = [random_crystal(rng, n_atoms=4, numbers=rng.choice([8, 14, 22], 4)) for _ in range(12)]
    # per-atom rank-2 target: shift holds each species' mean isotropic coefficient, scale its residual RMS
    born = [rng.normal(size=(4, 3, 3)) + 2.0 * np.eye(3) * (c.numbers == 22)[:, None, None] for c in crystals]
    readout = ReadoutConfig(level="atom", tensor="rank2")
    norm = fit_normalizer(crystals, born, readout, 119)
    numbers = np.concatenate([c.numbers for c in crystals])
    values = np.concatenate(born)
    spec = NAMED_SPECS["rank2"]
    iso = np.einsum("nab,ab->n", values, spec.basis[..., 0])  # the 0e coefficient
    for z in (8, 14, 22):
        np.testing.assert_allclose(float(norm.shift[z, 0]), iso[numbers == z].mean(), rtol=1e-5)
    assert np.all(np.asarray(norm.shift)[:, 1:] == 0.0)  # anisotropic parts are never shifted
    # structure target exactly linear in composition: the shift reproduces it, the residual is ~0 (ridge bias
    # only), so the scale falls back to 1 instead of blowing the network's outputs down to ~1e-5
    weights = {8: -1.0, 14: 0.5, 22: 2.0}
    y = [np.mean([weights[z] for z in c.numbers]) for c in crystals]
    norm = fit_normalizer(crystals, y, ReadoutConfig(level="structure", pooling="mean"), 119)
    for z, w in weights.items():
        assert float(norm.shift[z, 0]) == pytest.approx(w, abs=1e-3)
    assert float(norm.scale[8]) == 1.0
    # a constant target has no residual at all: the scale falls back to 1 instead of dividing by zero
    same = [c.replace(numbers=np.full(c.n_atoms, 14)) for c in crystals]
    norm = fit_normalizer(same, [2.5] * len(same), ReadoutConfig(level="structure", pooling="mean"), 119)
    assert float(norm.scale[14]) == 1.0 and float(norm.shift[14, 0]) == pytest.approx(2.5, rel=1e-5)


def test_missing_target_is_a_clear_error():
    config = PredictorConfig(target="heat_ref", readout=ReadoutConfig(), encoder=ENCODER)
    with pytest.raises(MissingTargetError, match="heat_ref"):
        PredictorData.build(_synthetic(2, 0), config)
    bad = [c.with_properties(y=np.ones(3)) for c in _synthetic(1, 0)]
    with pytest.raises(ValueError, match="shape"):
        PredictorData.build(bad, PredictorConfig(target="y", encoder=ENCODER))
