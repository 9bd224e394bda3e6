"""A jit-compatible periodic neighbour list with fixed capacity, for use inside samplers where atoms move.

Allocate outside, update inside (as jax-md's ``partition.neighbor_list``): the caller fixes ``max_edges`` and the
image range on the host; inside ``jit`` the function returns exactly ``max_edges`` edges with a mask and an
``overflow`` flag that says the capacity was too small (then rebuild with a larger one on the host).
Periodic images are enumerated explicitly, so it is exact for small and skewed cells, where minimum-image
conventions are wrong.

How it works (static shapes throughout; ``n`` atoms, ``C`` candidate images per pair, ``E = max_edges``):

1. Fractional differences of the wrapped coordinates ``d_ij = w_j - w_i`` and their Cartesian form ``d_ij L``
   (three ``[n, n]`` arrays), the candidate image vectors ``t_c = S_c L`` (``[C, 3]``), then
   ``|d_ij L + t_c|^2 < cutoff^2`` in one fused loop over ``[n, n, C]`` that packs the ``C`` answers of a pair into
   ``ceil(C / 32)`` 32-bit words. Nothing of size ``[n, n, C, 3]`` exists, and the ``[n, n, C]`` booleans never
   reach memory.
2. Edges are numbered pair by pair (receiver-major, then sender, then image): a running count over the ``n^2``
   per-pair popcounts, a binary search per output slot for its pair, and a bit search in the pair's words for its
   image. The work beyond step 1 is ``O(n^2 + E log n)``, not ``O(n^2 C)``.

Candidate images: by default every offset in ``[-n_images, n_images]`` (the "grid"). With ``window`` set (what
:meth:`NeighborSpec.for_lattice` does whenever it is smaller), each pair only tries the offsets within ``window``
of its nearest image ``-round(d_ij)``; for cells wider than twice the cutoff that is one image per pair instead of
27 (the minimum-image convention, proven exact here rather than assumed). Images outside the grid are never
returned, so the edge set is the grid's whenever the window is wide enough for the cell, which is checked inside
``jit``: a cell too thin for its window sets ``overflow`` (rebuild the spec on the host).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.graphs.neighbors import image_counts

_WORD_BITS = 32
# a window built on the host covers cells up to this much (relative) thicker in cutoff/plane-spacing terms than
# its lattice, so float32 rounding of the in-jit check never flags the spec's own lattice
_WINDOW_SLACK = 1e-4


class JaxNeighbors(NamedTuple):
    """Fixed-size edge set. Shapes: ``[max_edges]`` and ``[max_edges, 3]``; ``overflow`` is a scalar bool."""

    senders: jax.Array
    receivers: jax.Array
    shifts: jax.Array  # float, image offsets relative to the *given* (unwrapped) fractional coordinates
    mask: jax.Array
    overflow: jax.Array
    count: jax.Array


def _offset_grid(half_widths) -> np.ndarray:
    """All integer offsets with ``|S_k| <= half_widths[k]``, ``[prod(2 h + 1), 3]``, in lexicographic order."""
    grids = [np.arange(-c, c + 1) for c in half_widths]
    return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)


@dataclasses.dataclass(frozen=True)
class NeighborSpec:
    """Static (host-side) choices for :func:`neighbor_list_jax`.

    Attributes:
      cutoff: Å.
      max_edges: capacity of the edge arrays.
      n_images: largest |image offset| enumerated along each lattice vector (relative to wrapped coordinates).
      window: optional; if set, a pair only tries offsets within ``window[k]`` of its nearest image along lattice
        vector k (same edges as the full grid while ``cutoff |b_k| <= window[k] + 1/2`` for the reciprocal
        vectors ``b_k``, which is checked inside ``jit``; violations set ``overflow``). ``(0, 0, 0)`` is the
        minimum-image convention. :meth:`for_lattice` sets it when it is smaller than the grid.
    """

    cutoff: float
    max_edges: int
    n_images: tuple[int, int, int]
    window: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        # normalise to hashable tuples of ints (the spec is a static jit argument)
        object.__setattr__(self, "n_images", tuple(int(c) for c in self.n_images))
        if self.window is not None:
            object.__setattr__(self, "window", tuple(int(c) for c in self.window))
        if not self.cutoff > 0:
            raise ValueError(f"NeighborSpec: cutoff must be positive, got {self.cutoff}")
        if self.max_edges < 0:
            raise ValueError(f"NeighborSpec: max_edges must be >= 0, got {self.max_edges}")
        if len(self.n_images) != 3 or min(self.n_images) < 0:
            raise ValueError(f"NeighborSpec: n_images must be three integers >= 0, got {self.n_images}")
        if self.window is not None and (len(self.window) != 3 or min(self.window) < 0):
            raise ValueError(f"NeighborSpec: window must be None or three integers >= 0, got {self.window}")

    @classmethod
    def for_lattice(cls, lattice: np.ndarray, cutoff: float, max_edges: int, margin: float = 0.0) -> NeighborSpec:
        """Image range large enough for ``lattice`` (and cells up to ``margin`` fractionally thinner), with the
        smallest exact ``window`` when that tries fewer images per pair than the grid."""
        thinner = np.asarray(lattice, np.float64) / (1.0 + margin)
        counts = tuple(int(c) for c in image_counts(thinner, cutoff))
        reach = cutoff * np.linalg.norm(np.linalg.inv(thinner).T, axis=1) * (1.0 + _WINDOW_SLACK)  # cutoff |b_k|
        window = tuple(int(w) for w in np.maximum(np.ceil(reach + 0.5) - 1, 0))
        if np.prod([2 * w + 1 for w in window]) >= np.prod([2 * c + 1 for c in counts]):
            window = None
        return cls(float(cutoff), int(max_edges), counts, window)

    def shift_grid(self) -> np.ndarray:
        """The full image grid ``[prod(2 n_images + 1), 3]`` float32, lexicographic (the edge order within a pair)."""
        return _offset_grid(self.n_images).astype(np.float32)

    def candidates(self) -> np.ndarray:
        """Offsets tried per pair, ``[C, 3]`` int: the grid, or the window around the pair's nearest image."""
        return _offset_grid(self.n_images if self.window is None else self.window)


