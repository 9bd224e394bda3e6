"""``atomsmith sample -n 100 --out samples.extxyz``: draw crystals from a shipped or trained generator."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import typer

def _enable_compilation_cache() -> None:
    """Opt-in persistent JAX compilation cache: ``ATOMSMITH_COMPILATION_CACHE=DIR`` reuses compiled samplers
    between runs. Off by default: XLA warns loudly (and could in principle fail) when a cached CPU executable is
    loaded on a machine with different CPU features, e.g. a shared home directory."""
    directory = os.environ.get("ATOMSMITH_COMPILATION_CACHE")
    if not directory:
        return
    import jax

    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except (OSError, AttributeError):
        pass


def sample(
    out: Path = typer.Option(..., "--out", "-o", help="Output: samples.extxyz[.gz] or .cif file, or a directory "
                                                      "(with --format cif/poscar) for one file per structure."),
    n: int = typer.Option(10, "-n", "--n", min=1, help="Number of structures."),
    model: str = typer.Option(None, "--model", "-m", help="Shipped model name or checkpoint path "
                                                          "(default: perov-5)."),
    fmt: str = typer.Option(None, "--format", "-f", help="extxyz, cif or poscar (default: from OUT)."),
    seed: int = typer.Option(0, help="Random seed (same seed, model and options give the same structures)."),
    steps: int = typer.Option(None, min=1, help="Reverse diffusion steps (default: 200 predictor-corrector steps)."),
    sampler: str = typer.Option("pc", help="pc (predictor-corrector) or ode (probability flow)."),
    composition: str = typer.Option(None, help="Structure prediction: fixed composition of every cell, "
                                               "e.g. SrTiO3 (only lattice and coordinates are generated)."),
    batch_size: int = typer.Option(256, min=1, help="Cells sampled together."),
    cell: str = typer.Option(None, help="Hold the cell (amorphous mode): 'a' (cubic, Å), 'a,b,c' (orthorhombic) or "
                                        "9 numbers (rows); use with --composition, e.g. --model a-si --composition "
                                        "Si64 --cell 10.92."),
    relax: bool = typer.Option(False, "--relax", help="Short Stillinger-Weber relaxation of every sample (Si "
                                                      "cells; fixed cell, FIRE to 0.01 eV/Å or --relax-steps)."),
    relax_steps: int = typer.Option(300, min=1, help="Iteration limit of --relax."),
    potential: str = typer.Option(None, "--potential", help="SW parameter set of --relax: vink (default: the one "
                                                            "the shipped a-Si was made with) or original."),
    target: list[str] = typer.Option(None, "--target", "-t",
                                     help="Guide toward a property value, e.g. --target heat_ref=0.5 (repeatable: "
                                          "several properties at once)."),
    prop_range: list[str] = typer.Option(None, "--range", help="Guide into a property range, e.g. --range "
                                                               "heat_ref=0.3:0.7 (an empty end is unbounded)."),
    guidance_scale: float = typer.Option(10.0, min=0.0, help="Guidance strength w (0 = unguided; see "
                                                             "atomsmith.generators.diffusion.conditioning)."),
    property_scale: float = typer.Option(0.1, help="Tolerance of --target/--range in the property's units (eV): "
                                                   "an error of this size costs 1."),
    mode: str = typer.Option("auto", "--guidance-mode",
                             help="auto: classifier-free guidance when the model was trained with the targeted "
                                  "properties as inputs (e.g. perov-5-cfg), else gradient guidance with a predictor; "
                                  "or force 'gradient' / 'classifier-free'."),
    cfg_scale: float = typer.Option(2.0, min=0.0, help="Classifier-free guidance factor (1 = conditional model "
                                                       "alone, larger = sharper)."),
    predictor: list[str] = typer.Option(None, "--predictor", help="Predictor(s) providing the guided properties "
                                                                  "(shipped name or checkpoint; default: the shipped "
                                                                  "predictors for the model's dataset)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Sample crystals from a generative model and write them atomically.

    Examples:

      atomsmith sample -n 100 --out samples.extxyz

      atomsmith sample -n 50 --target heat_ref=0.5 --out low_heat.extxyz

      atomsmith sample -n 50 --range heat_ref=0.3:0.7 --format cif --out cifs/

      atomsmith sample -n 50 --model perov-5-cfg --target heat_ref=0.5 --cfg-scale 2 --out cfg.extxyz

      atomsmith sample -n 4 --model a-si --composition Si64 --cell 10.92 --relax --out a_si.extxyz
    """
    from rich.console import Console

    from atomsmith.api import sampling as api
    from atomsmith.cli.output import check_output, output_plan, print_summary, write_structures
    from atomsmith.metrics.validity import structure_validity
    from atomsmith.pretrained import GENERATOR_KINDS, UnknownModelError, WrongModelKindError
    from atomsmith.training.checkpoint import CheckpointError

    console = Console(stderr=True)
    out_format, directory, gz = output_plan(out, fmt, n)
    check_output(out, force, directory=directory)  # before any work: sampling can take hours
    _enable_compilation_cache()
    from atomsmith.generators.protocol import capabilities_of

    try:
        generator, name = api.resolve_model(model, kinds=GENERATOR_KINDS)
    except (UnknownModelError, WrongModelKindError, CheckpointError, OSError) as exc:  # unknown, wrong kind, damaged
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if capabilities_of(generator).produces == "environments":  # clusters, not cells: cli.sample_gram_vae
        from atomsmith.cli.sample_gram_vae import sample_environments

        return sample_environments(generator, name, n, seed, out, out_format, directory, gz, force, composition)
    steps = generator.options(steps=steps).steps  # the model's default when not given
    with _usage_errors("--composition"):
        composition = api.parse_composition(composition) if composition else None
    with _usage_errors("--cell"):
        cell = api.parse_cell(cell) if cell is not None else None
    with _usage_errors("--target"):
        requests = api.parse_requests(target, prop_range, property_scale)
    with _usage_errors(None):  # the messages name the mode, property or --predictor model at fault
        plan = api.plan_guidance(generator, name, requests, predictors=predictor or (), mode=mode)
    for message in plan.warnings:  # a target outside what its predictor knows (atomsmith.predictors.applicability)
        typer.echo(f"warning: {message}", err=True)
    stats: dict = {}
    t0 = time.perf_counter()
    with _usage_errors(None):
        crystals = api.sample_with_plan(generator, n, plan, seed=seed, composition=composition, cell=cell, name=name,
                                        guidance_scale=guidance_scale, cfg_scale=cfg_scale, steps=steps,
                                        method=sampler, batch_size=batch_size, progress=progress, stats=stats)
    relax_rows = []
    if relax:
        with _usage_errors("--relax"):
            crystals, records = api.relax_all(crystals, relax_steps, potential)
        relax_rows = [(f"SW energy after relaxation (mean, {records[0]['potential']} parameters)",
                       f"{np.mean([r['energy_per_atom'] for r in records]):.3f} eV/atom"),
                      ("relaxations converged (f_max 0.01 eV/Å)",
                       f"{sum(bool(r['converged']) for r in records)} / {len(records)}")]
    seconds = time.perf_counter() - t0
    write_structures(out, crystals, out_format, directory, gz, force)
    valid = sum(structure_validity(c) for c in crystals)
    rows = [("structures", str(len(crystals))),
            ("structurally valid (d >= 0.5 Å, V >= 0.1 Å^3)", f"{100 * valid / max(len(crystals), 1):.1f} %"),
            ("sampler / steps", f"{sampler} / {steps}"),
            ("time (incl. compilation)", f"{seconds:.1f} s"),
            ("structures/s", f"{len(crystals) / max(seconds, 1e-9):.2f}"),
            ("neighbour-list overflows", str(stats.get("overflow", 0))),
            *_property_rows(crystals, plan.requests, plan.predictors),
            *relax_rows,
            ("output", f"{out} ({out_format}{', directory' if directory else ''})")]
    print_summary(f"atomsmith sample: {name}", rows, console)


