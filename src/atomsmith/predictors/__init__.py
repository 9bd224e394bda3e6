"""Differentiable property predictors (scalars and Cartesian response tensors) on the shared encoder."""

from atomsmith.predictors.applicability import OutOfDomainWarning, TrainingDomain, check_request, check_structure
from atomsmith.predictors.model import (
    CHECKPOINT_KIND,
    Predictor,
    PredictorConfig,
    PredictorNet,
    init_predictor,
    load_predictor,
    with_required_irreps,
)
from atomsmith.predictors.normalization import Normalizer, fit_normalizer
from atomsmith.predictors.targets import KNOWN_TARGETS, MissingTargetError, default_readout, target_values
from atomsmith.predictors.training import PredictorData, TrainedPredictor, evaluate, metrics, train_predictor

__all__ = [
    "CHECKPOINT_KIND",
    "KNOWN_TARGETS",
    "MissingTargetError",
    "Normalizer",
    "OutOfDomainWarning",
    "Predictor",
    "PredictorConfig",
    "PredictorData",
    "PredictorNet",
    "TrainedPredictor",
    "TrainingDomain",
    "check_request",
    "check_structure",
    "default_readout",
    "evaluate",
    "fit_normalizer",
    "init_predictor",
    "load_predictor",
    "metrics",
    "target_values",
    "train_predictor",
    "with_required_irreps",
]
