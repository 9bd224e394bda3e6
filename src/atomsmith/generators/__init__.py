"""Generative models. Each implements :class:`Generator` (``sample(key, n, ...) -> list[Crystal]``) through
:class:`GeneratorBase`, which checks every request against the model's declared :class:`Capabilities`.

Sub-packages: ``diffusion`` (crystals), ``gram_vae`` and ``eq_vae`` (local environments), ``environments`` (what the
two environment VAEs share; they depend on it, never on each other).
"""

from atomsmith.generators.protocol import Capabilities, FixedAtoms, FixedNeighbors, Generator, GeneratorBase, \
    InvalidRequestError, UnsupportedRequestError

__all__ = ["Capabilities", "FixedAtoms", "FixedNeighbors", "Generator", "GeneratorBase", "InvalidRequestError",
           "UnsupportedRequestError"]