@contextlib.contextmanager
def _usage_errors(param_hint: str | None):
    """Turn the API's request errors (bad values, unknown properties or models) into CLI usage errors (exit 2)."""
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.guidance.requests import UnknownPropertyError
    from atomsmith.pretrained import UnknownModelError, WrongModelKindError
    from atomsmith.training.checkpoint import CheckpointError

    try:
        yield
    except (InvalidRequestError, UnknownPropertyError, UnknownModelError, WrongModelKindError, CheckpointError) as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from None
    except ValueError as exc:  # the samplers' own checks (sizes, compositions outside the vocabulary)
        raise typer.BadParameter(str(exc)) from None


def _property_rows(crystals, requests, predictors) -> list[tuple[str, str]]:
    """Summary rows: the guiding predictor's values on the samples, per requested property."""
    import numpy as np

    rows = []
    for request in requests:
        values = np.array(predictors[request.name].predict(crystals), float)
        if request.is_target:
            asked = f"{request.low:g}"
            err = np.abs(values - request.low)
        else:
            asked = f"{request.low:g}:{request.high:g}"
            err = np.maximum(request.low - values, 0) + np.maximum(values - request.high, 0)
        rows.append((f"{request.name} by its predictor (asked {asked})",
                     f"mean {values.mean():.3f}, MAE to request {err.mean():.3f}"))

    return rows


def register(app) -> None:
    app.command("sample")(sample)
