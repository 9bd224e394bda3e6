"""One-line errors for every command (the promise of ``atomsmith --help``: exit code 2 with one ``error: ...`` line).

typer prints usage errors as a rich panel of 5-11 lines wrapped at the terminal width, and foreign messages
(pymatgen's, numpy's) may hold newlines of their own. :class:`OneLineErrorGroup`, the class of the root ``atomsmith``
group, catches every usage error of every (sub)command and prints it as one line on stderr instead:

    error: Invalid value for '--out': samples.extxyz exists; pass --force to overwrite it

The project's typed input errors (structure, checkpoint, model, request and dataset errors) that a command did not
turn into a usage error itself are reported the same way, so that no bad input ends in a traceback. Anything else
(a bug) still raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 vendors click; older typer uses the click package (pyproject allows typer >= 0.12)
    from typer import _click
except ImportError:  # pragma: no cover - depends on the installed typer
    import click as _click

#: Exit code of bad usage or input (``atomsmith --help``).
USAGE_EXIT_CODE = 2
#: Raised for a group called without arguments; shown as the help text (absent from older click: catches nothing).
_NO_ARGS_IS_HELP = getattr(_click.exceptions, "NoArgsIsHelpError", ())


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def format_usage_error(exc: _click.exceptions.ClickException) -> str:
    """The one-line message of a click/typer error: ``error: <option>: <message>`` for the commands' own
    ``BadParameter(message, param_hint=...)``, else click's message (plus where to find help for errors of the
    command line itself, such as an unknown option)."""
    hint = getattr(exc, "param_hint", None)
    if isinstance(exc, _click.exceptions.BadParameter) and not isinstance(exc, _click.exceptions.MissingParameter) \
            and (hint is None or isinstance(hint, str)) and getattr(exc, "param", None) is None:
        return f"error: {one_line(f'{hint}: {exc.message}' if hint else exc.message)}"
    text = one_line(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    command_line = not isinstance(exc, _click.exceptions.BadParameter) or \
        isinstance(exc, _click.exceptions.MissingParameter)
    if isinstance(exc, _click.exceptions.UsageError) and command_line and ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return f"error: {text}"


def input_error_types() -> tuple[type[BaseException], ...]:
    """The project's exception types that mean bad input, not a bug (imported only when an error occurs)."""
    from atomsmith.generators.protocol import InvalidRequestError
    from atomsmith.guidance.requests import UnknownPropertyError
    from atomsmith.pretrained import UnknownModelError, WrongModelKindError
    from atomsmith.structures.errors import StructureError
    from atomsmith.training.checkpoint import CheckpointError

    types: list[type[BaseException]] = [StructureError, CheckpointError, UnknownModelError, WrongModelKindError,
                                        InvalidRequestError, UnknownPropertyError]
    with contextlib.suppress(ImportError):
        from atomsmith.datasets.errors import DatasetError

        types.append(DatasetError)
    return tuple(types)


def sample_input_error_types() -> tuple[type[BaseException], ...]:
    """What reading and scoring a user's sample files raises for bad input (``evaluate``, ``judge``: one line, exit
    code 2) rather than for a bug (full traceback): deliberately broad, since the readers and scorers behind them
    (pymatgen, matminer, ase) raise plain ``ValueError``, ``KeyError``, ``RuntimeError`` and ``OSError``."""
    from atomsmith.structures.errors import StructureError

    types: list[type[BaseException]] = [StructureError, ValueError, KeyError, RuntimeError, OSError]
    try:
        from atomsmith.datasets.errors import DatasetError

        types.append(DatasetError)
    except ImportError:
        pass
    return tuple(types)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` (one line) on stderr and return the :class:`typer.Exit` (code 2) to raise."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(USAGE_EXIT_CODE)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Report usage errors and the project's typed input errors raised inside as one line, exit code 2."""
    try:
        yield
    except _NO_ARGS_IS_HELP:
        raise  # ``atomsmith`` / ``atomsmith train`` alone: the help text, as typer shows it
    except _click.exceptions.ClickException as exc:
        typer.echo(format_usage_error(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if isinstance(exc, (typer.Exit, typer.Abort)) or not isinstance(exc, input_error_types()):
            raise
        raise fail(str(exc)) from None


class OneLineErrorGroup(TyperGroup):
    """The root group: parsing and every (sub)command run inside :func:`one_line_errors`."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001, ANN201 - click's signature
        with one_line_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        with one_line_errors():
            return super().invoke(ctx)
