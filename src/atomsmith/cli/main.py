"""The ``atomsmith`` command line: one typer app, one module per command group (registered below)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="atomsmith",
    help="Generative inverse design of crystalline and amorphous materials (JAX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main() -> None:
    """Generative inverse design of crystalline and amorphous materials (JAX)."""
    # An explicit callback keeps typer from collapsing the app into its single command when only one is registered.


def _register() -> None:
    # Each command module exposes ``register(app)``. Imports stay inside so that ``atomsmith --help`` is fast.
    from importlib import import_module

    for name in COMMAND_MODULES:
        import_module(f"atomsmith.cli.{name}").register(app)


#: Command modules under ``atomsmith/cli``; each defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: list[str] = ["evaluate", "data", "train", "sample", "predict", "make_asi", "interpolate", "infill",
                               "assemble"]

_register()

if __name__ == "__main__":
    app()
