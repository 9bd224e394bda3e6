"""Public names of a package resolved on first use, so that importing the package stays cheap.

``atomsmith.graphs`` lists ``GraphBatch`` (JAX) beside ``neighbor_list`` (NumPy): with the names resolved lazily,
``import atomsmith.graphs.neighbors`` still imports no JAX, while ``from atomsmith.graphs import GraphBatch`` and
``atomsmith.graphs.GraphBatch`` work as if the package imported it. The package keeps its explicit ``__all__``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: each name listed in ``exports`` (the module defining them ->
    names) is imported from its module when first asked for; any other name raises :class:`AttributeError` (so
    that ``from package import submodule`` still imports the submodule)."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in home:
            return getattr(import_module(home[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
