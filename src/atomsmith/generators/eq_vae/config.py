"""Configuration of the equivariant VAE of local environments."""

from __future__ import annotations

import dataclasses
import math


#: frame constructions of :class:`EqVAEConfig` (``frame``)
FRAMES = ("learned", "moments")


@dataclasses.dataclass(frozen=True)
class EqVAEConfig:
    """An equivariant VAE of local environments (centre + ``n_neighbors`` nearest neighbours within ``r_cut``).

    Attributes:
      n_neighbors: neighbours per environment (a-Si: 8, as the Gram VAE).
      r_cut: radius within which the neighbours must lie, Å.
      species: atomic numbers the model knows (the decoder's species vocabulary, sorted); a-Si: ``(14,)``.
      encoder_irreps, encoder_layers: the shared encoder's hidden irreps and interaction blocks. ``encoder_irreps``
        must contain ``1o`` features (the frame is built from them).
      encoder_cutoff: the shared encoder's radial cutoff, Å (pairs of an environment further apart carry no message).
      hidden: widths of the MLPs from the pooled invariants to the latent and from the latent to the coordinates.
      latent_dim: dimension of the invariant Gaussian latent.
      kl_weight: weight beta of ``sum_j KL(q_j || N(0, 1))``.
      species_weight: weight of the species cross-entropy (centre and neighbours) in the loss.
      shape_weight: weight of the O(3)-invariant shape term: squared error of the decoded Gram matrix ``Y Y^T``
        against the input's (matched within shells, divided by ``coord_scale^2`` so that it is in Å^2). It trains
        the decoder's shapes even where the encoder's frame is still poor (a frame from pooled vectors is
        necessarily unstable for some environments).
      frame_weight: weight of the matched coordinate error in the encoder's frame (Å^2): trains the frame and its
        handedness (a learned frame) and the decoder's canonical pose, and makes reconstructions in the input's own
        frame possible.
      hand_weight: weight of the handedness term: matched coordinate error after the best rotation *of the
        handedness of the encoder's frame* (``det = det R``), Å^2. Independent of how well the frame's rotation is
        learned, it teaches the decoder the handedness that goes with the frame. When > 0, the frame's sign also
        gets a straight-through gradient. Off by default: with weight 1 (and frame_weight 0.3) it did not raise
        mirror recovery measurably and cost reconstruction and sample quality (experiments/equivariant_vae).
      frame: how the encoder builds its frame. ``"learned"``: Gram-Schmidt on three learned ``1o`` vectors
        (equivariant linear map of the pooled features plus attention over the neighbours; handedness from the
        third). ``"moments"``: a fixed, smooth, non-learned construction from the environment's moments,
        Gram-Schmidt on ``(u, T u, T^2 u)`` with the dipole ``u = sum_a r_a`` and the second moment
        ``T = sum_a r_a r_a^T`` (:func:`~atomsmith.generators.eq_vae.network.moment_vectors`); its handedness is the
        sign of the pseudo-scalar ``det[u, T u, T^2 u]``. No eigendecomposition, nothing to learn, so the decoder
        learns one canonical pose and one chirality per shape (a-Si: median frame change 4 degrees under 0.05 Å
        noise, handedness flipped for 7 % of environments).
      shells: block sizes (distance order) inside which the loss matches decoded slots to neighbours optimally;
        must sum to ``n_neighbors``.
    """

    n_neighbors: int = 8
    r_cut: float = 4.0
    species: tuple[int, ...] = (14,)
    encoder_irreps: str = "32x0e+16x1o+8x2e"
    encoder_layers: int = 2
    encoder_cutoff: float = 6.0
    hidden: tuple[int, ...] = (256, 256)
    latent_dim: int = 18
    kl_weight: float = 1e-3
    species_weight: float = 1.0
    shape_weight: float = 1.0
    frame_weight: float = 1.0
    hand_weight: float = 0.0
    shells: tuple[int, ...] = (4, 4)
    frame: str = "learned"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "shells", tuple(int(s) for s in self.shells))
        object.__setattr__(self, "species", tuple(sorted(int(z) for z in self.species)))
        problems = []
        if self.n_neighbors < 3:
            problems.append(f"n_neighbors must be >= 3 (a 3D environment), got {self.n_neighbors}")
        if self.r_cut <= 0 or self.encoder_cutoff <= 0:
            problems.append("r_cut and encoder_cutoff must be > 0 Å")
        if not self.species or len(set(self.species)) != len(self.species) \
                or any(not 1 <= z <= 118 for z in self.species):
            problems.append(f"species must be distinct atomic numbers in 1..118, got {self.species}")
        if "1o" not in self.encoder_irreps:
            problems.append(f"encoder_irreps must contain 1o features for the frame, got {self.encoder_irreps!r}")
        if self.encoder_layers < 1 or self.latent_dim < 1 or any(h < 1 for h in self.hidden) or not self.hidden:
            problems.append("encoder_layers, latent_dim and hidden widths must be >= 1")
        if sum(self.shells) != self.n_neighbors or any(s < 1 for s in self.shells):
            problems.append(f"shells {self.shells} must be positive and sum to n_neighbors={self.n_neighbors}")
        elif math.prod(math.factorial(s) for s in self.shells) > 5040:
            problems.append(f"shells {self.shells} give too many permutations for the matched loss (> 5040)")
        if min(self.kl_weight, self.species_weight, self.shape_weight, self.frame_weight, self.hand_weight) < 0:
            problems.append("kl_weight, species_weight, shape_weight, frame_weight and hand_weight must be >= 0")
        if self.frame not in FRAMES:
            problems.append(f"frame must be one of {FRAMES}, got {self.frame!r}")
        if self.shape_weight == 0 and self.frame_weight == 0:
            problems.append("shape_weight and frame_weight cannot both be 0 (nothing to reconstruct)")
        if problems:
            raise ValueError("invalid EqVAEConfig: " + "; ".join(problems))

    @property
    def n_species(self) -> int:
        return len(self.species)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> EqVAEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EqVAEConfig fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def default_config() -> EqVAEConfig:
    """The a-Si model (same environments as the Gram VAE: 8 neighbours within 4 Å)."""
    return EqVAEConfig()


def tiny_config(**overrides) -> EqVAEConfig:
    """A very small model so that a whole training run fits in a unit test."""
    base = dict(encoder_irreps="8x0e+4x1o", encoder_layers=1, hidden=(32,), latent_dim=4, kl_weight=0.01)
    return EqVAEConfig(**{**base, **overrides})
