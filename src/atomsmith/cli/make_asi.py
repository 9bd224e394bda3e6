"""``atomsmith data make-asi``: amorphous silicon cells by Stillinger-Weber melt-quench, cached, written as extxyz.

The potential (``--potential original|vink``), slow quenches with plateaus (``--anneal T:PS``, repeatable) and a
zero-pressure cell relaxation at the end (``--relax-cell``) select the protocols of
``experiments/a_si_data/PROTOCOL_PLAN.md``; e.g. the Vink parameters, melt at 2500 K, cool at 1e12 K/s to 300 K
with a 100 ps anneal at 1000 K::

    atomsmith data make-asi --potential vink --t-melt 2500 --t-hold 2000 --hot-quench-rate 1e13 --hold-ps 0 \
        --quench-rate 1e12 --anneal 1000:100 --n-atoms 64 --out out/

Option defaults equal :class:`~atomsmith.physics.melt_quench.MeltQuenchConfig`'s (a test checks it; they are
repeated here so that ``atomsmith --help`` does not import JAX). The command joins the ``data`` group made by
:mod:`atomsmith.cli.data` (list ``make_asi`` after ``data`` in ``COMMAND_MODULES``); :func:`register_on` adds it to
any typer group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

#: The names of :data:`atomsmith.physics.stillinger_weber.PARAMETER_SETS` (repeated so that --help needs no JAX).
POTENTIALS = ("original", "vink")
#: The names of :data:`atomsmith.physics.melt_quench.PRESETS` (repeated so that --help needs no JAX).
PRESET_NAMES = ("sw-fast", "vink-1e12")
#: Command-line option -> :class:`~atomsmith.physics.melt_quench.MeltQuenchConfig` field, for the protocol options.
PROTOCOL_OPTIONS = {"density": "density", "start": "start", "t_melt": "t_melt", "melt_ps": "melt_ps",
                    "hot_quench_rate": "hot_quench_rate", "t_hold": "t_hold", "hold_ps": "hold_ps",
                    "quench_rate": "quench_rate", "t_final": "t_final", "anneal_ps": "anneal_ps", "dt": "dt",
                    "friction": "friction", "fmax": "fmax", "potential": "params", "anneal": "anneals",
                    "relax_cell": "relax_cell", "pressure": "pressure_gpa"}


def parse_anneals(values: list[str] | None) -> tuple[tuple[float, float], ...]:
    """``["1000:100", ...]`` -> ``((1000.0, 100.0), ...)`` (temperature K, duration ps); ``ValueError`` if malformed."""
    out = []
    for text in values or []:
        parts = text.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            out.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"--anneal takes TEMPERATURE:PS (e.g. 1000:100), got {text!r}") from None
    return tuple(out)


def protocol_config(preset: str | None, n_atoms: int, options: dict, typed: set[str]):
    """The :class:`~atomsmith.physics.melt_quench.MeltQuenchConfig` of a ``make-asi`` call: ``options`` (the
    protocol options by parameter name, :data:`PROTOCOL_OPTIONS`) as given, or, with a ``preset``, that preset
    changed by the options named in ``typed`` (those typed on the command line) only. ``ValueError`` if invalid."""
    from atomsmith.physics.melt_quench import MeltQuenchConfig
    from atomsmith.physics.melt_quench import preset as named_preset
    from atomsmith.physics.stillinger_weber import parameter_set

    values = {k: parameter_set(v) if k == "potential" else parse_anneals(v) if k == "anneal" else v
              for k, v in options.items()}
    if preset is None:
        return MeltQuenchConfig(n_atoms=n_atoms, **{PROTOCOL_OPTIONS[k]: v for k, v in values.items()})
    return named_preset(preset, n_atoms=n_atoms, **{PROTOCOL_OPTIONS[k]: values[k] for k in typed})


def make_asi(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset",
                                         help="Named protocol (sw-fast: the defaults below, the first shipped set; "
                                              "vink-1e12: the shipped a-Si since issue 15); protocol options given "
                                              "on the command line change it."),
    n_atoms: int = typer.Option(64, "--n-atoms", help="Atoms per cubic cell."),
    n_cells: int = typer.Option(4, "--n-cells", help="Number of cells (cell i of a seed never changes)."),
    out: Path = typer.Option(..., "--out", help="Output directory for the extxyz files."),
    seed: int = typer.Option(0, "--seed", help="Base random seed."),
    first_cell: int = typer.Option(0, "--first-cell", help="Index of the first cell: cells first..first+n-1 of the "
                                                           "seed (split one set over processes)."),
    density: float = typer.Option(2.29, "--density", help="Mass density in g/cm^3 (fixed cell)."),
    start: str = typer.Option("random", "--start", help="Initial structure: random or diamond."),
    t_melt: float = typer.Option(3500.0, "--t-melt", help="Melt temperature, K."),
    melt_ps: float = typer.Option(3.0, "--melt-ps", help="Melt duration, ps."),
    hot_quench_rate: float = typer.Option(1e15, "--hot-quench-rate", help="Cooling rate from t-melt to t-hold, K/s.",
                                          show_default="1e15"),
    t_hold: float = typer.Option(1100.0, "--t-hold", help="Hold temperature, K."),
    hold_ps: float = typer.Option(10.0, "--hold-ps", help="Hold duration at t-hold, ps (0: no hold)."),
    quench_rate: float = typer.Option(3e14, "--quench-rate", help="Cooling rate from t-hold to t-final, K/s.",
                                      show_default="3e14"),
    t_final: float = typer.Option(300.0, "--t-final", help="Final (anneal) temperature, K."),
    anneal_ps: float = typer.Option(1.0, "--anneal-ps", help="Anneal duration at t-final, ps."),
    dt: float = typer.Option(2.0, "--dt", help="MD time step, fs."),
    friction: float = typer.Option(0.01, "--friction", help="Langevin friction, 1/fs."),
    fmax: float = typer.Option(1e-3, "--fmax", help="FIRE force tolerance, eV/Å."),
    potential: str = typer.Option("original", "--potential",
                                  help="SW parameter set: original (Stillinger & Weber 1985, lambda 21, "
                                       "eps 2.1683 eV) or vink (a-Si refit, Vink et al. 2001: lambda 31.5, "
                                       "eps 1.64833 eV)."),
    anneal: Optional[list[str]] = typer.Option(None, "--anneal", metavar="T:PS",
                                               help="Plateau in the t-hold -> t-final ramp: hold T kelvin for PS "
                                                    "ps, then cool on at --quench-rate. Repeatable (descending T)."),
    relax_cell: bool = typer.Option(False, "--relax-cell/--fixed-cell",
                                    help="Final FIRE also relaxes the cell to --pressure (zero-pressure density "
                                         "of the potential) instead of keeping --density."),
    pressure: float = typer.Option(0.0, "--pressure", help="External pressure for --relax-cell, GPa."),
    single_file: bool = typer.Option(False, "--single-file", help="One multi-frame a_si.extxyz instead of one "
                                                                   "file per cell."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root; default $ATOMSMITH_CACHE_DIR "
                                                                       "or ~/.cache/atomsmith."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Regenerate every cell (overwrites the cache)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Make amorphous-Si cells (SW potential): random start, melt, cool, hold, cool (with optional anneal
    plateaus), anneal, FIRE relax (fixed cell, or the cell too with --relax-cell)."""
    from rich.console import Console

    from atomsmith.cli.errors import fail
    from atomsmith.cli.output import check_output
    from atomsmith.metrics.amorphous import amorphous_statistics, compare_to_targets
    from atomsmith.physics.asi_set import make_asi_set, protocol_key
    from atomsmith.core.files import atomic_write
    from atomsmith.structures import io

    console = Console(stderr=True)
    try:
        options = dict(density=density, start=start, t_melt=t_melt, melt_ps=melt_ps, hot_quench_rate=hot_quench_rate,
                       t_hold=t_hold, hold_ps=hold_ps, quench_rate=quench_rate, t_final=t_final, anneal_ps=anneal_ps,
                       dt=dt, friction=friction, fmax=fmax, potential=potential, anneal=anneal,
                       relax_cell=relax_cell, pressure=pressure)
        # typer's Context is click's; the source is an enum (ParameterSource.COMMANDLINE for a typed option)
        typed = {k for k in options if getattr(ctx.get_parameter_source(k), "name", None) == "COMMANDLINE"}
        config = protocol_config(preset, n_atoms, options, typed)
        if n_cells < 1:
            raise ValueError(f"--n-cells must be >= 1, got {n_cells}")
        if first_cell < 0:
            raise ValueError(f"--first-cell must be >= 0, got {first_cell}")
    except ValueError as exc:
        raise fail(str(exc)) from None
    # before any MD (a slow protocol takes hours): the directory must be writable and, without --force, the
    # files this run writes must not exist yet
    names = ["a_si.extxyz"] if single_file else [f"a_si_n{n_atoms}_seed{seed}_{i:03d}.extxyz"
                                                   for i in range(first_cell, first_cell + n_cells)]
    try:
        check_output(out, True, directory=True)
        for name in names:
            check_output(out / name, force)
    except typer.BadParameter as exc:
        raise fail(f"--out: {exc.message}") from None
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"protocol {protocol_key(config)}: {config.describe()} ({config.n_steps} MD steps per cell)")
    crystals = make_asi_set(config, n_cells, seed, cache_dir=cache_dir, use_cache=not no_cache,
                            progress=lambda msg: console.print(msg, highlight=False), first=first_cell)
    try:
        if single_file:
            paths = [io.write(out / names[0], crystals, overwrite=force)]
        else:
            paths = [io.write(out / name, c, overwrite=force) for name, c in zip(names, crystals)]
    except FileExistsError as exc:  # appeared while the cells were being made
        raise fail(str(exc)) from None
    stats = amorphous_statistics(crystals)
    summary = {"protocol": config.describe(), "protocol_key": protocol_key(config), "seed": seed,
               "first_cell": first_cell,
               "files": [p.name for p in paths], "statistics": stats.as_dict(),
               "a_si_targets": compare_to_targets(stats)}
    with atomic_write(out / "a_si_summary.json", overwrite=True) as handle:  # rewritten with the cell files
        handle.write(json.dumps(summary, indent=2))
    peaks = lambda values: " / ".join(f"{v:.2f}" for v in values)  # noqa: E731
    console.print(f"wrote {len(paths)} file(s) to {out}: density {stats.density_mean:.3f} g/cm^3, coordination "
                  f"{stats.coordination_mean:.3f} (4-fold {stats.fourfold_fraction:.1%}, 5-fold "
                  f"{stats.fivefold_fraction:.1%}), angle {stats.angle_mean:.1f} ± {stats.angle_std:.1f} deg, "
                  f"g(r) peaks {peaks(stats.gr_peaks)} Å, S(q) peaks {peaks(stats.sq_peaks)} 1/Å")


def register_on(group: typer.Typer) -> None:
    """Add ``make-asi`` to ``group`` (e.g. the ``data`` sub-app)."""
    group.command("make-asi")(make_asi)


def register(app: typer.Typer) -> None:
    """Attach ``make-asi`` to the ``data`` group if registered, else create a ``data`` group holding it."""
    for info in app.registered_groups:
        if info.name == "data" and info.typer_instance is not None:
            register_on(info.typer_instance)
            return
    group = typer.Typer(help="Datasets.", no_args_is_help=True)
    register_on(group)
    app.add_typer(group, name="data")
