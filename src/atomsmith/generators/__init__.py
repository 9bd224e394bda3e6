"""Generative models. Each implements :class:`Generator` (``sample(key, n, ...) -> list[Crystal]``)."""

from atomsmith.generators.protocol import FixedAtoms, Generator, InvalidRequestError

__all__ = ["FixedAtoms", "Generator", "InvalidRequestError"]
