"""``atomsmith train ...``: one typer sub-app; each model family adds a command function to ``train_app``.

To add a family: define ``def my_family(...)`` below (or in its own module) and register it in :func:`register`
with ``train_app.command("my-family")(my_family)``.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from atomsmith.cli import train_options as opts

train_app = typer.Typer(help="Train models (diffusion, ...). Checkpoints resume automatically.",
                        no_args_is_help=True)


def diffusion(
    out: Path = opts.OUT,
    dataset: str = typer.Option("perov_5", help="Training dataset (train split; val split for validation)."),
    data: Path = opts.DATA,
    on_bad: str = opts.ON_BAD,
    cif_column: str = opts.CIF_COLUMN,
    val_fraction: float = opts.VAL_FRACTION,
    steps: int = typer.Option(5000, help="Optimiser steps."),
    batch_size: int = typer.Option(64, help="Cells per batch."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    irreps: str = typer.Option("16x0e+8x1o+4x2e", help="Hidden irreps of the shared encoder."),
    layers: int = typer.Option(2, help="Interaction blocks."),
    cutoff: float = typer.Option(4.0, help="Neighbour cutoff, Å."),
    species_process: str = typer.Option("absorbing", help="Species diffusion: absorbing (masked discrete "
                                                          "diffusion, cross-entropy on the clean species) or "
                                                          "gaussian (relaxed one-hot DDPM, the older models)."),
    seed: int = opts.SEED,
    eval_every: int = typer.Option(500, help="Steps between validation evaluations."),
    checkpoint_every: int = typer.Option(250, help="Steps between training checkpoints."),
    devices: int = opts.DEVICES,
    train_state: Path = opts.TRAIN_STATE,
    force: bool = opts.FORCE,
    progress: bool = opts.PROGRESS,
) -> None:
    """Train a crystal diffusion model (wrapped-normal coordinates, DDPM lattice, masked discrete species) with the
    shared loop.

    Examples:

      atomsmith train diffusion --dataset perov_5 --steps 13000 --out perov.ckpt

      atomsmith train diffusion --data my_structures/ --steps 5000 --out mine.ckpt
    """
    from rich.console import Console

    from atomsmith.generators.diffusion.data import load_split_cached
    from atomsmith.generators.diffusion.training import make_config, train_diffusion
    from atomsmith.training.loop import TrainConfig, count_params

    console = Console(stderr=True)
    opts.check_output(out, force, opts.train_state_path(out, train_state))  # before loading data
    opts.announce_resume(opts.train_state_path(out, train_state), "diffusion", console)
    if species_process not in ("absorbing", "gaussian"):
        raise typer.BadParameter(f"{species_process!r}: use absorbing or gaussian", param_hint="--species-process")
    state_path = opts.train_state_path(out, train_state)
    t0 = time.perf_counter()
    if data is not None:
        own = opts.load_own_data(data, [], on_bad, cif_column, console)
        train, val = opts.split_own_data(own, val_fraction, seed, data)
        dataset = str(data)
    else:
        train = load_split_cached(dataset, "train")
        val = load_split_cached(dataset, "val")
    console.print(f"{dataset}: {len(train)} train / {len(val)} val cells ({time.perf_counter() - t0:.0f} s)")
    elements = sorted({int(z) for c in [*train, *val] for z in c.numbers})
    config = make_config(train, irreps_hidden=irreps, n_layers=layers, cutoff=cutoff, seed=seed, elements=elements,
                         species_process=species_process)
    tc = TrainConfig(learning_rate=learning_rate, max_steps=steps, warmup_steps=min(200, steps // 10),
                     eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed, data_parallel=devices)
    command = opts.command_line("diffusion")
    meta = {"how_trained": {"command": command, "dataset": f"{dataset}:train" if data is None else dataset,
                            "validation": f"{dataset}:val" if data is None else f"held-out {val_fraction:g}",
                            "n_train": len(train), "batch_size": batch_size, "seed": seed}}
    t1 = time.perf_counter()
    with opts.interruptible(state_path, "diffusion"):
        model, result = train_diffusion(config, train, val, tc, batch_size=batch_size, checkpoint_path=state_path,
                                        metadata=meta, progress=progress)
    wall = time.perf_counter() - t1
    last_val = next((h for h in reversed(result.history) if "val_loss" in h), {})
    how = {**meta["how_trained"], "steps": int(result.state.step), "wall_time_s_last_call": round(wall, 1),
           "train_config": tc.__dict__, "n_params": count_params(model.params), "final_validation": last_val,
           "best_val_loss": result.best_metric, "stopped_early": result.stopped_early}
    model.save(out, {"how_trained": how}, overwrite=force)
    console.print(f"wrote {out}: {how['n_params']} parameters, {how['steps']} steps, best val loss "
                  f"{result.best_metric:.4g}, {wall:.0f} s")


def register(app: typer.Typer) -> None:
    from atomsmith.cli.train_gram_vae import gram_vae
    from atomsmith.cli.train_predictor import predictor

    train_app.command("diffusion")(diffusion)
    train_app.command("predictor")(predictor)
    train_app.command("gram-vae")(gram_vae)  # Gram-matrix VAE of local environments (atomsmith.cli.train_gram_vae)
    app.add_typer(train_app, name="train")
