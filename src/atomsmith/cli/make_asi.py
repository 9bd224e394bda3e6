"""``atomsmith data make-asi``: amorphous silicon cells by Stillinger-Weber melt-quench, cached, written as extxyz.

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


def make_asi(
    n_atoms: int = typer.Option(64, "--n-atoms", help="Atoms per cubic cell."),
    n_cells: int = typer.Option(4, "--n-cells", help="Number of cells (cell i of a seed never changes)."),
    out: Path = typer.Option(..., "--out", help="Output directory for the extxyz files."),
    seed: int = typer.Option(0, "--seed", help="Base random seed."),
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
    single_file: bool = typer.Option(False, "--single-file", help="One multi-frame a_si.extxyz instead of one "
                                                                   "file per cell."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root; default $ATOMSMITH_CACHE_DIR "
                                                                       "or ~/.cache/atomsmith."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Regenerate every cell (overwrites the cache)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Make amorphous-Si cells (SW potential): random start, melt, cool, hold, cool, anneal, FIRE relax."""
    from rich.console import Console

    from atomsmith.metrics.amorphous import amorphous_statistics
    from atomsmith.physics.asi_set import make_asi_set, protocol_key
    from atomsmith.physics.melt_quench import MeltQuenchConfig
    from atomsmith.structures import io

    console = Console(stderr=True)
    try:
        config = MeltQuenchConfig(n_atoms=n_atoms, density=density, start=start, t_melt=t_melt, melt_ps=melt_ps,
                                  hot_quench_rate=hot_quench_rate, t_hold=t_hold, hold_ps=hold_ps,
                                  quench_rate=quench_rate, t_final=t_final, anneal_ps=anneal_ps, dt=dt,
                                  friction=friction, fmax=fmax)
        if n_cells < 1:
            raise ValueError(f"--n-cells must be >= 1, got {n_cells}")
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"protocol {protocol_key(config)}: {config.describe()}")
    crystals = make_asi_set(config, n_cells, seed, cache_dir=cache_dir, use_cache=not no_cache,
                            progress=lambda msg: console.print(msg, highlight=False))
    try:
        if single_file:
            paths = [io.write(out / "a_si.extxyz", crystals, overwrite=force)]
        else:
            paths = [io.write(out / f"a_si_n{n_atoms}_seed{seed}_{i:03d}.extxyz", c, overwrite=force)
                     for i, c in enumerate(crystals)]
    except FileExistsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    stats = amorphous_statistics(crystals)
    summary = {"protocol": config.describe(), "protocol_key": protocol_key(config), "seed": seed,
               "files": [p.name for p in paths], "statistics": stats.as_dict()}
    with io.atomic_write(out / "a_si_summary.json", overwrite=True) as handle:  # rewritten with the cell files
        handle.write(json.dumps(summary, indent=2))
    console.print(f"wrote {len(paths)} file(s) to {out}: density {stats.density_mean:.3f} g/cm^3, coordination "
                  f"{stats.coordination_mean:.3f}, angle {stats.angle_mean:.1f} ± {stats.angle_std:.1f} deg, "
                  f"first g(r) peak {stats.first_peak:.3f} Å")


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
