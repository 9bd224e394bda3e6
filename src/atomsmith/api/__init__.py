"""The public Python API: one function per verb of the CLI, usable from a notebook in a few lines.

    >>> import atomsmith
    >>> crystals = atomsmith.sample("perov-5", 8, target={"heat_ref": 0.6})
    >>> atomsmith.predict("perov-5-heat-ref", crystals)
    >>> atomsmith.write("guided.extxyz", crystals)

Every function takes models by shipped name, checkpoint path, or as an already loaded object
(:func:`atomsmith.load_model`), and structures as :class:`~atomsmith.structures.crystal.Crystal` objects or files.
Lengths are in Å, energies in eV. Request errors are ``ValueError`` subclasses with a message saying what to change.
"""

from atomsmith.api.assembly import NothingAssembledError, assemble
from atomsmith.api.evaluation import evaluate
from atomsmith.api.infilling import infill
from atomsmith.api.interpolation import interpolate
from atomsmith.judging.core import judge
from atomsmith.api.prediction import predict
from atomsmith.api.sampling import GuidancePlan, parse_composition, plan_guidance, sample

__all__ = ["GuidancePlan", "NothingAssembledError", "assemble", "evaluate", "infill", "interpolate",
           "judge", "parse_composition", "plan_guidance", "predict", "sample"]
