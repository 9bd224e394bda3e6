"""Moved to :mod:`atomsmith.generators.environments.interpolation`; this name stays for existing imports (notebooks and
scripts written before issue 21) and is the very same module object."""

import sys

from atomsmith.generators.environments import interpolation as _module

sys.modules[__name__] = _module
