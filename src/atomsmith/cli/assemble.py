"""``atomsmith assemble --task a-si-64 --simulations 32 --out best.extxyz --seed N``: build structures atom by atom
with Gumbel MuZero search (mctx) over the assembly environment and write the best finished structure.

A progress bar shows the moves played and the best normalised reward found so far (every finished structure in
every search tree counts as one objective evaluation).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer


def assemble(
    task: str = typer.Option("a-si-64", "--task", help="Assembly task: a-si-64, a-si-8, perov-heat-ref."),
    simulations: int = typer.Option(32, "--simulations", min=2, help="Search simulations per move."),
    out: Path = typer.Option(Path("best.extxyz"), "--out", "-o", help="Where to write the best structure."),
    fmt: str = typer.Option(None, "--format", "-f", help="extxyz, cif or poscar (default: from OUT)."),
    seed: int = typer.Option(0, "--seed", help="PRNG seed (searches are reproducible for a fixed seed)."),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes played in parallel."),
    considered: int = typer.Option(16, "--considered", min=1, help="Root actions considered (Gumbel top-k)."),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny network (fast to compile; for smoke tests)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
    progress: bool = typer.Option(True, help="Show a progress bar with the best reward so far."),
) -> None:
    """Assemble a structure with MCTS and write the best one found (exit code 1 if no episode finished).

    Examples:

      atomsmith assemble --task a-si-64 --simulations 32 --out best.extxyz

      atomsmith assemble --task perov-heat-ref --episodes 4 --out best.cif
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from atomsmith.api.assembly import NothingAssembledError, assemble as run, n_atoms_of
    from atomsmith.cli.output import check_output, output_plan, print_summary
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.structures.io import write

    console = Console(stderr=True)
    out_format, directory, _ = output_plan(out, fmt, 1)
    if directory:
        raise typer.BadParameter("give a file name (.extxyz, .cif, .vasp) for the best structure", param_hint="--out")
    check_output(out, force)
    try:
        total = n_atoms_of(task)
    except InvalidRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task") from None
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]assemble {task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("evals {task.fields[evals]}  best reward {task.fields[best]}"), TimeElapsedColumn(),
                  console=console, disable=not progress) as bar_group:
        bar = bar_group.add_task("assemble", total=total, name=task, evals=0, best="-")

        def on_move(move: int, evals: int, best: float) -> None:
            bar_group.update(bar, completed=min(move, total), evals=evals,
                             best=f"{best:.4f}" if best > -float("inf") else "-")

        try:
            crystal = run(task, simulations=simulations, seed=seed, episodes=episodes, considered=considered,
                          tiny=tiny, on_move=on_move)
        except NothingAssembledError as exc:
            console.print(f"[red]{exc}; nothing written[/red]")
            raise typer.Exit(1) from None
    write(out, [crystal], format=out_format, overwrite=force)
    seconds = time.perf_counter() - t0
    print_summary(f"atomsmith assemble: {task}", [
        ("best normalised reward", f"{crystal.properties['reward']:.4f}"),
        ("objective of the best structure", f"{crystal.properties['objective']:.4f}"),
        ("objective evaluations", str(crystal.properties["evaluations"])),
        ("episodes x simulations", f"{episodes} x {simulations}"),
        ("time (incl. compilation)", f"{seconds:.1f} s"),
        ("output", f"{out} ({out_format})")], console)


def register(app: typer.Typer) -> None:
    app.command("assemble")(assemble)
