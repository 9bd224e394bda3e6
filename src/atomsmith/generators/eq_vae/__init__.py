"""Equivariant VAE of local environments: an invariant Gaussian latent plus an O(3)-equivariant frame.

Public API::

    EqVAEConfig, default_config, tiny_config          configuration
    EqVAE, Decoded                                     trained model (encode/decode/reconstruct/sample/...)
    EnvironmentSet, environment_set                    environments with species
    gram_schmidt_frame, moment_vectors                 the frame constructions
    infill, EqInfillResult, refine_reconstruction      hold k atoms, generate the rest
    train_eq_vae                                       training with the shared loop

The shipped model by name: :func:`atomsmith.pretrained.resolve_eq_vae`.
"""

from atomsmith.generators.eq_vae.config import EqVAEConfig, default_config, tiny_config
from atomsmith.generators.eq_vae.data import EnvironmentSet, environment_set
from atomsmith.generators.eq_vae.infill import EqInfillResult, infill, refine_reconstruction
from atomsmith.generators.eq_vae.model import Decoded, EqVAE
from atomsmith.generators.eq_vae.network import gram_schmidt_frame, moment_vectors
from atomsmith.generators.eq_vae.training import train_eq_vae

__all__ = [
    "EqVAEConfig", "default_config", "tiny_config",
    "EqVAE", "Decoded",
    "EnvironmentSet", "environment_set",
    "gram_schmidt_frame", "moment_vectors",
    "infill", "EqInfillResult", "refine_reconstruction",
    "train_eq_vae",
]
