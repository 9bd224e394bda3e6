"""The one generator protocol: every generative model in atomsmith offers the same ``sample`` verb.

The CLI, notebooks and experiments talk to this protocol, never to model internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax

from atomsmith.structures.crystal import Crystal


class InvalidRequestError(ValueError):
    """A request a generator cannot serve (wrong environment size, k out of range, unknown sampling source, ...)."""


@runtime_checkable
class Generator(Protocol):
    """A model that draws crystals.

    ``sample(key, n, *, conditions=None, guidance=None, fixed=None) -> list[Crystal]``

    Args:
      key: a ``jax.random`` key; the same key (and arguments) gives the same structures.
      n: number of structures.
      conditions: model-specific conditioning. Generators that support structure prediction accept
        ``{"composition": ...}`` (atomic numbers per structure, or one composition for all).
      guidance: a sequence of shared objective objects (property targets, energies, validity); models that
        do not support guidance raise ``NotImplementedError`` when it is given.
      fixed: which atoms are held (infilling); same rule as ``guidance``.
    """

    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None,
               guidance: Sequence[Any] | None = None, fixed: Any = None) -> list[Crystal]:
        ...
