"""The generator protocol (atomsmith.generators.protocol): declared capabilities, the one error for a capability a
model lacks, options dataclasses, typed requests, and the registry's kind -> class table. No model is trained or
sampled here: an untrained model refuses a request before it touches its weights."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.assembly.generator import Assembler
from atomsmith.generators.diffusion import DiffusionModel
from atomsmith.generators.diffusion.options import DEFAULT_STEPS, DiffusionOptions
from atomsmith.generators.eq_vae import EqVAE, tiny_config as eq_tiny_config
from atomsmith.generators.gram_vae import GramVAE, tiny_config
from atomsmith.generators.protocol import Capabilities, FixedAtoms, FixedNeighbors, Generator, GeneratorBase, \
    InvalidRequestError, UnsupportedRequestError, capabilities_of, options_for
from atomsmith.pretrained.kinds import MODEL_CLASSES, model_class
from atomsmith.structures.crystal import Crystal

KEY = jax.random.PRNGKey(0)


def _vaes():
    return [GramVAE(tiny_config(), None, normalizer=None), EqVAE(eq_tiny_config(), None)]


def _partial():
    return Crystal(np.eye(3) * 4.0, np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]), np.array([38, 22]))


@pytest.mark.parametrize("request_", [dict(guidance=[lambda b, s=None: 0.0]), dict(conditions={"composition": [14]}),
                                      dict(conditions={"lattice": np.eye(3)}), dict(conditions={"x": 1.0})])
def test_environment_models_refuse_what_they_lack_naming_the_model(request_):
    for vae in _vaes():
        with pytest.raises(UnsupportedRequestError, match=f"^{vae.kind} does not take .*local environments"):
            vae.sample(KEY, 1, **request_)
        with pytest.raises(NotImplementedError):  # what the models raised before they declared capabilities
            vae.sample(KEY, 1, **request_)
    with pytest.raises(UnsupportedRequestError, match="^mine does not take held atoms"):
        _vaes()[0].sample(KEY, 1, fixed=FixedAtoms(_partial(), 1), label="mine")


def test_options_dataclasses_replace_free_keywords():
    vae = _vaes()[0]
    with pytest.raises(TypeError, match="steps"):
        vae.sample(KEY, 1, steps=3)  # a diffusion setting is not an environment model's
    assert vae.options(label="x").label == "x" and vae.options(temperature=None).temperature == 1.0
    assert options_for(vae, steps=3, label="y").label == "y"  # settings a model lacks do not apply to it
    assert DiffusionOptions().steps == DEFAULT_STEPS and options_for(DiffusionModel, steps=None).steps == DEFAULT_STEPS
    with pytest.raises(InvalidRequestError, match="DiffusionOptions"):
        vae.options(DiffusionOptions())


def test_declared_capabilities():
    assert capabilities_of(DiffusionModel) == Capabilities(composition=True, lattice=True, properties=True,
                                                           guidance=True, fixed_atoms=True,
                                                           about=DiffusionModel.capabilities.about)
    for cls in (GramVAE, EqVAE):
        caps = cls.capabilities
        assert caps.produces == "environments" and caps.fixed_neighbors and not (caps.guidance or caps.composition)
    assembler = Assembler("a-si-8")
    assert isinstance(assembler, Generator) and assembler.capabilities.guidance
    with pytest.raises(UnsupportedRequestError, match="mcts does not take a composition"):
        assembler.sample(KEY, 1, conditions={"composition": [14] * 8})
    assert capabilities_of(object()) == Capabilities()
    assert all(issubclass(c, GeneratorBase) for c in (DiffusionModel, GramVAE, EqVAE, Assembler))


def test_fixed_neighbors_picks_the_held_atoms():
    held = FixedNeighbors.around(_partial(), 0, n_neighbors=8, r_cut=4.0, k=2)
    assert held.vectors.shape == (2, 3) and np.allclose(np.linalg.norm(held.vectors, axis=1), np.sqrt(12.0))
    with pytest.raises(InvalidRequestError, match="k = 9 is larger than the environment"):
        FixedNeighbors.around(_partial(), 0, n_neighbors=8, r_cut=4.0, k=9)
    with pytest.raises(InvalidRequestError, match="give k or held, not both"):
        FixedNeighbors.around(_partial(), 0, n_neighbors=8, r_cut=4.0, k=1, held=[0])
    with pytest.raises(InvalidRequestError, match="does not exist"):
        FixedNeighbors.around(_partial(), 5, n_neighbors=8, r_cut=4.0)
    assert FixedNeighbors(np.zeros((1, 3)), numbers=np.array([8])).numbers == (8,)


def test_registry_table_names_every_model_class():
    for kind in MODEL_CLASSES:
        cls = model_class(kind)
        assert callable(cls.load) and kind.endswith(cls.kind), kind
