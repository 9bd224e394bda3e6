"""The shipped perov-5 diffusion model: the registry, loading, provenance metadata, and a short sample."""

from __future__ import annotations

import jax
import pytest

from atomsmith import pretrained
from atomsmith.generators.diffusion import DiffusionModel


def test_registry_lists_perov5_and_rejects_unknown_names():
    assert "perov-5" in pretrained.available()
    assert pretrained.DEFAULT_MODEL in pretrained.available()
    entry = pretrained.info("perov-5")
    assert entry["kind"] == "diffusion" and pretrained.path_of("perov-5").is_file()
    with pytest.raises(pretrained.UnknownModelError, match="perov-5"):
        pretrained.load_model("perov-6")


def test_shipped_model_loads_with_its_provenance():
    model = pretrained.load_model("perov-5")
    assert isinstance(model, DiffusionModel)
    how = model.metadata["how_trained"]
    for key in ("command", "dataset", "steps", "seed", "batch_size"):
        assert key in how, key
    assert how["dataset"] == "perov_5:train" and how["steps"] > 0
    assert model.config.n_atoms_counts == ((5, 11356),)
    assert pretrained.path_of("perov-5").stat().st_size < 5_000_000


@pytest.mark.slow
def test_shipped_model_samples_perovskite_cells():
    model = pretrained.load_model("perov-5")
    crystals = model.sample(jax.random.PRNGKey(0), 2, steps=2, method="ode")
    assert [c.n_atoms for c in crystals] == [5, 5]
    for c in crystals:
        assert 20.0 < c.volume < 300.0


def test_every_shipped_model_loads_by_name():
    """Each registry entry names a file that loads with its kind's loader and records how it was trained."""
    from atomsmith.predictors import Predictor

    for name in pretrained.available():
        model = pretrained.load_model(name)
        kind = pretrained.info(name)["kind"]
        if kind == "predictor":
            assert isinstance(model, Predictor), name
        else:
            assert model.metadata.get("how_trained"), name
        assert pretrained.path_of(name).stat().st_size < 5_000_000, name


def test_load_model_with_kinds_rejects_other_kinds():
    """``kinds`` is the one check behind resolve_gram_vae / resolve_eq_vae and the CLI's environment-VAE loader."""
    from atomsmith.pretrained import resolve_gram_vae

    with pytest.raises(pretrained.WrongModelKindError, match="'diffusion' model; this needs a 'gram-vae'"):
        pretrained.load_model("perov-5", kinds=("gram-vae",))
    with pytest.raises(ValueError, match="gram-vae"):
        resolve_gram_vae("perov-5")
    with pytest.raises(pretrained.UnknownModelError):
        resolve_gram_vae("no-such-model")
    assert resolve_gram_vae("gram-vae").metadata["how_trained"]
