"""``atomsmith train predictor``: fit a property predictor (scalar or tensor target) with the shared loop.

Registered on the ``train`` sub-app by :mod:`atomsmith.cli.train`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from atomsmith.cli import train_options as opts


def predictor(
    out: Path = opts.OUT,
    dataset: str = typer.Option("perov_5", help="Dataset name (see `atomsmith data`)."),
    target: str = typer.Option("heat_ref", help="Property: heat_ref, energy_per_atom, born_charges, "
                                                "raman_tensors, dielectric, ..."),
    train_split: str = typer.Option("train", help="Split to train on."),
    val_split: str = typer.Option("val", help="Validation split; if equal to --train-split (e.g. bto_400K 'all'), "
                                              "a deterministic --val-fraction of it is held out."),
    val_fraction: float = opts.VAL_FRACTION,
    data: Path = opts.DATA,
    on_bad: str = opts.ON_BAD,
    cif_column: str = opts.CIF_COLUMN,
    pooling: str = typer.Option(None, help="Targets without a default head (your own columns): mean (intensive, "
                                           "default) or sum (extensive) over atoms."),
    n_train: int = typer.Option(None, help="Use only the first N training structures."),
    n_val: int = typer.Option(None, help="Use only the first N validation structures."),
    data_dir: Path = typer.Option(None, help="Directory with data that is not shipped (e.g. bto_400K)."),
    steps: int = typer.Option(3000, help="Optimiser steps (cosine decay horizon)."),
    batch_size: int = typer.Option(32, help="Structures per batch."),
    learning_rate: float = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW, warm-up + cosine)."),
    weight_decay: float = typer.Option(1e-5, help="AdamW weight decay."),
    ema_decay: float = typer.Option(0.99, help="EMA of the weights (evaluated and shipped)."),
    irreps: str = typer.Option("32x0e+8x1o+4x2e", help="Hidden irreps of the shared encoder."),
    layers: int = typer.Option(2, help="Interaction blocks."),
    cutoff: float = typer.Option(5.0, help="Neighbour cutoff, Å."),
    width: int = typer.Option(32, help="Width of the readout head."),
    loss: str = typer.Option("mse", help="mse, mae or huber (on normalised residuals)."),
    acoustic_sum_rule: bool = typer.Option(None, "--asr/--no-asr",
                                           help="Per-atom values sum to zero (default: on for born_charges)."),
    seed: int = opts.SEED,
    eval_every: int = typer.Option(200, help="Steps between validation evaluations."),
    patience: int = typer.Option(None, help="Stop after this many evaluations without improvement."),
    checkpoint_every: int = typer.Option(200, help="Steps between training checkpoints."),
    devices: int = opts.DEVICES,
    train_state: Path = opts.TRAIN_STATE,
    force: bool = opts.FORCE,
    progress: bool = opts.PROGRESS,
) -> None:
    """Train a property predictor on the shared encoder (per-species normalisation, EMA, early stopping).

    Examples:

      atomsmith train predictor --dataset perov_5 --target heat_ref --out heat_ref.ckpt

      atomsmith train predictor --data my.csv --target band_gap --on-bad skip --out gap.ckpt
    """
    from rich.console import Console

    from atomsmith import datasets
    from atomsmith.nn.encoder import EncoderConfig
    from atomsmith.predictors.model import PredictorConfig
    from atomsmith.nn.readouts import ReadoutConfig
    from atomsmith.predictors.targets import KNOWN_TARGETS, default_readout
    from atomsmith.predictors.training import PredictorData, train_predictor
    from atomsmith.training.loop import TrainConfig

    console = Console(stderr=True)
    state_path = opts.train_state_path(out, train_state)
    opts.check_output(out, force, state_path)  # before loading data: both files can be written
    opts.announce_resume(state_path, "predictor", console)  # and a training state there is one to resume
    if pooling not in (None, "mean", "sum"):
        raise typer.BadParameter(f"{pooling!r}: use mean or sum", param_hint="--pooling")
    if target in KNOWN_TARGETS:
        readout = default_readout(target, width=width)
        if pooling is not None:
            readout = dataclasses.replace(readout, pooling=pooling)
    elif data is not None:  # a column of the user's file: a structure-level scalar
        readout = ReadoutConfig(level="structure", pooling=pooling or "mean", width=width)
    else:
        raise typer.BadParameter(f"no default head for {target!r} in --dataset {dataset}; known: "
                                 f"{sorted(KNOWN_TARGETS)} (a column of your own --data file is fine)",
                                 param_hint="--target")
    if acoustic_sum_rule is not None and readout.level == "atom":
        readout = dataclasses.replace(readout, acoustic_sum_rule=acoustic_sum_rule)
    t0 = time.perf_counter()
    if data is not None:
        dataset, train_split = str(data), "all"
        own = opts.load_own_data(data, [target], on_bad, cif_column, console)
        train, val = opts.split_own_data(own, val_fraction, seed, data)
        val_desc = f"{data} (held-out {val_fraction:g}, seed {seed})"
    elif val_split == train_split:
        train = datasets.load(dataset, train_split, data_dir=data_dir)
        train, val = datasets.random_split(train, val_fraction, seed=seed)
        val_desc = f"{dataset}:{val_split} (held-out {val_fraction:g}, seed {seed})"
    else:
        train = datasets.load(dataset, train_split, data_dir=data_dir)
        val = datasets.load(dataset, val_split, data_dir=data_dir)
        val_desc = f"{dataset}:{val_split}"
    train, val = train[:n_train] if n_train else train, val[:n_val] if n_val else val
    encoder = EncoderConfig(irreps_hidden=irreps, n_layers=layers, cutoff=cutoff)
    config = PredictorConfig.for_target(target, encoder=encoder, readout=readout, loss=loss)
    train_data = PredictorData.build(train, config)
    val_data = PredictorData.build(val, config)
    console.print(f"{dataset}: {len(train)} train / {len(val)} validation structures, target {target} "
                  f"({config.irreps}), {time.perf_counter() - t0:.0f} s to load")
    tc = TrainConfig(learning_rate=learning_rate, weight_decay=weight_decay, max_steps=steps,
                     warmup_steps=min(200, max(steps // 20, 1)), ema_decay=ema_decay, eval_every=eval_every,
                     checkpoint_every=checkpoint_every, patience=patience, seed=seed, data_parallel=devices)
    command = opts.command_line("predictor")
    meta = {"how_trained": {"command": command, "dataset": f"{dataset}:{train_split}", "validation": val_desc,
                            "seed": seed}, "target": target, "dataset": dataset, "seed": seed}
    t1 = time.perf_counter()
    with opts.interruptible(state_path, "predictor"):
        trained = train_predictor(config, train_data, val_data, tc, batch_size=batch_size, checkpoint_path=state_path,
                                  output_path=out, metadata=meta, progress=progress)
    metric = "mae" if config.readout.spec is None else "rmse"
    console.print(f"wrote {out}: {trained.n_params} parameters, {int(trained.fit.state.step)} steps, best "
                  f"validation {metric} {trained.fit.best_metric:.4g}, {time.perf_counter() - t1:.0f} s")
