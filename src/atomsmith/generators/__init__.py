"""Generative models. Each implements :class:`Generator` (``sample(key, n, ...) -> list[Crystal]``)."""

from atomsmith.generators.protocol import Generator

__all__ = ["Generator"]