def _word_layout(n_candidates: int) -> tuple[int, int]:
    """``(words, bits_per_word)`` packing ``n_candidates`` flags per pair into as few 32-bit words as possible."""
    words = max(1, -(-n_candidates // _WORD_BITS))
    return words, -(-n_candidates // words)


def _select_bit(word: jax.Array, rank: jax.Array, n_bits: int) -> jax.Array:
    """Position of the set bit of rank ``rank`` (0-based, from the least significant) in each uint32 ``word``.

    Binary search on popcounts of the low half of the remaining range; ``word`` must have more than ``rank`` set
    bits below ``n_bits``.
    """
    pos = jnp.zeros(word.shape, jnp.uint32)
    rank = rank.astype(jnp.uint32)
    width = 1 << max(n_bits - 1, 0).bit_length()
    while width > 1:
        width //= 2
        low = jax.lax.shift_right_logical(word, pos) & jnp.uint32((1 << width) - 1)
        below = jax.lax.population_count(low)
        skip = rank >= below
        pos = jnp.where(skip, pos + jnp.uint32(width), pos)
        rank = jnp.where(skip, rank - below, rank)
    return pos.astype(jnp.int32)


def _reciprocal_norms(lattice: jax.Array) -> jax.Array:
    """``|b_k|`` (1/Å) of the reciprocal vectors (``a_i . b_k = delta_ik``): ``|a_{k+1} x a_{k+2}| / |det L|``,
    i.e. one over the lattice-plane spacings. Cross products rather than a LAPACK inverse: no custom call in jit."""
    cross = jnp.stack([jnp.cross(lattice[(k + 1) % 3], lattice[(k + 2) % 3]) for k in range(3)])
    return jnp.linalg.norm(cross, axis=1) / jnp.abs(jnp.sum(lattice[0] * cross[0]))


def _empty(spec: NeighborSpec, dtype) -> JaxNeighbors:
    zeros = jnp.zeros((spec.max_edges,), jnp.int32)
    return JaxNeighbors(zeros, zeros, jnp.zeros((spec.max_edges, 3), dtype), jnp.zeros((spec.max_edges,), bool),
                        jnp.asarray(False), jnp.asarray(0, jnp.int32))


@functools.partial(jax.jit, static_argnames=("spec",))
def neighbor_list_jax(frac_coords: jax.Array, lattice: jax.Array, spec: NeighborSpec,
                      atom_mask: jax.Array | None = None) -> JaxNeighbors:
    """Edges (i <- j, image S) with ``|(f_j - f_i + S) L| < cutoff``, sorted by receiver i, then sender j, then S.

    The images are ``S = S' - floor(f_j) + floor(f_i)`` with ``S'`` in the grid ``|S'_k| <= spec.n_images[k]``
    (offsets between the wrapped coordinates); an atom's zero-offset edge to itself is excluded, its other
    images are not.

    Args:
      frac_coords: ``[n, 3]`` fractional coordinates (need not be wrapped).
      lattice: ``[3, 3]`` rows in Å.
      spec: static capacity and image range (:class:`NeighborSpec`).
      atom_mask: ``[n]`` bool, False for padding atoms (they get no edges).
    Returns:
      :class:`JaxNeighbors`; edge vectors are ``pos[s] - pos[r] + shifts @ lattice`` with ``pos = frac @ lattice``.
      Unused slots have mask False and point from atom 0 to itself with zero shift. ``count`` is the number of
      edges found (may exceed ``max_edges``); ``overflow`` is ``count > max_edges``, or, for a spec with a
      ``window``, a cell too thin for it. No gradient flows through the list (recompute edge vectors from
      ``frac_coords`` and ``lattice`` for forces, stresses and guidance). Jitted with ``spec`` static (inlined
      when called inside another ``jit``).
    """
    n = frac_coords.shape[0]
    dtype = frac_coords.dtype
    if n == 0:
        return _empty(spec, dtype)
    frac = jax.lax.stop_gradient(frac_coords)
    lat = jax.lax.stop_gradient(lattice).astype(dtype)
    floor = jnp.floor(frac)
    wrapped = frac - floor  # [0, 1)
    centred = spec.window is not None

    # 1. per-pair candidate flags, packed into uint32 words [n, n, W]
    offsets = spec.candidates()  # [C, 3] int (static)
    n_cand = offsets.shape[0]
    n_words, n_bits = _word_layout(n_cand)
    padded = np.concatenate([offsets, np.zeros((n_words * n_bits - n_cand, 3), offsets.dtype)])
    real = np.arange(n_words * n_bits) < n_cand
    zero_offset = real & np.all(padded == 0, axis=1)
    dfrac = [wrapped[None, :, k] - wrapped[:, None, k] for k in range(3)]  # f_j - f_i, [i, j] each
    if centred:
        nearest = [-jnp.round(d) for d in dfrac]  # nearest image of each pair (in the grid: |d| < 1)
        dfrac = [d + s for d, s in zip(dfrac, nearest)]
    # component-wise on [n, n] arrays, which XLA fuses (a batched [n, n, 3] @ [3, 3] is slow on CPU)
    dcart = [sum(dfrac[k] * lat[k, c] for k in range(3)) for c in range(3)]  # [n, n] Å each
    tvec = jnp.asarray(padded, dtype) @ lat  # [C', 3] Å
    d2 = sum((dcart[c][:, :, None] + tvec[None, None, :, c]) ** 2 for c in range(3))  # [n, n, C']
    within = (d2 < spec.cutoff ** 2) & jnp.asarray(real)
    within &= ~(jnp.eye(n, dtype=bool)[:, :, None] & jnp.asarray(zero_offset))
    if centred:  # stay inside the grid, so the edge set is the grid's
        for k in range(3):
            within &= jnp.abs(nearest[k][:, :, None] + jnp.asarray(padded[:, k], dtype)) <= spec.n_images[k]
    weights = jnp.left_shift(jnp.uint32(1), jnp.arange(n_bits, dtype=jnp.uint32))
    bits = jnp.sum(within.reshape(n, n, n_words, n_bits).astype(jnp.uint32) * weights, axis=-1,
                   dtype=jnp.uint32)  # distinct powers of two: the sum is the bitwise or
    if atom_mask is not None:
        bits = jnp.where((atom_mask[:, None] & atom_mask[None, :])[:, :, None], bits, jnp.uint32(0))
    bits = bits.reshape(n * n, n_words)

    # 2. number the edges pair by pair: slot e -> pair (running count) -> image (bit search in the pair's words)
    per_word = jax.lax.population_count(bits).astype(jnp.int32)  # [n^2, W]
    per_pair = jnp.sum(per_word, axis=1)
    running = jnp.cumsum(per_pair)
    count = running[-1]
    slots = jnp.arange(spec.max_edges, dtype=jnp.int32)
    mask = slots < count
    pair = jnp.searchsorted(running, slots, side="right", method="scan_unrolled")  # first p with running[p] > e
    pair = jnp.where(mask, pair, 0).astype(jnp.int32)
    rank = slots - (running[pair] - per_pair[pair])
    words = bits[pair]  # [E, W]
    if n_words > 1:
        before = jnp.cumsum(per_word[pair], axis=1)  # set bits up to and including each word
        word = jnp.minimum(jnp.sum(before <= rank[:, None], axis=1), n_words - 1)
        rank = rank - (jnp.take_along_axis(before, word[:, None], 1)[:, 0]
                       - jnp.take_along_axis(per_word[pair], word[:, None], 1)[:, 0])
        chosen = jnp.take_along_axis(words, word[:, None], 1)[:, 0]
    else:
        word, chosen = jnp.zeros_like(pair), words[:, 0]
    candidate = word * n_bits + _select_bit(chosen, rank, n_bits)

    receivers = jnp.where(mask, pair // n, 0)
    senders = jnp.where(mask, pair % n, 0)
    shifts = jnp.asarray(padded, dtype)[candidate]
    if centred:
        shifts = shifts - jnp.round(wrapped[senders] - wrapped[receivers])
    # undo the wrapping: vector = (f_j - fl_j) - (f_i - fl_i) + S  =>  shift w.r.t. raw coords = S - fl_j + fl_i
    shifts = shifts - floor[senders] + floor[receivers]
    shifts = jnp.where(mask[:, None], shifts, 0.0)
    overflow = count > spec.max_edges
    if centred:
        overflow |= jnp.any(spec.cutoff * _reciprocal_norms(lat) > jnp.asarray(spec.window, dtype) + 0.5)
    return JaxNeighbors(senders, receivers, shifts, mask, overflow, count)
