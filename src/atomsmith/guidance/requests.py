"""Property requests as users write them (``heat_ref=0.5``, ``heat_ref=0.3:0.7``) turned into shared objectives.

A request names a property; the predictor that provides it comes from an explicit list (checkpoint paths or shipped
names) or, by default, from the shipped predictors trained on the generator's dataset (registry field ``dataset``;
:func:`atomsmith.pretrained.predictors.resolve_predictors`). Several requests add up (one objective per request,
summed with weight 1).

    >>> PropertyRequest.parse("heat_ref=0.3:0.7")
    PropertyRequest(name='heat_ref', low=0.3, high=0.7, scale=0.1)
    >>> PropertyRequest.parse("heat_ref=0.5").is_target
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from atomsmith.guidance.base import WeightedSum
from atomsmith.guidance.objectives import PropertyRange, PropertyTarget


class UnknownPropertyError(ValueError):
    """A requested property that no available predictor provides (the message lists the available ones)."""


@dataclasses.dataclass(frozen=True)
class PropertyRequest:
    """One requested property: a target value (``low == high``) or a range (either end may be infinite).

    Attributes:
      name: property name (a predictor's ``config.target``), e.g. ``"heat_ref"``.
      low, high: bounds in the property's units (eV for energies); equal for a target value.
      scale: tolerance in the property's units: an error of ``scale`` costs 1 in the objective.
    """

    name: str
    low: float
    high: float
    scale: float = 0.1

    @property
    def is_target(self) -> bool:
        return self.low == self.high

    def objective(self, predictor: Any):
        if self.is_target:
            return PropertyTarget(predictor, target=self.low, scale=self.scale)
        return PropertyRange(predictor, low=self.low, high=self.high, scale=self.scale)

    @classmethod
    def parse(cls, text: str, scale: float = 0.1) -> PropertyRequest:
        """``"name=value"`` (target) or ``"name=low:high"`` (range; an empty end is unbounded)."""
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"cannot parse {text!r}: write NAME=VALUE (target) or NAME=LOW:HIGH (range)")
        try:
            if ":" in value:
                lo, hi = value.split(":", 1)
                low = float(lo) if lo.strip() else -math.inf
                high = float(hi) if hi.strip() else math.inf
                if not low <= high:
                    raise ValueError(f"empty range {low}:{high}")
                if math.isinf(low) and math.isinf(high):
                    raise ValueError("a range needs at least one finite end")
            else:
                low = high = float(value)
        except ValueError as exc:
            raise ValueError(f"cannot parse {text!r}: {exc}") from None
        if not (scale > 0):
            raise ValueError(f"the property scale must be > 0, got {scale}")
        return cls(name, low, high, float(scale))


def build_objective(requests: Sequence[PropertyRequest], predictors: Mapping[str, Any]):
    """The sum of the requests' objectives (a single term is returned as is)."""
    if not requests:
        raise ValueError("no property requested")
    terms = [r.objective(predictors[r.name]) for r in requests]
    return terms[0] if len(terms) == 1 else WeightedSum.of(*((1.0, t) for t in terms))
