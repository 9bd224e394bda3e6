"""Gram-matrix VAE of local atomic environments (reference study reproduced, then improved).

Public API::

    GramVAEConfig, reference_config, improved_config, tiny_config, preset   configuration
    GramNormalizer, gram_matrix, gram_to_coordinates                         representation and exact inversion
    GramVAE, InvalidRequestError                                             trained model (encode/decode/sample/...)
    infill, InfillConfig, InfillResult                                       hold k atoms, generate the rest
    interpolate                                                              latent interpolation of environments
    train_gram_vae, split_cells, environments_of                             data and training
"""

from atomsmith.generators.gram_vae.config import GramVAEConfig, improved_config, preset, reference_config, \
    tiny_config
from atomsmith.generators.gram_vae.infill import InfillConfig, InfillResult, infill
from atomsmith.generators.gram_vae.interpolate import interpolate
from atomsmith.generators.gram_vae.model import GramVAE, InvalidRequestError
from atomsmith.generators.gram_vae.representation import GramNormalizer, gram_matrix, gram_to_coordinates
from atomsmith.generators.gram_vae.training import environments_of, split_cells, train_gram_vae

__all__ = [
    "GramVAEConfig", "reference_config", "improved_config", "tiny_config", "preset",
    "GramNormalizer", "gram_matrix", "gram_to_coordinates",
    "GramVAE", "InvalidRequestError",
    "infill", "InfillConfig", "InfillResult", "interpolate",
    "train_gram_vae", "split_cells", "environments_of",
]
