"""The shipped property predictors per dataset, and one predictor per requested property.

Guidance requests (:class:`~atomsmith.guidance.requests.PropertyRequest`) name a property; the predictor that provides
it comes from an explicit list (checkpoint paths or shipped names) or, by default, from the shipped predictors
trained on the generator's dataset (registry field ``dataset``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from atomsmith.guidance.requests import PropertyRequest, UnknownPropertyError
from atomsmith import pretrained

__all__ = ["resolve_predictors", "shipped_predictors"]


def shipped_predictors(dataset: str | None) -> dict[str, str]:
    """``{property: shipped predictor name}`` for the shipped predictors trained on ``dataset`` (all if None)."""
    out = {}
    for name in pretrained.available():
        entry = pretrained.info(name)
        if entry.get("kind") == "predictor" and entry.get("target") and (dataset is None or
                                                                        entry.get("dataset") == dataset):
            out.setdefault(entry["target"], name)
    return out


def resolve_predictors(requests: Sequence[PropertyRequest], predictors: Iterable[str] = (),
                       dataset: str | None = None, model_name: str = "the model") -> dict[str, Any]:
    """Load one predictor per requested property: from ``predictors`` (names or paths) if given, else the shipped
    predictors of ``dataset``. Raises :class:`UnknownPropertyError` listing what is available."""
    explicit: dict[str, Any] = {}
    for spec in predictors:
        predictor = pretrained.load_model(spec, kinds=("predictor",))
        explicit[predictor.config.target] = predictor
    if explicit:
        available, source = explicit, "the given --predictor models"
    else:
        available = shipped_predictors(dataset)
        source = (f"the shipped predictors for {model_name}'s dataset {dataset!r}" if dataset
                  else "the shipped predictors")
    out = {}
    for request in requests:
        if request.name not in available:
            names = ", ".join(sorted(available)) or "none"
            raise UnknownPropertyError(f"no predictor for property {request.name!r} among {source}; available "
                                       f"properties: {names} (a predictor checkpoint can be given explicitly)")
        found = available[request.name]
        out[request.name] = found if not isinstance(found, str) else pretrained.load_model(found, kinds=("predictor",))
    return out
