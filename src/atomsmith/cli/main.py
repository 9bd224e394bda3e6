"""The ``atomsmith`` command line: one typer app, one module per command group (registered below)."""

from __future__ import annotations

import typer

from atomsmith.cli.errors import OneLineErrorGroup

app = typer.Typer(
    name="atomsmith",
    cls=OneLineErrorGroup,  # every usage or input error: one line on stderr, exit code 2
    help="Generative inverse design of crystalline and amorphous materials (JAX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main() -> None:
    """Generative inverse design of crystalline and amorphous materials (JAX).

    Every command takes models by shipped name (perov-5, perov-5-cfg, a-si, carbon-24, gram-vae, eq-vae,
    perov-5-heat-ref) or checkpoint path (--model/-m), and shares the flags -n, --seed, --out/-o, --format/-f,
    --target/-t and --force where they apply. Outputs are written atomically and never overwritten without --force.

    Exit codes: 0 success; 2 bad usage or input (unknown option or model, unreadable or invalid file, existing
    output without --force, a request the model cannot serve); 1 the work ran but produced nothing usable (e.g. no
    assembly episode finished).

    Examples:

      atomsmith sample -n 10 --out samples.extxyz

      atomsmith sample -n 10 --target heat_ref=0.6 --out guided.extxyz

      atomsmith infill --model perov-5 --fixed partial.cif --n-free 1 --out completed.extxyz

    Several machines: set ATOMSMITH_COORDINATOR=host:port, ATOMSMITH_NUM_PROCESSES and ATOMSMITH_PROCESS_ID and
    start the same command on each; training then runs data parallel over every process's devices.
    """
    # An explicit callback keeps typer from collapsing the app into its single command when only one is registered.
    import os

    if os.environ.get("ATOMSMITH_COORDINATOR"):  # multi-host: join before any JAX work (atomsmith.parallel)
        from atomsmith import parallel

        try:
            parallel.initialize()
        except parallel.DataParallelError as exc:
            raise typer.BadParameter(str(exc), param_hint="ATOMSMITH_COORDINATOR") from None


def _register() -> None:
    # Each command module exposes ``register(app)``. Imports stay inside so that ``atomsmith --help`` is fast.
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"atomsmith.cli.{name}").register(app)


#: Command modules under ``atomsmith/cli``; each defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: list[str] = ["evaluate", "data", "train", "sample", "predict", "make_asi", "interpolate", "infill",
                               "assemble", "judge"]

_register()

if __name__ == "__main__":
    app()
