"""Structural and compositional validity, as defined by CDVAE (Xie et al. 2022, ``scripts/eval_utils.py``).

* **Structural validity** (:func:`structure_validity`): every pair of *distinct* atoms is at least 0.5 Å apart
  (the shortest distance over all periodic images) and the cell volume is at least 0.1 Å^3. As in CDVAE
  (pymatgen ``distance_matrix`` with a padded diagonal) the distance of an atom to its own periodic images, i.e.
  a lattice vector shorter than 0.5 Å, is *not* checked. We enumerate images exactly with the shared neighbour
  list instead of pymatgen's minimum-image search; for any cell that pymatgen handles the answers agree.
* **Compositional validity** (:func:`smact_validity`): SMACT charge neutrality plus the Pauling
  electronegativity test, with CDVAE's shortcuts: a single element is valid, a composition of metals only is
  valid (an alloy). Otherwise the composition (counts divided by their gcd, elements sorted by atomic number) is
  valid if *some* assignment of oxidation states, one per element, is charge neutral and passes the Pauling test.

Deviations from CDVAE, all forced by newer SMACT releases (SMACT 2.x was current when CDVAE was published):

* SMACT >= 3 changed ``Element.oxidation_states`` to the ICSD-2024 list; we use
  ``Element.oxidation_states_smact14``, which is the list CDVAE's SMACT used.
* SMACT >= 3 changed ``neutral_ratios`` to return a list and its Pauling test to fail elements without an
  electronegativity. We therefore evaluate both tests here on SMACT's data: neutrality is ``sum(q_i n_i) == 0``
  (what ``neutral_ratios(ox, stoichs=[(n_i,)...])`` tested), and the Pauling test scans element pairs in order
  like SMACT 2.x did, where reaching a cation-anion pair with a missing electronegativity raised ``TypeError``,
  which CDVAE caught and counted as *passing*.
* Like DiffCSP's copy of the function, compositions with more than 1e7 oxidation-state combinations are
  invalid (CDVAE would enumerate them for hours); no perov_5, carbon or mp_20 composition comes near this.
* Elements SMACT has no data for (Z > 103) make a composition invalid (CDVAE would raise).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np

from atomsmith.structures.crystal import Crystal

#: Minimum distance (Å) between distinct atoms for a structure to be valid (CDVAE).
MIN_PAIR_DISTANCE = 0.5
#: Minimum cell volume (Å^3) for a structure to be valid (CDVAE).
MIN_CELL_VOLUME = 0.1
#: Compositions with more oxidation-state combinations than this are invalid (DiffCSP's guard).
MAX_OXIDATION_COMBINATIONS = 10_000_000


def reduced_composition(numbers: Sequence[int] | np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Elements sorted by atomic number and their counts divided by the gcd of the counts.

    Args:
      numbers: ``[n_atoms]`` atomic numbers.
    Returns:
      ``(elements, counts)``, e.g. ``((8, 22, 56), (3, 1, 1))`` for BaTiO3.
    """
    values, counts = np.unique(np.asarray(numbers, np.int64), return_counts=True)
    if values.size == 0:
        raise ValueError("empty composition: a structure needs at least one atom")
    g = functools.reduce(math.gcd, counts.tolist())
    return tuple(int(v) for v in values), tuple(int(c) // g for c in counts)


@functools.lru_cache(maxsize=None)
def _element_data(z: int) -> tuple[str, tuple[int, ...], float | None, bool] | None:
    """(symbol, SMACT-2014 oxidation states, Pauling electronegativity, is_metal) or None without SMACT data."""
    import smact
    from ase.data import chemical_symbols

    symbol = chemical_symbols[z]
    try:
        element = smact.Element(symbol)
    except (KeyError, NameError, ValueError):
        return None
    states = getattr(element, "oxidation_states_smact14", None)
    if states is None and not hasattr(element, "oxidation_states_smact14"):  # SMACT 2.x: the default list
        states = element.oxidation_states
    return symbol, tuple(states or ()), element.pauling_eneg, symbol in smact.metals


def _pauling_ok(ox_states: Sequence[int], enegs: Sequence[float | None]) -> bool:
    """SMACT 2.x ``eneg_states_test`` with CDVAE's ``except TypeError: True`` for missing electronegativities."""
    for (ox1, e1), (ox2, e2) in itertools.combinations(zip(ox_states, enegs), 2):
        if ox1 > 0 and ox2 < 0:
            if e1 is None or e2 is None:
                return True
            if e1 >= e2:
                return False
        elif ox1 < 0 and ox2 > 0:
            if e1 is None or e2 is None:
                return True
            if e1 <= e2:
                return False
    return True


@functools.lru_cache(maxsize=65536)
def _smact_valid_reduced(elements: tuple[int, ...], counts: tuple[int, ...]) -> bool:
    data = [_element_data(z) for z in elements]
    if any(d is None for d in data):
        return False
    if len(elements) == 1:
        return True
    if all(d[3] for d in data):  # all metals: an alloy
        return True
    ox_combos = [d[1] for d in data]
    enegs = [d[2] for d in data]
    if math.prod(len(c) for c in ox_combos) > MAX_OXIDATION_COMBINATIONS:
        return False
    for ox_states in itertools.product(*ox_combos):
        if sum(q * n for q, n in zip(ox_states, counts)) == 0 and _pauling_ok(ox_states, enegs):
            return True
    return False


def smact_validity(numbers: Sequence[int] | np.ndarray) -> bool:
    """CDVAE's compositional validity of a structure with atomic numbers ``numbers`` (``[n_atoms]``).

    Returns False for an empty composition or elements without SMACT data.
    """
    numbers = np.asarray(numbers, np.int64)
    if numbers.size == 0 or np.any((numbers < 1) | (numbers > 118)):
        return False
    return _smact_valid_reduced(*reduced_composition(numbers))


def min_pair_distance(crystal: Crystal, cutoff: float = MIN_PAIR_DISTANCE) -> float:
    """Shortest distance (Å) between two distinct atoms over all periodic images, or ``inf`` if >= ``cutoff``.

    Self-image distances (an atom and its own translate) are ignored, as in CDVAE.
    """
    from atomsmith.graphs.neighbors import neighbor_list

    graph = neighbor_list(crystal, cutoff=cutoff)
    distinct = graph.senders != graph.receivers
    if not np.any(distinct):
        return float("inf")
    d = graph.distances(crystal)[distinct]
    return float(d.min())


def structure_validity(crystal: Crystal, min_distance: float = MIN_PAIR_DISTANCE,
                       min_volume: float = MIN_CELL_VOLUME) -> bool:
    """CDVAE's structural validity: distinct atoms >= ``min_distance`` Å apart and volume >= ``min_volume`` Å^3."""
    if crystal.volume < min_volume:
        return False
    return min_pair_distance(crystal, min_distance) >= min_distance
