"""The ``atomsmith`` command line: :data:`app` (typer) in :mod:`~atomsmith.cli.main`, one module per command
group; :mod:`~atomsmith.cli.output` and :mod:`~atomsmith.cli.errors` hold what the commands share."""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.cli.main": ("app",),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
