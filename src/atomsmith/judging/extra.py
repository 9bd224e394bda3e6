"""The optional ``judge`` extra (CHGNet, phonopy): one check with one message naming the extra."""

from __future__ import annotations

from importlib.util import find_spec

#: What ``pip install 'atomsmith[judge]'`` brings, by import name.
JUDGE_MODULES = ("chgnet", "phonopy")


class MissingExtraError(ImportError):
    """An optional dependency of ``atomsmith[judge]`` is not installed (the message says how to install it)."""


def require_extra(*modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every module in ``modules`` (default: all of the extra) imports."""
    missing = [name for name in (modules or JUDGE_MODULES) if find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"the judge needs the optional extra 'judge' ({', '.join(missing)} not installed): "
                                "pip install 'atomsmith[judge]'")
