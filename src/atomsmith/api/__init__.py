"""The public Python API: one function per verb of the CLI, usable from a notebook in a few lines, e.g. with the
shipped models (a minute or so on a CPU, most of it compilation)::

    crystals = atomsmith.sample("perov-5", 8, target={"heat_ref": 0.6})
    atomsmith.predict("perov-5-heat-ref", crystals)
    atomsmith.write("guided.extxyz", crystals)

The verbs talk to the models through the generator protocol (:mod:`atomsmith.generators.protocol`) only; what a
model can be asked for is declared by its class:

    >>> from atomsmith.generators.diffusion import DiffusionModel
    >>> from atomsmith.generators.gram_vae import GramVAE
    >>> DiffusionModel.capabilities.composition, DiffusionModel.capabilities.fixed_atoms
    (True, True)
    >>> GramVAE.capabilities.produces, GramVAE.capabilities.guidance, GramVAE.capabilities.fixed_neighbors
    ('environments', False, True)

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
