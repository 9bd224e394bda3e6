"""``atomsmith train gram-vae --out model.ckpt``: train the Gram-matrix VAE of local environments (registered on
the ``train`` sub-app of :mod:`atomsmith.cli.train`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from atomsmith.cli import train_options as opts
from atomsmith.generators.gram_vae.data import SOURCES_HELP


def gram_vae(
    out: Path = opts.OUT,
    data: str = typer.Option("shipped", help=f"Training cells: {SOURCES_HELP}."),
    preset: str = typer.Option("improved", help="reference (the original study exactly), improved or tiny."),
    steps: int = typer.Option(6000, min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(128, min=1, help="Environments per batch."),
    learning_rate: float = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    kl_weight: float = typer.Option(None, help="Override the preset's KL weight."),
    latent_dim: int = typer.Option(None, help="Override the preset's latent dimension."),
    mixture: int = typer.Option(None, help="Components of the latent Gaussian mixture fitted after training "
                                           "(default: 16 for the improved preset, 0 = sample from N(0, I))."),
    seed: int = opts.SEED,
    devices: int = opts.DEVICES,
    train_state: Path = opts.TRAIN_STATE,
    force: bool = opts.FORCE,
    progress: bool = opts.PROGRESS,
) -> None:
    """Train a Gram-matrix VAE of local environments (8 nearest neighbours within 4 Å) with the shared loop."""
    import numpy as np
    from rich.console import Console

    from atomsmith.generators.environments import ops
    from atomsmith.generators.gram_vae import config as gconfig
    from atomsmith.generators.gram_vae.data import load_cells
    from atomsmith.generators.gram_vae.training import split_cells, train_gram_vae
    from atomsmith.training.loop import TrainConfig

    console = Console(stderr=True)
    state_path = opts.train_state_path(out, train_state)
    opts.check_output(out, force, state_path)
    opts.announce_resume(state_path, "gram-vae", console)
    try:
        config = gconfig.preset(preset)
        changes = {k: v for k, v in (("kl_weight", kl_weight), ("latent_dim", latent_dim)) if v is not None}
        config = dataclasses.replace(config, **changes)
        cells = load_cells(data, progress=lambda msg: console.print(msg, highlight=False))
        splits = split_cells(cells, config.n_neighbors, config.r_cut, seed=seed)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if len(splits.train) < batch_size:
        raise typer.BadParameter(f"only {len(splits.train)} training environments for --batch-size {batch_size}")
    console.print(f"{data}: {len(cells)} cells -> {len(splits.train)} train / {len(splits.val)} val / "
                  f"{len(splits.test)} test environments ({splits.dropped} atoms with < {config.n_neighbors} "
                  f"neighbours within {config.r_cut} Å skipped)")
    tc = TrainConfig(learning_rate=learning_rate, max_steps=steps, warmup_steps=min(200, steps // 10),
                     eval_every=max(steps // 10, 1), checkpoint_every=max(steps // 10, 1), seed=seed,
                     data_parallel=devices)
    command = opts.command_line("gram-vae")
    how = {"command": command, "data": data, "n_cells": len(cells), "cells_split": dict(splits.cells),
           "n_train_environments": int(len(splits.train)), "preset": preset, "seed": seed}
    t0 = time.perf_counter()
    with opts.interruptible(state_path, "gram-vae"):
        model, summary = train_gram_vae(splits.train, splits.val, config, tc, batch_size=batch_size,
                                        checkpoint_path=state_path, metadata={"how_trained": how}, progress=progress)
    n_mix = (16 if preset == "improved" else 0) if mixture is None else mixture
    if n_mix:
        model = model.with_latent_mixture(splits.train, n_components=n_mix, seed=seed)
    test = splits.test[:500].astype(np.float64)
    rec = model.reconstruct(test)
    rmsd = [ops.aligned_rmsd(a, b) for a, b in zip(rec, test)]
    how.update({"steps": summary["steps"], "wall_time_s": round(time.perf_counter() - t0, 1),
                "n_params": summary["n_params"], "validation": summary["val"],
                "test_reconstruction_rmsd_mean": float(np.mean(rmsd)),
                "test_reconstruction_rmsd_median": float(np.median(rmsd)), "latent_mixture_components": n_mix,
                "train_config": summary["train_config"]})
    model.save(out, {"how_trained": how})
    console.print(f"wrote {out}: {summary['n_params']} parameters, {summary['steps']} steps, "
                  f"held-out reconstruction RMSD {np.mean(rmsd):.3f} Å (mean, {len(rmsd)} environments)")
