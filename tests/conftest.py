"""Suite-wide test settings.

Property-based tests (hypothesis) are derandomized, so that every CI run checks the same examples and a failure
reproduces; run ``HYPOTHESIS_PROFILE=explore pytest ...`` to draw fresh random examples while hunting for bugs.
"""

import os

from hypothesis import settings

settings.register_profile("atomsmith", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "atomsmith"))
