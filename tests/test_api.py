"""The public Python API (``atomsmith.sample``, ``infill``, ``interpolate``, ``predict``, ...) on tiny models."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import atomsmith
from atomsmith.api.sampling import parse_cell, parse_composition, parse_requests, plan_guidance
from atomsmith.generators.diffusion.model import DiffusionConfig, DiffusionModel
from atomsmith.generators.diffusion.training import init_params
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.guidance.requests import UnknownPropertyError
from atomsmith.pretrained import UnknownModelError


@pytest.fixture(scope="module")
def tiny_si(tmp_path_factory):
    config = DiffusionConfig.tiny(elements=(14,))
    path = tmp_path_factory.mktemp("api") / "si.ckpt"
    DiffusionModel(config, init_params(config, jax.random.PRNGKey(0))).save(path)
    return path


def test_public_names_resolve():
    for name in ("load_model", "sample", "infill", "interpolate", "assemble", "predict", "evaluate", "Crystal",
                 "read", "write", "load_dataset", "PropertyTarget", "MinDistance"):
        assert callable(getattr(atomsmith, name)), name
    assert set(atomsmith.__all__) >= {"sample", "infill", "interpolate", "assemble", "predict", "evaluate"}


def test_sample_is_reproducible_and_honours_held_cell(tiny_si):
    kwargs = dict(seed=3, composition="Si8", cell=5.43, steps=3)
    model = atomsmith.load_model(tiny_si)  # one loaded model: its compiled sampler is reused below
    a = atomsmith.sample(model, 2, **kwargs)
    b = atomsmith.sample(model, 2, **kwargs)
    assert len(a) == 2 and all(c.n_atoms == 8 for c in a)
    assert all(np.allclose(c.lattice, np.eye(3) * 5.43, atol=1e-5) for c in a)
    for x, y in zip(a, b):
        assert np.array_equal(x.frac_coords, y.frac_coords)
    other = atomsmith.sample(model, 2, **{**kwargs, "seed": 4})
    assert not np.allclose(other[0].frac_coords, a[0].frac_coords)


def test_sample_with_own_objective(tiny_si):
    crystals = atomsmith.sample(str(tiny_si), 2, composition=[14] * 4, steps=3,
                                guidance=atomsmith.MinDistance(2.0), guidance_scale=1.0)
    assert all(np.isfinite(c.properties["guidance_objective"]) for c in crystals)


def test_request_errors_are_clear(tiny_si):
    with pytest.raises(UnknownModelError, match="available"):
        atomsmith.sample("no-such-model", 1)
    with pytest.raises(InvalidRequestError, match="non-integer"):
        parse_composition("SrTiO2.5")
    with pytest.raises(InvalidRequestError, match="1, 3 or 9"):
        parse_cell([1.0, 2.0])
    with pytest.raises(InvalidRequestError, match="right-handed"):
        parse_cell(-np.eye(3))
    with pytest.raises(InvalidRequestError, match="once"):
        parse_requests({"heat_ref": 0.5}, {"heat_ref": (0.1, 0.9)})
    with pytest.raises(InvalidRequestError, match="NAME=LOW:HIGH"):
        parse_requests(range="heat_ref=0.5")
    assert parse_requests(range={"heat_ref": (None, 0.9)})[0].low == -np.inf
    with pytest.raises(UnknownPropertyError, match="heat_ref"):  # lists what is available
        atomsmith.sample("perov-5", 1, target={"band_gap": 1.0})
    with pytest.raises(InvalidRequestError, match="classifier-free"):
        model = atomsmith.load_model(tiny_si)
        plan_guidance(model, "si", parse_requests("heat_ref=0.5"), mode="classifier-free")


def test_predict_takes_names_files_and_crystals(tmp_path):
    crystals = atomsmith.load_dataset("perov_5", "test", limit=3)
    path = tmp_path / "three.extxyz"
    atomsmith.write(path, crystals)
    predictor = atomsmith.load_model("perov-5-heat-ref")
    direct = atomsmith.predict(predictor, crystals)
    from_file = atomsmith.predict(predictor, path)
    assert np.allclose(np.asarray(direct, float), np.asarray(from_file, float), atol=1e-5)
    assert np.mean(np.abs(np.asarray(direct, float) - [c.properties["heat_ref"] for c in crystals])) < 0.5


def test_environment_verbs_with_shipped_vaes():
    envs = atomsmith.sample("gram-vae", 2, seed=1)
    assert all(c.n_atoms == 9 for c in envs)
    vae = atomsmith.load_model("gram-vae")
    path = atomsmith.interpolate(vae, envs[0], envs[1], steps=3)
    assert [c.properties["step"] for c in path] == [0, 1, 2]
    done = atomsmith.infill(vae, envs[0], k=5, n=2, restarts=1)
    assert all(list(c.site_properties["fixed"]) == [1] * 6 + [0] * 3 for c in done)
    held = envs[0].positions[1:6] - envs[0].positions[0]
    for c in done:  # the held neighbours come back where they were (fit within the environment frame)
        got = c.positions[1:6] - c.positions[0]
        assert np.allclose(np.sort(np.linalg.norm(got, axis=1)), np.sort(np.linalg.norm(held, axis=1)), atol=1e-3)
    with pytest.raises(InvalidRequestError, match="k = 9 is larger"):
        atomsmith.infill(vae, envs[0], k=9, n=1)
    with pytest.raises(InvalidRequestError, match="local environments"):
        atomsmith.sample("gram-vae", 1, composition="Si2")
