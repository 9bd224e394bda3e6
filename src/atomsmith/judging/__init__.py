"""An independent physical judge of generated structures: relaxation with a universal interatomic potential
(CHGNet, the optional ``atomsmith[judge]`` extra), MatterGen's RMSD, matching and volume change, phonon stability by
finite displacements (phonopy), and comparison with a reference split relaxed the same way.

``atomsmith judge SAMPLES`` and :func:`atomsmith.judge` call :func:`~atomsmith.judging.core.judge`. Modules:
:mod:`~atomsmith.judging.core` (relaxation and the per-structure record), :mod:`~atomsmith.judging.metrics` (RMSD,
matching, summaries; pymatgen only), :mod:`~atomsmith.judging.phonons` (phonopy with any force function),
:mod:`~atomsmith.judging.extra` (the check for the extra).
"""

from atomsmith.judging.core import judge
from atomsmith.judging.extra import MissingExtraError, require_extra

__all__ = ["MissingExtraError", "judge", "require_extra"]
