"""``atomsmith assemble --task a-si-64 --simulations 32 --out best.extxyz --seed N``: build structures atom by atom
with Gumbel MuZero search (mctx) over the assembly environment and write the best finished structure.

A progress bar shows the moves played and the best normalised reward found so far (every finished structure in
every search tree counts as one objective evaluation).
"""

from __future__ import annotations

from pathlib import Path

import typer


def assemble(
    task: str = typer.Option("a-si-64", "--task", help="Assembly task: a-si-64, a-si-8, perov-heat-ref."),
    simulations: int = typer.Option(32, "--simulations", min=2, help="Search simulations per move."),
    out: Path = typer.Option(Path("best.extxyz"), "--out", "-o", help="Where to write the best structure."),
    seed: int = typer.Option(0, "--seed", help="PRNG seed (searches are reproducible for a fixed seed)."),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes played in parallel."),
    considered: int = typer.Option(16, "--considered", min=1, help="Root actions considered (Gumbel top-k)."),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny network (fast to compile; for smoke tests)."),
) -> None:
    """Assemble a structure with MCTS and write the best one found."""
    import jax
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from atomsmith.assembly import NetworkConfig, SearchConfig, UnknownTaskError, init_network, make_env, make_task
    from atomsmith.assembly.selfplay import run_episodes
    from atomsmith.structures.io import write

    console = Console()
    try:
        spec = make_task(task)
    except UnknownTaskError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task") from exc
    env = make_env(spec)
    net = NetworkConfig.tiny() if tiny else NetworkConfig()
    params = init_network(spec, net, jax.random.PRNGKey(seed), env.reset())
    config = SearchConfig(num_simulations=simulations, max_num_considered_actions=min(considered, simulations))
    with Progress(TextColumn("[bold]assemble {task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("evals {task.fields[evals]}  best reward {task.fields[best]}"), TimeElapsedColumn(),
                  console=console) as progress:
        bar = progress.add_task("assemble", total=spec.n_atoms, name=spec.name, evals=0, best="-")

        def on_move(move: int, evals: int, best: float) -> None:
            progress.update(bar, completed=min(move, spec.n_atoms), evals=evals,
                            best=f"{best:.4f}" if best > -float("inf") else "-")

        result = run_episodes(env, net, params, config, jax.random.PRNGKey(seed + 1), batch=episodes,
                              on_move=on_move)
    if result.best_state is None or not bool(result.best_state.complete):
        console.print("[red]no episode completed the composition (dead ends only); nothing written")
        raise typer.Exit(1)
    crystal = env.to_crystal(result.best_state)
    write(out, [crystal])
    console.print(f"best reward {result.best_return:.4f} (objective {float(result.best_state.objective_value):.4f}) "
                  f"after {result.evaluations} evaluations; wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("assemble")(assemble)
